"""Building a knowledge base's index from one source, incrementally: vectors, manifest and keyword index.

The source is read and chunked by :class:`~engine.ingest.reader.SourceReader`; this module decides
what of it the index lacks and writes it. Each run compares every file's fingerprint (its content
and the chunking settings) with the manifest from the last run: unchanged files are not parsed
again, and within a changed file only chunks whose id is new are embedded (chunk ids hash
their own content). Chunks of deleted files, and chunks a change made obsolete, are removed.

The manifest is only a cache: each run checks it against the vector store it writes to. The
store tags every chunk with its source, so a file whose chunks the store lacks (its data was
lost, or it was replaced) is read again and re-embedded, and a chunk of this source that no
current file has (left by a run that died) is removed. Vectors of another embedding model are
replaced by a new collection, built whole before it takes over.

Commit order, so that a run killed at any point is repaired by the next: the store's revision
is stamped before the first write (from then on the keyword index differs from it), then the
vectors are written, the manifest saved, and last the keyword index rebuilt under a fresh
revision. A run whose keyword index doesn't match the store's revision rebuilds it.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, TypedDict

from engine.index.keywords import KeywordIndex
from engine.index.vectors import SOURCE_KEY, VectorStore
from engine.ingest.chunking import EMBEDDING_TEXT_VERSION, Chunk
from engine.ingest.reader import Progress, SourceReader

if TYPE_CHECKING:
    from engine.index.embedder import Embedder

EMBED_BATCH = 256
MANIFEST_VERSION = 1


class FileEntry(TypedDict):
    """The manifest's record of one indexed file."""

    sha256: str  # the file's fingerprint: its content and the chunking settings
    chunks: list[str]  # the ids of its chunks


class SourceEntry(TypedDict):
    files: dict[str, FileEntry]  # by path within the source


class ManifestData(TypedDict):
    version: int
    embedding: str | None  # the kind of vectors the sources were indexed with (model and text version)
    sources: dict[str, SourceEntry]


@dataclass
class IngestReport:
    """What one run did to the index, and which files it skipped or could not read (`firstreply ingest` prints it)."""

    source: str
    files_seen: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # unchanged here, but missing from the vector store
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_deleted: int = 0
    chunks_total: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.repaired)

    def summary(self) -> str:
        parts = [
            f"{self.files_seen} files: {len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.removed)} removed, {self.unchanged} unchanged" + (f", {len(self.repaired)} repaired" if self.repaired else ""),
            f"chunks: {self.chunks_embedded} embedded, {self.chunks_reused} reused, "
            f"{self.chunks_deleted} deleted, {self.chunks_total} in the index",
        ]
        if self.skipped:
            parts.append("skipped: " + ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())))
        if self.unreadable:
            parts.append(f"unreadable: {len(self.unreadable)}")
        return "; ".join(parts) + f" ({self.seconds:.1f} s)"

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items()}
        data["unreadable"] = [{"path": p, "reason": r} for p, r in self.unreadable]
        return data


class Manifest:
    """What the last runs indexed, per source: file -> content hash and chunk ids."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: ManifestData = {"version": MANIFEST_VERSION, "embedding": None, "sources": {}}
        if path.exists():
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if loaded.get("version") == MANIFEST_VERSION:
                self.data = loaded

    def files(self, source: str) -> dict[str, FileEntry]:
        return self.data["sources"].setdefault(source, {"files": {}})["files"]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, self.path)


class SourceCopies:
    """The engine's read-only copies of a plain folder's files (``kb/<kb>/sources/<path>``), which its source
    view serves, so a citation of a folder with no repository still opens. Only ingested files are copied."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def keep(self, rel_path: str, text: str) -> None:
        target = self.folder / rel_path
        try:
            if target.is_file() and target.read_text(encoding="utf-8") == text:
                return
        except (OSError, UnicodeDecodeError):
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)

    def remove(self, rel_paths: Iterable[str]) -> None:
        for rel_path in rel_paths:
            (self.folder / rel_path).unlink(missing_ok=True)


class IndexBuilder:
    """Brings a knowledge base's index (``kb_dir``: manifest, keyword index, source copies; and its vector store)
    up to date with one source; see the module docstring for what a run does and in which order."""

    def __init__(self, embedder: Embedder, vectors: VectorStore, kb_dir: Path, *, max_tokens: int | None = None,
                 url_map: dict[str, str] | None = None, source_base: str | None = None) -> None:
        self.embedder = embedder
        self.source_base = source_base  # where the engine serves its copies of a plain folder's files
        self.vectors = vectors
        self.kb_dir = kb_dir
        self.max_tokens = max_tokens
        self.url_map = url_map or {}
        self.manifest = Manifest(kb_dir / "manifest.json")

    @property
    def keyword_dir(self) -> Path:
        return self.kb_dir / "keywords"

    def run(self, root: Path, repo_url: str | None = None, ref: str | None = None,
            progress: Progress | None = None) -> IngestReport:
        started = time.perf_counter()
        reader = SourceReader(root, self.embedder.count_tokens, self.max_tokens or self.embedder.max_tokens,
                              repo_url=repo_url, ref=ref, url_map=self.url_map, source_base=self.source_base)
        source = reader.source
        # The reader's own skip counts and unreadable list: they grow as it reads, and the report shows them.
        report = IngestReport(source=source, files_seen=len(reader.info.files), skipped=reader.skipped,
                              unreadable=reader.unreadable)
        vector_kind = f"{self.embedder.fingerprint}/text-v{EMBEDDING_TEXT_VERSION}"
        # Vectors from another model, or of differently prepared text, can't sit beside these: a new collection.
        store = self.vectors.prepare_for(vector_kind, known=self.manifest.data.get("embedding") == vector_kind)
        replacing = store is not self.vectors
        if replacing or self.manifest.data.get("embedding") != vector_kind:
            self.manifest.data["embedding"] = vector_kind
            self.manifest.data["sources"] = {}
        known = self.manifest.files(source)
        stored = store.ids({SOURCE_KEY: source})  # what the store holds of this source, whatever the manifest says
        copies = SourceCopies(self.kb_dir / "sources")

        fresh: dict[str, FileEntry] = {}
        new_chunks: list[Chunk] = []
        for file in reader.files(progress):
            if file.served:
                copies.keep(file.path, file.text)
            previous = known.get(file.path)
            same = previous is not None and previous["sha256"] == file.fingerprint
            if previous is not None and same and stored.issuperset(previous["chunks"]):
                fresh[file.path] = previous
                report.unchanged += 1
                continue
            chunks = reader.chunks(file)
            if chunks is None:  # the parser failed on it: listed as unreadable
                continue
            (report.repaired if same else report.updated if previous else report.added).append(file.path)
            fresh[file.path] = {"sha256": file.fingerprint, "chunks": [c.id for c in chunks]}
            new_chunks.extend(chunks)

        report.removed = sorted(set(known) - set(fresh) - {p for p, _ in report.unreadable})
        for path, _ in report.unreadable:  # keeps its old chunks until it is readable again
            if path in known:
                fresh[path] = known[path]

        wanted = {i for entry in fresh.values() for i in entry["chunks"]}
        obsolete = (stored | {i for entry in known.values() for i in entry["chunks"]}) - wanted
        present = store.existing([c.id for c in new_chunks])
        to_embed = [c for c in new_chunks if c.id not in present]
        reused = [c for c in new_chunks if c.id in present]
        report.chunks_reused = len(reused)
        writes = bool(to_embed or reused or obsolete)
        if writes and not replacing:
            store.stamp_revision()  # before the first write: a crash from here on leaves the keyword index stale
        embed_started = time.perf_counter()
        # Writing a batch to the vector store overlaps with encoding the next one.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="upsert") as writer:
            pending: Future[None] | None = None
            for start in range(0, len(to_embed), EMBED_BATCH):
                batch = to_embed[start : start + EMBED_BATCH]
                vectors = self.embedder.encode([c.embedding_text for c in batch])
                if pending is not None:
                    pending.result()
                pending = writer.submit(store.upsert, batch, vectors, source)
                report.chunks_embedded += len(batch)
                if progress:
                    progress("embedding", report.chunks_embedded, len(to_embed))
            if pending is not None:
                pending.result()
        report.embed_seconds = time.perf_counter() - embed_started
        if reused:  # same text, but links may have moved (a new ref, a new URL map), and now tagged with the source
            store.update_metadata(reused, source)
        store.delete(obsolete)
        report.chunks_deleted = len(obsolete)

        if replacing:  # golden records and past answers come along, embedded by this model, so none is missing at the switch
            for kept in ("golden", "past_answer"):
                carried = self.vectors.all_chunks({"source_type": kept})
                if carried:
                    store.upsert(carried, self.embedder.encode([c.embedding_text for c in carried]))

        copies.remove(report.removed)
        known.clear()
        known.update(fresh)
        self.manifest.save()
        if replacing:
            self.vectors.replace_with(store)
        if writes or replacing or not KeywordIndex.is_current(self.keyword_dir, self.vectors.revision()):
            if progress:
                progress("keyword index", 0, 1)
            KeywordIndex.rebuild(self.vectors, self.keyword_dir)
        report.chunks_total = self.vectors.count()
        report.seconds = time.perf_counter() - started
        return report

