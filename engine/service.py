"""``Engine``: the engine in one process — ingest, search and answer over knowledge bases.

Heavy parts (the embedding model, the Chroma client) are built on first use and shared by
every knowledge base; each knowledge base's retriever is cached until an ingest changes it.
"""

from __future__ import annotations

import asyncio
from functools import cached_property
from pathlib import Path

from engine.answer.extractive import extractive_answer
from engine.answer.model import Answer
from engine.config import Settings, load_settings
from engine.index.embedder import Embedder
from engine.index.keywords import KeywordIndex
from engine.index.retriever import Hit, Retriever
from engine.index.vectors import VectorStore, open_client
from engine.ingest.pipeline import IngestReport, Ingestor, Progress


class Engine:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self._retrievers: dict[str, Retriever] = {}

    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        return Embedder(s.embedding_model, device=s.embedding_device, batch_size=s.embedding_batch_size,
                        expected_sha256=s.embedding_sha256)

    @cached_property
    def chroma(self):
        url = str(self.settings.chroma_url) if self.settings.chroma_url else None
        return open_client(self.settings.data_dir / "chroma", url)

    def kb_dir(self, kb: str | None = None) -> Path:
        return self.settings.kb_dir / (kb or self.settings.kb)

    def vectors(self, kb: str | None = None) -> VectorStore:
        return VectorStore(self.chroma, kb or self.settings.kb)

    def ingest(self, path: Path, *, repo_url: str | None = None, ref: str | None = None, kb: str | None = None,
               progress: Progress | None = None) -> IngestReport:
        kb = kb or self.settings.kb
        ingestor = Ingestor(self.embedder, self.vectors(kb), self.kb_dir(kb), max_tokens=self.settings.chunk_max_tokens,
                            url_map=self.settings.url_map)
        report = ingestor.run(path, repo_url=repo_url, ref=ref, progress=progress)
        if report.changed:
            self._retrievers.pop(kb, None)
        return report

    def retriever(self, kb: str | None = None) -> Retriever:
        kb = kb or self.settings.kb
        if kb not in self._retrievers:
            keywords = KeywordIndex.load(self.kb_dir(kb) / "keywords")
            self._retrievers[kb] = Retriever(self.embedder, self.vectors(kb), keywords)
        return self._retrievers[kb]

    def search(self, question: str, *, k: int | None = None, kb: str | None = None, title: str | None = None) -> list[Hit]:
        return self.retriever(kb).search(question, k=k or self.settings.search_k, title=title)

    def ask(self, question: str, *, kb: str | None = None) -> Answer:
        hits = self.search(question, kb=kb)
        return extractive_answer(question, hits, self.settings.abstain_threshold)

    async def asearch(self, question: str, **options) -> list[Hit]:
        return await asyncio.to_thread(self.search, question, **options)

    async def aask(self, question: str, **options) -> Answer:
        return await asyncio.to_thread(self.ask, question, **options)
