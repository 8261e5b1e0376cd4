"""Incremental ingestion of one source into a knowledge base.

Each run compares every file's content hash with the manifest from the last run: unchanged
files are not parsed again, and within a changed file only chunks whose id is new are
embedded (chunk ids hash their own content). Chunks of deleted files, and chunks a change
made obsolete, are removed.

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

import hashlib
import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.ingest.chunking import EMBEDDING_TEXT_VERSION, Chunk, chunk_document
from engine.ingest.links import LinkBuilder
from engine.ingest.sources import UnreadableFile, discover, looks_binary, parser_for, read_text
from engine.index.keywords import KeywordIndex
from engine.index.vectors import SOURCE_KEY

Progress = Callable[[str, int, int], None]
EMBED_BATCH = 256
MANIFEST_VERSION = 1


@dataclass
class IngestReport:
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

    def as_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items()}
        data["unreadable"] = [{"path": p, "reason": r} for p, r in self.unreadable]
        return data


class Manifest:
    """What the last runs indexed, per source: file -> content hash and chunk ids."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict = {"version": MANIFEST_VERSION, "embedding": None, "sources": {}}
        if path.exists():
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if loaded.get("version") == MANIFEST_VERSION:
                self.data = loaded

    def files(self, source: str) -> dict[str, dict]:
        return self.data["sources"].setdefault(source, {"files": {}})["files"]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, self.path)


def file_fingerprint(text: str, settings_key: str) -> str:
    return hashlib.sha256(f"{settings_key}\0{text}".encode()).hexdigest()


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

    def remove(self, rel_paths) -> None:
        for rel_path in rel_paths:
            (self.folder / rel_path).unlink(missing_ok=True)


class Ingestor:
    def __init__(self, embedder, vectors, kb_dir: Path, *, max_tokens: int | None = None,
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
        info = discover(root, repo_url, ref)
        source = str(info.root)
        report = IngestReport(source=source, files_seen=len(info.files))
        for _path, why in info.skipped:  # links out of the source, FIFOs, devices, folders nested too deep
            report.skipped[why] = report.skipped.get(why, 0) + 1
        vector_kind = f"{self.embedder.fingerprint}/text-v{EMBEDDING_TEXT_VERSION}"
        # Vectors from another model, or of differently prepared text, can't sit beside these: a new collection.
        store = self.vectors.prepare_for(vector_kind, known=self.manifest.data.get("embedding") == vector_kind)
        replacing = store is not self.vectors
        if replacing or self.manifest.data.get("embedding") != vector_kind:
            self.manifest.data.update(embedding=vector_kind, sources={})
        known = self.manifest.files(source)
        stored = store.ids({SOURCE_KEY: source})  # what the store holds of this source, whatever the manifest says
        max_tokens = self.max_tokens or self.embedder.max_tokens
        links = LinkBuilder(info.repo_url, info.ref, self.url_map, info.repo_prefix, self.source_base)
        settings_key = json.dumps([max_tokens, info.repo_url, info.ref, info.repo_prefix, sorted(self.url_map.items()),
                                   self.source_base])
        copies = SourceCopies(self.kb_dir / "sources")

        fresh: dict[str, dict] = {}
        new_chunks: list[Chunk] = []
        for index, rel_path in enumerate(info.files):
            if progress:
                progress("reading", index + 1, len(info.files))
            parser = parser_for(rel_path)
            if parser is None:
                reason = "binary" if looks_binary(info.root, rel_path) else "unsupported format"
                report.skipped[reason] = report.skipped.get(reason, 0) + 1
                continue
            try:
                text = read_text(info.root, rel_path)
            except UnreadableFile as error:
                report.unreadable.append((rel_path, str(error)))
                continue
            if text is None:
                report.skipped["binary"] = report.skipped.get("binary", 0) + 1
                continue
            if links.served(rel_path):
                copies.keep(rel_path, text)
            digest = file_fingerprint(text, settings_key)
            previous = known.get(rel_path)
            same = previous is not None and previous["sha256"] == digest
            if same and stored.issuperset(previous["chunks"]):
                fresh[rel_path] = previous
                report.unchanged += 1
                continue
            try:
                chunks = chunk_document(parser(rel_path, text), self.embedder.count_tokens, max_tokens, links)
            except Exception as error:  # a parser bug must not stop the run; say which file
                report.unreadable.append((rel_path, f"could not parse: {type(error).__name__}: {error}"))
                continue
            (report.repaired if same else report.updated if previous else report.added).append(rel_path)
            fresh[rel_path] = {"sha256": digest, "chunks": [c.id for c in chunks]}
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
            pending: Future | None = None
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

        if replacing:  # the golden records come along, embedded by this model, so none is missing at the switch
            golden = self.vectors.all_chunks({"source_type": "golden"})
            if golden:
                store.upsert(golden, self.embedder.encode([c.embedding_text for c in golden]))

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

