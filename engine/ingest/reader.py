"""Reading one source: its files' text and fingerprints, their chunks on demand, and why any file was skipped.

This is where ingestion ends and the index begins: :class:`SourceReader` finds the source's files
(:func:`~engine.ingest.sources.discover`), reads each one it has a parser for, and hands it out with a
fingerprint of its text and of every setting that shapes its chunks, so whoever keeps an index can tell an
unchanged file without parsing it again; :meth:`SourceReader.chunks` parses and chunks a file when asked.
What was not read (binary files, unsupported formats, links out of the source, generated, minified or
vendored files, config files too large to be small documents, source read only in part for its syntax
errors) is counted in :attr:`SourceReader.skipped`; files that are not UTF-8 or that a parser fails on are
listed in :attr:`SourceReader.unreadable`. Nothing here knows about vectors, manifests or keyword indexes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from engine.ingest.chunking import Chunk, TokenCounter, chunk_document
from engine.ingest.document import NotRead, ParsedDocument
from engine.ingest.links import LinkBuilder
from engine.ingest.sources import (
    GENERATED,
    SourceInfo,
    UnreadableFile,
    discover,
    generated_by_path,
    generated_by_text,
    looks_binary,
    parser_for,
    read_text,
)

#: Told each step of a run: the phase ("reading", then the index's own), how far, and out of how many.
Progress = Callable[[str, int, int], None]


def file_fingerprint(text: str, settings_key: str) -> str:
    return hashlib.sha256(f"{settings_key}\0{text}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One readable file of a source, not parsed yet."""

    path: str  # relative to the source root, POSIX separators
    text: str
    fingerprint: str  # changes when the text or any setting that shapes its chunks changes
    served: bool  # links to it go to the engine's own copy of it (see :meth:`LinkBuilder.served`)
    parser: Callable[[str, str], ParsedDocument]


class SourceReader:
    """A folder or git checkout, read file by file for chunking (see the module docstring)."""

    def __init__(self, root: Path, count_tokens: TokenCounter, max_tokens: int, *, repo_url: str | None = None,
                 ref: str | None = None, url_map: dict[str, str] | None = None,
                 source_base: str | None = None) -> None:
        self.info: SourceInfo = discover(root, repo_url, ref)
        url_map = url_map or {}
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.links = LinkBuilder(self.info.repo_url, self.info.ref, url_map, self.info.repo_prefix, source_base)
        self.settings_key = json.dumps([max_tokens, self.info.repo_url, self.info.ref, self.info.repo_prefix,
                                        sorted(url_map.items()), source_base])
        self.skipped: dict[str, int] = {}  # why -> how many
        self.unreadable: list[tuple[str, str]] = []  # (path, why), in the order the files were read
        for _path, why in self.info.skipped:  # links out of the source, FIFOs, devices, folders nested too deep
            self._skip(why)

    @property
    def source(self) -> str:
        """The source's resolved root, as the index tags its chunks."""
        return str(self.info.root)

    def _skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def files(self, progress: Progress | None = None) -> Iterator[SourceFile]:
        """Each file that has a parser and reads as text, in path order; the others are counted or listed."""
        root, paths = self.info.root, self.info.files
        for index, rel_path in enumerate(paths):
            if progress:
                progress("reading", index + 1, len(paths))
            if generated_by_path(rel_path):  # node_modules/, dist/, vendor/, target/, *.min.js
                self._skip(GENERATED)
                continue
            parser = parser_for(rel_path)
            if parser is None:
                self._skip("binary" if looks_binary(root, rel_path) else "unsupported format")
                continue
            try:
                text = read_text(root, rel_path)
            except UnreadableFile as error:
                self.unreadable.append((rel_path, str(error)))
                continue
            if text is None:
                self._skip("binary")
                continue
            if generated_by_text(rel_path, text):  # minified bundles, ``Code generated … DO NOT EDIT.``
                self._skip(GENERATED)
                continue
            yield SourceFile(rel_path, text, file_fingerprint(text, self.settings_key), self.links.served(rel_path),
                             parser)

    def chunks(self, file: SourceFile) -> list[Chunk] | None:
        """The file's chunks, or None: skipped and counted when its parser declines it (a config file too
        large), listed as unreadable when its parser fails on it. Source with syntax errors keeps what
        parsed and is counted too (under :data:`~engine.ingest.code_units.SYNTAX_ERRORS`)."""
        try:
            doc = file.parser(file.path, file.text)
            if doc.partial:
                self._skip(doc.partial)
            return chunk_document(doc, self.count_tokens, self.max_tokens, self.links)
        except NotRead as declined:
            self._skip(str(declined))
            return None
        except Exception as error:  # a parser bug must not stop the run; say which file
            self.unreadable.append((file.path, f"could not parse: {type(error).__name__}: {error}"))
            return None
