"""Chunk vectors in Chroma: embedded ``PersistentClient`` by default, ``HttpClient`` at scale.

Embeddings are always computed by firstreply and passed in; collections are created with no
embedding function, so Chroma's default one (which would download a model) can never run.

A Chroma server can hang (stopped, overloaded) as well as fail, so every call to one runs in a
worker thread under a deadline (:class:`Chroma`); after a call runs out of time, calls fail at
once until a background heartbeat gets an answer, so a replica answers 503 quickly and recovers
as soon as the server does.

A knowledge base's vectors live in one collection, found through a pointer: a small collection
(``firstreply-<kb>.current``) whose metadata names the current collection and the index revision.
Replacing the vectors wholesale (a new embedding model) builds a new collection and moves the
pointer in one write; the replaced collection stays until the next replacement, so a reader never
finds the collection it is reading missing, and one that was dropped is found again through the
pointer.
Before any pointer exists the collection is ``firstreply-<kb>``, where earlier versions kept it.
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Concatenate, Iterable, Mapping, ParamSpec, TypeVar
from urllib.parse import urlparse

import numpy as np

from engine.ingest.chunking import Chunk

if TYPE_CHECKING:  # chromadb is imported on first use (it is slow to import)
    from chromadb.api import ClientAPI
    from chromadb.api.collection_configuration import CreateCollectionConfiguration
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import GetResult, Include, Where
    from chromadb.config import Settings

BATCH = 1000
COSINE: CreateCollectionConfiguration = {"hnsw": {"space": "cosine"}}
REVISION_KEY = "firstreply_revision"  # on the pointer: changes whenever the index does
COLLECTION_KEY = "firstreply_collection"  # on the pointer: the collection that holds the vectors now
EMBEDDING_KEY = "firstreply_embedding"  # on a collection: the kind of vectors it holds (model and text version)
SOURCE_KEY = "source"  # on a chunk: the ingested folder it came from
T = TypeVar("T")
P = ParamSpec("P")


class VectorStoreError(RuntimeError):
    """The vector store can't be reached or refused an operation."""


def _chroma_settings() -> Settings:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


def open_client(persist_dir: Path | None = None, url: str | None = None, timeout: float | None = None) -> ClientAPI:
    """A Chroma client: ``HttpClient`` for ``url`` (each HTTP request, those made while opening it included, limited
    to ``timeout`` s), else embedded."""
    import chromadb

    try:
        if url:
            parts = urlparse(url)
            _open_with_timeout()
            _opening.timeout = timeout
            try:
                client = chromadb.HttpClient(
                    host=parts.hostname or "127.0.0.1",
                    port=parts.port or (443 if parts.scheme == "https" else 8000),
                    ssl=parts.scheme == "https",
                    settings=_chroma_settings(),
                )
            finally:
                _opening.timeout = None
            if timeout is not None:
                _limit_requests(client, timeout)
            return client
        assert persist_dir is not None
        persist_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(persist_dir), settings=_chroma_settings())
    except Exception as error:  # chromadb raises plain Exceptions for connection failures
        where = url or str(persist_dir)
        raise VectorStoreError(f"can't open Chroma at {where}: {error}") from None


_opening = threading.local()  # the timeout for the HttpClient this thread is opening


def _open_with_timeout() -> None:
    """Make chromadb's HTTP session get its timeout when it is made, before the client's first request.

    ``chromadb.HttpClient(...)`` asks the server who the caller is while it is being built, on a session
    made with ``timeout=None``: opening a hung server would wait for ever, holding the lock every later
    call waits on. The session is given the timeout of the thread opening it (see :func:`open_client`)."""
    from chromadb.api.fastapi import FastAPI
    from chromadb.config import System

    if getattr(FastAPI.__init__, "firstreply_timeout", False):
        return
    original = FastAPI.__init__

    def __init__(self: FastAPI, system: System) -> None:
        original(self, system)
        timeout = getattr(_opening, "timeout", None)
        if timeout is not None:
            import httpx

            self._session.timeout = httpx.Timeout(timeout)

    # A patch of a third-party class, made once per process: set as attributes, as the patch is dynamic.
    setattr(__init__, "firstreply_timeout", True)  # noqa: B010
    setattr(FastAPI, "__init__", __init__)  # noqa: B010


def _limit_requests(client: ClientAPI, timeout: float) -> None:
    """Give the client's HTTP session a timeout.

    chromadb (1.5) builds its httpx session with ``timeout=None`` and has no setting for it. Every
    call is bounded by :meth:`Chroma.call` whatever this finds; the session's own timeout only ends
    an abandoned request (and frees its thread) instead of leaving it waiting on a hung server.
    """
    session = getattr(getattr(client, "_server", None), "_session", None)
    if session is not None and hasattr(session, "timeout"):
        session.timeout = timeout


class Chroma:
    """The process's Chroma client, opened on first use (never on the event loop's thread by itself).

    With a server, each call runs in a daemon thread and waits at most ``timeout`` seconds. When one
    runs out of time the server counts as hung: calls fail at once, so a hung store costs each
    request a quick error rather than a wait, while one background heartbeat at a time checks
    whether it answers again. Embedded, calls run in the caller's thread: there is no network to
    hang on.
    """

    def __init__(self, persist_dir: Path, url: str | None = None, timeout: float = 10.0) -> None:
        self.persist_dir = persist_dir
        self.url = url
        self.timeout = timeout
        self._client: ClientAPI | None = None
        self._opening = threading.Lock()
        self._hung = False
        self._probing = False
        self._probe_lock = threading.Lock()

    def client(self) -> ClientAPI:
        with self._opening:
            if self._client is None:
                self._client = open_client(self.persist_dir, self.url, self.timeout)
            return self._client

    def call(self, operation: Callable[[ClientAPI], T]) -> T:
        """``operation(client)``, under the deadline when the store is a server."""
        if self.url is None:
            return operation(self.client())
        if self._hung:
            self._probe()
            raise VectorStoreError(f"Chroma at {self.url} is not answering (a call took over {self.timeout:g} s)")
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(operation(self.client()))
            except BaseException as error:  # handed to the caller, whatever it is
                future.set_exception(error)

        # A daemon thread, not a pool's: one stuck on a hung server must not hold up the process's exit.
        threading.Thread(target=run, name="chroma-call", daemon=True).start()
        try:
            return future.result(self.timeout)
        except FutureTimeout:
            future.cancel()
            self._hung = True
            self._probe()
            raise VectorStoreError(f"Chroma at {self.url} did not answer within {self.timeout:g} s") from None

    def _probe(self) -> None:
        """Check in the background, one heartbeat at a time, whether a hung server answers again."""
        with self._probe_lock:
            if self._probing:
                return
            self._probing = True

        def run() -> None:
            try:
                self.client().heartbeat()
                self._hung = False
            except Exception:  # still not answering; the next call starts another check
                pass
            finally:
                self._probing = False

        threading.Thread(target=run, name="chroma-heartbeat", daemon=True).start()


def chunk_metadata(chunk: Chunk, source: str | None = None) -> dict[str, str | int]:
    metadata: dict[str, str | int] = {
        "path": chunk.path,
        "title": chunk.title,
        "heading_path": json.dumps(list(chunk.heading_path)),
        "start_line": chunk.start_line,
        "end_line": chunk.end_line,
        "source_type": chunk.source_type,
        "url": chunk.url,
        "description": chunk.description,
    }
    if source is not None:
        metadata[SOURCE_KEY] = source
    return metadata


def chunk_from_record(chunk_id: str, text: str, meta: Mapping[str, Any]) -> Chunk:
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


def _store_errors(method: Callable[Concatenate[VectorStore, P], T]) -> Callable[Concatenate[VectorStore, P], T]:
    """A Chroma server that is down or refuses becomes a :class:`VectorStoreError` (the API's 503), not a crash."""

    @functools.wraps(method)
    def wrapper(self: VectorStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(self, *args, **kwargs)
        except VectorStoreError:
            raise
        except OSError:  # a full disk under an embedded store: the caller reports it as it is
            raise
        except Exception as error:
            raise VectorStoreError(f"Chroma ({self.name}): {type(error).__name__}: {error}") from None

    return wrapper


def _not_found(error: Exception) -> bool:
    from chromadb.errors import NotFoundError

    return isinstance(error, NotFoundError)


class VectorStore:
    """A knowledge base's vectors, cosine space. Making one does no I/O; the collection is found on first use.

    ``collection`` names a collection to use as it is, bypassing the pointer: a replacement being
    filled (see :meth:`prepare_for`).
    """

    def __init__(self, chroma: Chroma, kb: str, collection: str | None = None) -> None:
        self.chroma = chroma
        self.kb = kb
        self.name = f"firstreply-{kb}"  # the first collection, before any replacement (kb names have no dots)
        self.pointer = f"{self.name}.current"
        self._fixed = collection
        self._collection: Collection | None = None
        self._resolving = threading.Lock()

    # -- finding the current collection ------------------------------------------------------------------

    def _read_pointer(self, client: ClientAPI) -> dict[str, Any] | None:
        try:
            return dict(client.get_collection(self.pointer, embedding_function=None).metadata or {})
        except Exception as error:
            if _not_found(error):
                return None
            raise

    def _resolve(self, client: ClientAPI) -> Collection:
        if self._fixed is not None:
            return client.get_collection(self._fixed, embedding_function=None)
        missing: str | None = None
        for _ in range(3):
            pointer = self._read_pointer(client)
            if pointer is None or COLLECTION_KEY not in pointer:
                return client.get_or_create_collection(self.name, embedding_function=None, configuration=COSINE)
            name = pointer[COLLECTION_KEY]
            if name == missing:  # still the current one, still absent: lost with the server's data; start afresh
                return client.get_or_create_collection(name, embedding_function=None, configuration=COSINE)
            try:
                return client.get_collection(name, embedding_function=None)
            except Exception as error:
                # Replaced and dropped since the pointer was read (a collection half-way through being dropped
                # fails with other errors than "not found"), or lost: read the pointer again.
                if not _not_found(error) and self._pointed_at(client) == name:
                    raise
                missing = name if _not_found(error) else None
        raise VectorStoreError(f"the collection of knowledge base {self.kb!r} keeps changing")

    def _pointed_at(self, client: ClientAPI) -> str | None:
        pointed = (self._read_pointer(client) or {}).get(COLLECTION_KEY)
        return None if pointed is None else str(pointed)

    def _current(self, client: ClientAPI) -> Collection:
        with self._resolving:
            if self._collection is None:
                self._collection = self._resolve(client)
            return self._collection

    def _forget(self, collection: Collection | None = None) -> None:
        with self._resolving:
            if collection is None or self._collection is collection:
                self._collection = None

    def _on_collection(self, operation: Callable[[Collection], T]) -> T:
        """``operation(collection)`` under the store's deadline; if another process replaced the collection
        meanwhile (it is gone), the new one is found and the operation runs once more there."""

        def run(client: ClientAPI) -> T:
            collection = self._current(client)
            try:
                return operation(collection)
            except Exception as error:
                if self._fixed is not None:
                    raise
                # A collection being dropped under a call fails with "not found" or with other errors
                # ("Missing metadata segment"); either way, if the pointer has moved on, follow it.
                if not _not_found(error) and self._pointed_at(client) in (None, collection.name):
                    raise
                self._forget(collection)
                return operation(self._current(client))

        return self.chroma.call(run)

    def _set_pointer(self, client: ClientAPI, collection: str, revision: str | None) -> None:
        metadata: dict[str, Any] = {COLLECTION_KEY: collection, **({REVISION_KEY: revision} if revision else {})}
        pointer = client.get_or_create_collection(self.pointer, embedding_function=None, metadata=metadata)
        if dict(pointer.metadata or {}) != metadata:
            pointer.modify(metadata=metadata)

    # -- revisions and replacement ------------------------------------------------------------------------

    @_store_errors
    def revision(self) -> str | None:
        """The index's revision as the last writer stamped it, read afresh (another replica may have written);
        when the pointer moved to another collection, this store follows it."""

        def read(client: ClientAPI) -> str | None:
            pointer = self._read_pointer(client)
            if pointer is None:  # written by an earlier version, or never: the revision is on the collection
                self._forget()
                pointer = dict(self._current(client).metadata or {})
            elif self._collection is not None and self._collection.name != pointer.get(COLLECTION_KEY):
                self._forget()
            revision = pointer.get(REVISION_KEY)
            return None if revision is None else str(revision)

        return self.chroma.call(read)

    @_store_errors
    def stamp_revision(self) -> str:
        """Mark the index as changed, so every replica knows its keyword index is stale; returns the revision."""
        revision = uuid.uuid4().hex
        self.chroma.call(lambda client: self._set_pointer(client, self._current(client).name, revision))
        return revision

    @_store_errors
    def prepare_for(self, kind: str, *, known: bool = False) -> "VectorStore":
        """Where vectors of ``kind`` (embedding model and text version) go: this store, or, when its collection
        holds vectors of another kind, an empty replacement for :meth:`replace_with` to make current once filled.

        ``known``: the caller's own records say the collection holds ``kind`` (it was written before
        collections carried their kind). Also makes sure the pointer exists, so readers never create a
        collection that a replacement may drop.
        """

        def check(client: ClientAPI) -> str | None:
            self._forget()  # read the collection's metadata afresh: another process may have stamped it
            current = self._current(client)
            metadata = dict(current.metadata or {})
            if self._read_pointer(client) is None:
                self._set_pointer(client, current.name, metadata.get(REVISION_KEY))
            stamped = metadata.get(EMBEDDING_KEY)
            if stamped == kind:
                return None
            if stamped is None and (known or current.count() == 0):
                current.modify(metadata={**metadata, EMBEDDING_KEY: kind})
                return None
            name = f"{self.name}.{uuid.uuid4().hex[:12]}"
            client.create_collection(name, embedding_function=None, configuration=COSINE, metadata={EMBEDDING_KEY: kind})
            return name

        name = self.chroma.call(check)
        return self if name is None else VectorStore(self.chroma, self.kb, collection=name)

    @_store_errors
    def replace_with(self, replacement: "VectorStore") -> str:
        """Make a filled replacement the current collection (one write: readers move over at their next look
        at the pointer), and drop older collections of this knowledge base.

        The collection it replaces is kept until the next replacement: dropping one while a replica reads it
        makes that read fail, or (measured on a Chroma server) come back empty without an error.
        """
        fixed = replacement._fixed
        assert fixed is not None, "only a store from prepare_for() replaces one"
        revision = uuid.uuid4().hex

        def switch(client: ClientAPI) -> None:
            replaced = self._pointed_at(client)
            self._set_pointer(client, fixed, revision)
            for collection in client.list_collections():
                name = collection.name
                ours = name == self.name or name.startswith(self.name + ".")
                if ours and name not in (self.pointer, fixed, replaced):
                    try:
                        client.delete_collection(name)
                    except Exception as error:
                        if not _not_found(error):
                            raise

        self.chroma.call(switch)
        self._forget()
        return revision

    # -- the vectors ----------------------------------------------------------------------------------------
    # Each batch's call is made by a method of its own, so the closure handed to _on_collection (which may run
    # it in a worker thread) holds that batch's values, never a loop variable.

    @_store_errors
    def count(self) -> int:
        return self._on_collection(lambda c: c.count())

    @_store_errors
    def upsert(self, chunks: list[Chunk], embeddings: np.ndarray, source: str | None = None) -> None:
        for start in range(0, len(chunks), BATCH):
            self._upsert_batch(chunks[start : start + BATCH], embeddings[start : start + BATCH], source)

    def _upsert_batch(self, batch: list[Chunk], embeddings: np.ndarray, source: str | None) -> None:
        self._on_collection(lambda c: c.upsert(
            ids=[x.id for x in batch],
            embeddings=embeddings,
            documents=[x.text for x in batch],
            metadatas=[chunk_metadata(x, source) for x in batch],
        ))

    @_store_errors
    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), BATCH):
            self._delete_batch(ids[start : start + BATCH])

    def _delete_batch(self, batch: list[str]) -> None:
        self._on_collection(lambda c: c.delete(ids=batch))

    @_store_errors
    def existing(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), BATCH):
            found.update(self._existing_batch(ids[start : start + BATCH]))
        return found

    def _existing_batch(self, batch: list[str]) -> list[str]:
        return self._on_collection(lambda c: c.get(ids=batch, include=[])["ids"])

    @_store_errors
    def ids(self, where: Where) -> set[str]:
        """The ids of every chunk whose metadata matches ``where`` (e.g. ``{"source": "/src/project"}``)."""
        found: set[str] = set()
        offset = 0
        while True:
            page = self._page(where, [], offset)["ids"]
            found.update(page)
            if len(page) < BATCH:
                return found
            offset += BATCH

    @_store_errors
    def all_chunks(self, where: Where | None = None) -> list[Chunk]:
        chunks: list[Chunk] = []
        offset = 0
        while True:
            page = self._page(where, ["documents", "metadatas"], offset)
            documents, metadatas = page["documents"], page["metadatas"]
            assert documents is not None and metadatas is not None  # both asked for in `include`
            chunks.extend(chunk_from_record(i, d or "", m or {})
                          for i, d, m in zip(page["ids"], documents, metadatas, strict=True))
            if len(page["ids"]) < BATCH:
                return chunks
            offset += BATCH

    def _page(self, where: Where | None, include: Include, offset: int) -> GetResult:
        return self._on_collection(lambda c: c.get(where=where, include=include, limit=BATCH, offset=offset))

    def query(self, embedding: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest chunk ids with their cosine similarity."""
        return self.query_many(np.asarray([embedding]), k)[0]

    @_store_errors
    def query_many(self, embeddings: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """Nearest chunks for several query vectors in one call."""
        if len(embeddings) == 0:
            return []
        result = self._on_collection(lambda c: c.query(query_embeddings=embeddings, n_results=k, include=["distances"]))
        distances = result["distances"]
        assert distances is not None  # asked for in `include`
        return [[(i, 1.0 - float(d)) for i, d in zip(ids, row, strict=True)]
                for ids, row in zip(result["ids"], distances, strict=True)]

    @_store_errors
    def update_metadata(self, chunks: list[Chunk], source: str | None = None) -> None:
        for start in range(0, len(chunks), BATCH):
            self._update_batch(chunks[start : start + BATCH], source)

    def _update_batch(self, batch: list[Chunk], source: str | None) -> None:
        self._on_collection(lambda c: c.update(ids=[x.id for x in batch],
                                               metadatas=[chunk_metadata(x, source) for x in batch]))
