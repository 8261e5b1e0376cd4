"""Hybrid retrieval: dense and keyword rankings fused into one, with scores kept for each hit.

The fusion and page-collapsing steps are pure functions over plain data so they can be
tested and tuned without a model or a store.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from engine.ingest.chunking import Chunk

K = TypeVar("K", bound=Hashable)

#: The constant from Cormack et al.'s reciprocal rank fusion.
RRF_K = 60


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float  # fused score: only the order means something
    dense: float | None = None  # cosine similarity to the question, when the dense side saw it
    keyword: float | None = None  # BM25 score, when the keyword side saw it

    def as_dict(self) -> dict:
        c = self.chunk
        return {
            "id": c.id, "path": c.path, "title": c.title, "heading_path": list(c.heading_path),
            "start_line": c.start_line, "end_line": c.end_line, "source_type": c.source_type,
            "url": c.url, "score": round(self.score, 6),
            "dense": None if self.dense is None else round(self.dense, 4),
            "keyword": None if self.keyword is None else round(self.keyword, 4),
            "text": c.text,
        }


def fuse_rankings(rankings: Sequence[Sequence[K]], weights: Sequence[float] | None = None, k: int = RRF_K) -> list[tuple[K, float]]:
    """Weighted reciprocal rank fusion: each ranking adds ``weight / (k + rank)`` to an item."""
    weights = weights or [1.0] * len(rankings)
    scores: dict[K, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def collapse_to_pages(paths: Sequence[str]) -> list[str]:
    """Distinct pages in order of first appearance."""
    return list(dict.fromkeys(paths))


def limit_per_page(hits: Sequence[Hit], per_page: int) -> list[Hit]:
    """Keep at most ``per_page`` hits from any one page, so one long page can't fill the list."""
    counts: dict[str, int] = {}
    kept = []
    for hit in hits:
        counts[hit.chunk.path] = counts.get(hit.chunk.path, 0) + 1
        if counts[hit.chunk.path] <= per_page:
            kept.append(hit)
    return kept


class Retriever:
    """Dense (Chroma) and keyword (bm25s) candidates for a question, fused and trimmed to ``k``."""

    def __init__(self, embedder, vectors, keywords, *, candidates: int = 50, weights: tuple[float, float] = (1.0, 1.0)) -> None:
        self.embedder = embedder
        self.vectors = vectors
        self.keywords = keywords
        self.candidates = candidates
        self.weights = weights
        self._by_id = {c.id: c for c in keywords.chunks}

    def search(self, question: str, k: int = 5, per_page: int | None = 2, title: str | None = None) -> list[Hit]:
        from engine.index.query import prepare_query

        query = prepare_query(question, title)
        if not query.text or not self._by_id:
            return []
        vector = self.embedder.encode([query.text])[0]
        dense = [(i, s) for i, s in self.vectors.query(vector, self.candidates) if i in self._by_id]
        keyword = [(c.id, s) for c, s in self.keywords.search(query.keyword_text, self.candidates)]
        dense_scores, keyword_scores = dict(dense), dict(keyword)
        fused = fuse_rankings([[i for i, _ in dense], [i for i, _ in keyword]], self.weights)
        hits = [Hit(self._by_id[i], s, dense_scores.get(i), keyword_scores.get(i)) for i, s in fused]
        if per_page:
            hits = limit_per_page(hits, per_page)
        return hits[:k]
