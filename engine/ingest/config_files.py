"""Config-ish files users ask about, read as whole small documents.

``package.json`` (its scripts), ``pyproject.toml``, ``Cargo.toml``, ``go.mod``, a ``Dockerfile``, compose files,
``.env.example`` and CI workflows (``.github/workflows/*.yml``) answer questions like "how do I run the
tests" or "which variables must I set". Each is one document of one block, its lines numbered as in the
file, so a citation points into it; a file larger than :data:`MAX_CONFIG_BYTES` is not a small document
and is skipped (and counted) instead, as lock files and generated manifests would drown the index.
"""

from __future__ import annotations

from engine.ingest.document import Block, NotRead, ParsedDocument, Section

MAX_CONFIG_BYTES = 32_000
TOO_LARGE = f"config file larger than {MAX_CONFIG_BYTES:,} bytes"

#: Exact file names (lower case) read as config documents, wherever they are.
CONFIG_NAMES = frozenset({
    "package.json", "pyproject.toml", "cargo.toml", "go.mod", "dockerfile", "containerfile",
    "compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml",
    ".env.example", ".env.sample", ".env.template",
})


def is_config_file(rel_path: str) -> bool:
    """Whether ``rel_path`` is a config-ish file read whole (see the module docstring)."""
    parts = rel_path.split("/")
    name = parts[-1].lower()
    if name in CONFIG_NAMES or name.startswith("dockerfile.") or name.endswith(".dockerfile"):
        return True
    in_workflows = len(parts) >= 3 and parts[-3] == ".github" and parts[-2] == "workflows"
    return in_workflows and name.endswith((".yml", ".yaml"))


def parse_config_file(path: str, text: str) -> ParsedDocument:
    """One config file as one code block under its path; :class:`NotRead` when it is too large to be one."""
    if len(text.encode("utf-8")) > MAX_CONFIG_BYTES:
        raise NotRead(TOO_LARGE)
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    blocks = []
    if first is not None:
        last = max(i for i, line in enumerate(lines) if line.strip())
        blocks.append(Block("\n".join(lines[first : last + 1]), first + 1, last + 1, is_code=True))
    return ParsedDocument(path, path, "config", [Section((), blocks)] if blocks else [])
