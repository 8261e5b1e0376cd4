"""Chunk vectors in Chroma: embedded ``PersistentClient`` by default, ``HttpClient`` at scale.

Embeddings are always computed by firstreply and passed in; collections are created with no
embedding function, so Chroma's default one (which would download a model) can never run.
"""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path
from typing import Iterable
from urllib.parse import urlparse

import numpy as np

from engine.ingest.chunking import Chunk

BATCH = 1000


class VectorStoreError(RuntimeError):
    """The vector store can't be reached or refused an operation."""


def _chroma_settings():
    import chromadb

    return chromadb.Settings(anonymized_telemetry=False, allow_reset=False)


def open_client(persist_dir: Path | None = None, url: str | None = None):
    import chromadb

    try:
        if url:
            parts = urlparse(url)
            return chromadb.HttpClient(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                settings=_chroma_settings(),
            )
        assert persist_dir is not None
        persist_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(persist_dir), settings=_chroma_settings())
    except Exception as error:  # chromadb raises plain Exceptions for connection failures
        where = url or str(persist_dir)
        raise VectorStoreError(f"can't open Chroma at {where}: {error}") from None


def chunk_metadata(chunk: Chunk) -> dict[str, str | int]:
    return {
        "path": chunk.path,
        "title": chunk.title,
        "heading_path": json.dumps(list(chunk.heading_path)),
        "start_line": chunk.start_line,
        "end_line": chunk.end_line,
        "source_type": chunk.source_type,
        "url": chunk.url,
        "description": chunk.description,
    }


def chunk_from_record(chunk_id: str, text: str, meta: dict) -> Chunk:
    return Chunk(
        id=chunk_id,
        path=str(meta["path"]),
        title=str(meta["title"]),
        heading_path=tuple(json.loads(str(meta["heading_path"]))),
        text=text,
        start_line=int(meta["start_line"]),
        end_line=int(meta["end_line"]),
        source_type=str(meta["source_type"]),
        url=str(meta["url"]),
        description=str(meta.get("description", "")),
    )


REVISION_KEY = "firstreply_revision"


def _store_errors(method):
    """A Chroma server that is down or refuses becomes a :class:`VectorStoreError` (the API's 503), not a crash."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except VectorStoreError:
            raise
        except OSError:  # a full disk under an embedded store: the caller reports it as it is
            raise
        except Exception as error:
            raise VectorStoreError(f"Chroma ({self.name}): {type(error).__name__}: {error}") from None

    return wrapper


class VectorStore:
    """One Chroma collection per knowledge base, cosine space."""

    def __init__(self, client, kb: str) -> None:
        self.client = client
        self.name = f"firstreply-{kb}"
        self.collection = self._collection()

    def _collection(self):
        try:
            return self.client.get_or_create_collection(
                self.name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        except Exception as error:
            raise VectorStoreError(f"Chroma refused collection {self.name}: {error}") from None

    def reset(self) -> None:
        """Drop every vector (used when the embedding model changes)."""
        try:
            self.client.delete_collection(self.name)
        except Exception:  # absent already
            pass
        self.collection = self._collection()

    @_store_errors
    def count(self) -> int:
        return self.collection.count()

    def revision(self) -> str | None:
        """The collection's revision, as the last writer stamped it (read afresh: another replica may have written)."""
        try:
            metadata = self.client.get_collection(self.name).metadata or {}
        except Exception as error:
            raise VectorStoreError(f"can't read collection {self.name}: {error}") from None
        return metadata.get(REVISION_KEY)

    def stamp_revision(self) -> str:
        """Mark the collection as changed, so replicas know their keyword index is stale."""
        revision = uuid.uuid4().hex
        self.collection.modify(metadata={REVISION_KEY: revision})
        return revision

    @_store_errors
    def upsert(self, chunks: list[Chunk], embeddings: np.ndarray) -> None:
        for start in range(0, len(chunks), BATCH):
            batch = chunks[start : start + BATCH]
            self.collection.upsert(
                ids=[c.id for c in batch],
                embeddings=embeddings[start : start + BATCH],
                documents=[c.text for c in batch],
                metadatas=[chunk_metadata(c) for c in batch],
            )

    @_store_errors
    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), BATCH):
            self.collection.delete(ids=ids[start : start + BATCH])

    @_store_errors
    def existing(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), BATCH):
            found.update(self.collection.get(ids=ids[start : start + BATCH], include=[])["ids"])
        return found

    @_store_errors
    def all_chunks(self) -> list[Chunk]:
        chunks: list[Chunk] = []
        offset = 0
        while True:
            page = self.collection.get(include=["documents", "metadatas"], limit=BATCH, offset=offset)
            chunks.extend(chunk_from_record(i, d or "", m or {}) for i, d, m in zip(page["ids"], page["documents"], page["metadatas"]))
            if len(page["ids"]) < BATCH:
                return chunks
            offset += BATCH

    def query(self, embedding: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest chunk ids with their cosine similarity."""
        return self.query_many(np.asarray([embedding]), k)[0]

    @_store_errors
    def query_many(self, embeddings: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """Nearest chunks for several query vectors in one call."""
        if len(embeddings) == 0:
            return []
        result = self.collection.query(query_embeddings=embeddings, n_results=k, include=["distances"])
        return [[(i, 1.0 - float(d)) for i, d in zip(ids, distances)]
                for ids, distances in zip(result["ids"], result["distances"])]

    @_store_errors
    def update_metadata(self, chunks: list[Chunk]) -> None:
        for start in range(0, len(chunks), BATCH):
            batch = chunks[start : start + BATCH]
            self.collection.update(ids=[c.id for c in batch], metadatas=[chunk_metadata(c) for c in batch])
