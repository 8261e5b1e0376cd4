"""Small builders shared by tests (plain data, no I/O)."""

from engine.index.retriever import Hit
from engine.ingest.chunking import Chunk


def chunk(chunk_id: str, path: str = "docs/a.md", text: str = "text", heading: tuple[str, ...] = ("H",)) -> Chunk:
    return Chunk(chunk_id, path, "Title " + path, heading, text, 1, 3, "docs", f"https://x.test/{path}#L1-L3")


def hit(chunk_id: str, path: str = "docs/a.md", dense: float | None = 0.5, text: str = "text") -> Hit:
    return Hit(chunk(chunk_id, path, text), 1.0, dense, None)
