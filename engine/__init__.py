"""firstreply's engine: ingestion, hybrid retrieval and answers over a project's own sources.

``engine.Engine`` is the in-process entry point; heavy dependencies (torch, Chroma) load
only when an engine is built, so importing this package stays cheap.

The public surface, all a frontend may import: this package, ``engine.protocol`` (the answer
protocol, its data, errors and shared limits), ``engine.client``, ``engine.config`` (the settings, one
model per part), ``engine.logs``, ``engine.metrics``, ``engine.database``, ``engine.web`` and
``engine.markdown`` (Markdown split into paragraphs and whole code blocks). Everything else is internal; the
import contracts in ``pyproject.toml`` check it (``tests/test_architecture.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.service import Engine

__all__ = ["Engine"]


def __getattr__(name: str) -> type[Engine]:
    if name == "Engine":
        from engine.service import Engine

        return Engine
    raise AttributeError(name)
