"""Markdown text as blocks: its paragraphs and whole fenced code blocks, in order, never splitting inside a fence.

One pure function, :func:`split_blocks`, shared by what must cut an answer or a passage where a reader would: the
offline extractive answerer (which quotes whole units of a passage) and the Discord bot (which splits an answer
into messages under Discord's limit). It is part of the engine's public surface so a frontend can use it.
"""

from __future__ import annotations

import re

__all__ = ["FENCE", "split_blocks"]

#: A line that opens (or closes) a fenced code block: the fence (group 1) and the info string's language (group 2).
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+#.-]*)")


def split_blocks(text: str) -> list[str]:
    """Paragraphs (split at blank lines) and whole fenced code blocks, in order.

    A fence starts a block of its own even right after a line of prose, as Markdown renders it, and the block
    ends at the line that closes it; blank lines inside it stay in it. An unclosed fence is closed at the end,
    so every block renders on its own."""
    blocks: list[str] = []
    current: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        match = FENCE.match(line)
        if fence is None and match:
            if current:
                blocks.append("\n".join(current))
            current, fence = [line], match.group(1)
            continue
        if fence is not None:
            current.append(line)
            if line.strip().startswith(fence) and len(current) > 1:
                blocks.append("\n".join(current))
                current, fence = [], None
            continue
        if not line.strip():
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        if fence is not None:  # an unclosed fence: close it so the block renders
            current.append(fence)
        blocks.append("\n".join(current))
    return blocks
