"""Golden records and past answers as knowledge sources: the maintainers' own answers, and the community's
answered threads (imported by ``firstreply history import``), retrieved like any page.

Each golden record becomes one chunk (source type ``golden``, path ``golden/<id>``, linking
to its public read-only view, ``/golden/<id>``). :func:`sync_golden` makes the index hold exactly the given records:
new or edited ones are embedded, deleted ones removed, and the keyword index rebuilt when
anything changed. Other sources in the knowledge base are left alone.

Each past answer still waiting for review becomes one chunk too (source type ``past_answer``, path
``past/<id>``, cited by the thread's own URL): the question's title, its text and the answer.
:func:`sync_past_answers` keeps them in line the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.index.keywords import KeywordIndex
from engine.ingest.chunking import Chunk

if TYPE_CHECKING:
    from engine.index.embedder import Embedder
    from engine.index.vectors import VectorStore

GOLDEN_PREFIX = "golden/"
PAST_PREFIX = "past/"


@dataclass(frozen=True)
class GoldenPair:
    id: int
    question: str
    answer: str
    url: str


def golden_chunk(pair: GoldenPair) -> Chunk:
    digest = hashlib.sha256(f"{pair.question}\0{pair.answer}\0{pair.url}".encode()).hexdigest()[:16]
    return Chunk(id=f"golden-{pair.id}-{digest}", path=f"{GOLDEN_PREFIX}{pair.id}", title=pair.question.strip()[:300],
                 heading_path=(), text=pair.answer.strip(), start_line=1, end_line=max(1, pair.answer.count("\n") + 1),
                 source_type="golden", url=pair.url)


@dataclass(frozen=True)
class PastAnswer:
    id: int
    title: str
    question: str
    answer: str
    url: str


def past_answer_chunk(past: PastAnswer) -> Chunk:
    text = f"{past.question.strip()}\n\nAnswer:\n{past.answer.strip()}" if past.question.strip() else past.answer.strip()
    digest = hashlib.sha256(f"{past.title}\0{text}\0{past.url}".encode()).hexdigest()[:16]
    return Chunk(id=f"past-{past.id}-{digest}", path=f"{PAST_PREFIX}{past.id}", title=past.title.strip()[:300],
                 heading_path=(), text=text, start_line=1, end_line=max(1, text.count("\n") + 1),
                 source_type="past_answer", url=past.url)


def sync_golden(embedder: Embedder, vectors: VectorStore, keyword_dir: Path, pairs: list[GoldenPair]) -> tuple[int, int]:

    """Bring the index in line with ``pairs``; returns (chunks embedded, chunks removed).

    Only the golden chunks' ids are read to compare, so a sync with nothing to do is cheap (it runs
    at every start). The revision is stamped before the first write, so a crash part-way leaves the
    keyword index visibly stale and the next sync or ingest rebuilds it.
    """
    return _sync(embedder, vectors, keyword_dir, "golden", list(map(golden_chunk, pairs)))


def sync_past_answers(embedder: Embedder, vectors: VectorStore, keyword_dir: Path, past: list[PastAnswer]) -> tuple[int, int]:
    """As :func:`sync_golden`, for the past answers waiting for review."""
    return _sync(embedder, vectors, keyword_dir, "past_answer", list(map(past_answer_chunk, past)))


def _sync(embedder: Embedder, vectors: VectorStore, keyword_dir: Path, source_type: str, chunks: list[Chunk]) -> tuple[int, int]:
    wanted = {c.id: c for c in chunks}
    present = vectors.ids({"source_type": source_type})
    new = [c for cid, c in wanted.items() if cid not in present]
    obsolete = present - set(wanted)
    if not new and not obsolete:
        return 0, 0
    vectors.stamp_revision()
    if new:
        vectors.upsert(new, embedder.encode([c.embedding_text for c in new]))
    if obsolete:
        vectors.delete(obsolete)
    KeywordIndex.rebuild(vectors, keyword_dir)
    return len(new), len(obsolete)
