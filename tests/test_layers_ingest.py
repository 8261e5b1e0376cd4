"""Data flows one way, sources -> chunks -> index: ``engine.ingest`` parses and chunks and imports nothing of
``engine.index``, which builds and searches (issue 19: the two packages imported each other)."""

import ast
from pathlib import Path

INGEST = Path(__file__).resolve().parents[1] / "engine" / "ingest"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_ingest_imports_nothing_from_the_index():
    modules = sorted(INGEST.glob("*.py"))
    assert len(modules) > 5  # the package really is where this test looks
    upward = {f"{path.name}: {name}" for path in modules for name in imported_modules(path)
              if name == "engine.index" or name.startswith("engine.index.")}
    assert not upward
