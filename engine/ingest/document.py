"""What a parser produces from one file: a titled document made of sections of blocks.

A *block* is the smallest unit the chunker may not split unless it alone is too big: a
paragraph, a list, a fenced code block, a Python function. A *section* is the run of blocks
under one heading path; :class:`SectionBuilder` gathers them for parsers of formats with headings.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Block:
    text: str
    start_line: int  # 1-based, inclusive; 0 when the format has no lines (notebooks)
    end_line: int
    is_code: bool = False


@dataclass(slots=True)
class Section:
    heading_path: tuple[str, ...]
    blocks: list[Block] = field(default_factory=list)


@dataclass(slots=True)
class ParsedDocument:
    path: str  # relative to the source root, POSIX separators
    title: str
    source_type: str  # docs | example | code | config | text | notebook | qa
    sections: list[Section]
    description: str = ""
    has_lines: bool = True  # False where line anchors mean nothing (notebooks)
    #: Why only part of the file could be read (source with syntax errors: what parsed is kept); "" for all of it.
    partial: str = ""


class NotRead(Exception):
    """A parser declines a file it recognises (a config file too large to be a small document); the
    message is the reason, and the file is skipped and counted under it rather than listed as unreadable."""


class SectionBuilder:
    """Gathers a document's blocks into sections as a parser meets them and its headings, in reading order.

    A heading closes the section before it and opens one whose heading path is the headings above it:
    every open heading of a lower level (a higher number is a deeper heading), then this one. Sections
    without blocks are dropped. Parsers differ in how they find headings and blocks, not in this.
    """

    def __init__(self) -> None:
        self._done: list[Section] = []
        self._open_headings: list[tuple[int, str]] = []  # (level, heading), outermost first
        self._current = Section(heading_path=())

    def heading(self, level: int, text: str) -> None:
        if self._current.blocks:
            self._done.append(self._current)
        while self._open_headings and self._open_headings[-1][0] >= level:
            self._open_headings.pop()
        self._open_headings.append((level, text))
        self._current = Section(heading_path=tuple(h for _, h in self._open_headings))

    def add(self, block: Block) -> None:
        self._current.blocks.append(block)

    def finish(self, title: str) -> list[Section]:
        """The document's sections, once it is read. The page title is context for every section, so the
        headings below it form the path: a path that starts with the title drops it."""
        sections = self._done + ([self._current] if self._current.blocks else [])
        for section in sections:
            if section.heading_path and section.heading_path[0] == title:
                section.heading_path = section.heading_path[1:]
        return sections


def title_from_path(path: str) -> str:
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if stem.lower() in {"index", "readme", "overview", "__init__"} and "/" in path:
        stem = path.rsplit("/", 2)[-2] + " " + stem
    return stem.replace("_", " ").replace("-", " ").strip() or path
