"""What a parser produces from one file: a titled document made of sections of blocks.

A *block* is the smallest unit the chunker may not split unless it alone is too big: a
paragraph, a list, a fenced code block, a Python function. A *section* is the run of blocks
under one heading path.
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
    source_type: str  # docs | example | code | text | notebook | qa
    sections: list[Section]
    description: str = ""
    has_lines: bool = True  # False where line anchors mean nothing (notebooks)


def title_from_path(path: str) -> str:
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if stem.lower() in {"index", "readme", "overview", "__init__"} and "/" in path:
        stem = path.rsplit("/", 2)[-2] + " " + stem
    return stem.replace("_", " ").replace("-", " ").strip() or path
