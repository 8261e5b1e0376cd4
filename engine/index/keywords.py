"""Keyword ranking with bm25s, persisted beside the vectors with the chunks it ranks.

Chroma has no local keyword ranking, so BM25 lives here. Terms are stemmed English words
plus the parts of code identifiers (``useFormFields`` also yields ``use``, ``form``,
``fields``), because users ask about API names in prose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from engine.ingest.chunking import Chunk

if TYPE_CHECKING:
    from engine.index.vectors import VectorStore

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_STOPWORDS = frozenset(STOPWORDS_EN)
_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def _expand(word: str) -> tuple[str, ...]:
    parts = [p for piece in word.split("_") for p in _CAMEL.findall(piece)]
    words = [word.lower()]
    if len(parts) > 1:
        words.extend(p.lower() for p in parts)
    return tuple(_stemmer.stemWord(w) for w in words if len(w) > 1 and w not in _STOPWORDS)


def keyword_terms(text: str) -> list[str]:
    """The BM25 terms of a text: lower-cased, stemmed, stop words dropped, identifiers split."""
    terms: list[str] = []
    for word in _WORD.findall(text):
        terms.extend(_expand(word))
    return terms


class KeywordIndex:
    """BM25 over a fixed list of chunks; rebuilt whole after an ingest (it takes seconds)."""

    def __init__(self, chunks: list[Chunk], model: bm25s.BM25 | None, pages: bm25s.BM25 | None = None) -> None:
        self.revision: str | None = None  # the vector collection's revision this index was built from
        self.chunks = chunks
        self.model = model
        self.page_paths = sorted({c.path for c in chunks})
        self.pages = pages

    @classmethod
    def build(cls, chunks: list[Chunk]) -> "KeywordIndex":
        chunks = sorted(chunks, key=lambda c: (c.path, c.start_line, c.id))
        if not chunks:
            return cls([], None)
        terms = [keyword_terms(c.embedding_text) or ["\u2205"] for c in chunks]
        model = bm25s.BM25(k1=1.2, b=0.75)
        model.index(terms, show_progress=False)
        by_page: dict[str, list[str]] = {}
        for chunk, chunk_terms in zip(chunks, terms, strict=True):
            by_page.setdefault(chunk.path, []).extend(chunk_terms)
        pages = bm25s.BM25(k1=1.2, b=0.75)
        pages.index([by_page[path] for path in sorted(by_page)], show_progress=False)
        return cls(chunks, model, pages)

    def save(self, directory: Path, revision: str | None = None) -> None:
        """Write atomically: a half-written index is never left where ``load`` would read it.

        ``revision`` is the vector collection's revision the index was built from.
        """
        self.revision = revision
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = directory.with_name(directory.name + ".new")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        (staging / "revision").write_text(revision or "")
        with (staging / "chunks.jsonl").open("w", encoding="utf-8") as handle:
            for chunk in self.chunks:
                handle.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
        if self.model is not None and self.pages is not None:
            self.model.save(str(staging / "bm25"))
            self.pages.save(str(staging / "bm25-pages"))
        old = directory.with_name(directory.name + ".old")
        if directory.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(directory, old)
        os.replace(staging, directory)
        if old.exists():
            shutil.rmtree(old)

    @classmethod
    def rebuild(cls, vectors: VectorStore, directory: Path) -> "KeywordIndex":
        """After a writer changed the vector store: stamp a new revision (every replica's keyword index
        is now stale), then build from every chunk the store holds and save beside it."""
        revision = vectors.stamp_revision()
        index = cls.build(vectors.all_chunks())
        index.save(directory, revision)
        return index

    @staticmethod
    def is_current(directory: Path, revision: str | None) -> bool:
        """Whether the index saved in ``directory`` was built from the vector store at ``revision``."""
        if not (directory / "chunks.jsonl").exists():
            return False
        saved = (directory / "revision").read_text() if (directory / "revision").exists() else ""
        return (saved or None) == revision

    @staticmethod
    def saved_revision(directory: Path) -> str | None:
        """The revision of the index saved in ``directory`` (None when there is none): one small file read."""
        try:
            return (directory / "revision").read_text() or None
        except OSError:
            return None

    @classmethod
    def load(cls, directory: Path) -> "KeywordIndex":
        if not (directory / "chunks.jsonl").exists():
            return cls([], None)
        chunks = []
        with (directory / "chunks.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                record["heading_path"] = tuple(record["heading_path"])
                chunks.append(Chunk(**record))
        revision = (directory / "revision").read_text() or None if (directory / "revision").exists() else None
        if not chunks:
            index = cls([], None)
        else:
            index = cls(chunks, bm25s.BM25.load(str(directory / "bm25")), bm25s.BM25.load(str(directory / "bm25-pages")))
        index.revision = revision
        return index

    def search(self, query: str, k: int) -> list[tuple[Chunk, float]]:
        """The ``k`` best chunks for ``query`` with their BM25 scores (zero scores left out)."""
        terms = keyword_terms(query)
        if self.model is None or not terms:
            return []
        return [(self.chunks[i], s) for i, s in _top(self.model.get_scores(terms), k)]

    def search_pages(self, query: str, k: int = 100) -> list[tuple[str, float]]:
        """Pages ranked by BM25 over their whole text."""
        terms = keyword_terms(query)
        if self.pages is None or not terms:
            return []
        return [(self.page_paths[i], s) for i, s in _top(self.pages.get_scores(terms), k)]


def _top(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    k = min(k, len(scores))
    if k == 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

