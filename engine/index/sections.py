"""Sections: a retrieved chunk widened to the part of its page under the same heading, as evidence for an answer.

Chunks are cut to fit the embedding model, so one numbered list of steps, one table or one
example may lie across several chunks of a section, and the chunk that matched the question
may hold only the `Nav` row of a table whose `BeforeNavLinks` row was the answer. An answer is
better quoted from the whole section: :class:`SectionMap` joins a section's chunks back in
line order — a table continued across chunks keeps one header — within a size cap, grown around the matched chunk when the
section is longer. A widened hit keeps its chunk's id, path and link (which point at the
match); only its text and line range are the section's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from engine.ingest.chunking import Chunk

if TYPE_CHECKING:
    from engine.index.retriever import Hit

#: The most characters of a section given as evidence (about 1,500 tokens); a longer one is cut around the match.
MAX_SECTION_CHARS = 6000
#: A section shorter than this (a line or two before its subsections) is given with its subsections.
LEAD_IN_CHARS = 200


def _table_head(text: str) -> list[str] | None:
    """The header row and rule of the table ``text`` starts with, or None."""
    lines = text.split("\n", 2)
    if len(lines) >= 2 and lines[0].lstrip().startswith("|") and set(lines[1].strip()) <= set("|-: ") and "-" in lines[1]:
        return lines[:2]
    return None


def join_chunks(texts: Sequence[str]) -> str:
    """Consecutive chunks of one section as one text: a table that goes on in the next chunk, under the
    same header repeated, is continued rather than started again."""
    joined = ""
    for text in texts:
        text = text.strip("\n")
        head = _table_head(text)
        last_part = joined.rsplit("\n\n", 1)[-1]
        if joined and head and _table_head(last_part) == head:
            rest = text.split("\n", 2)[2] if text.count("\n") >= 2 else ""
            first, _, after = rest.partition("\n\n")  # the table's rows, then whatever followed them in that chunk
            joined += ("\n" + first if first else "") + ("\n\n" + after if after else "")
        else:
            joined += ("\n\n" if joined else "") + text
    return joined


class SectionMap:
    """Each chunk's section (same page, same heading path), from the chunks of a knowledge base."""

    def __init__(self, chunks: Iterable[Chunk], max_chars: int = MAX_SECTION_CHARS) -> None:
        self.max_chars = max_chars
        self._sections: dict[tuple[str, tuple[str, ...]], list[Chunk]] = {}
        for _order, chunk in sorted(enumerate(chunks), key=lambda pair: (pair[1].path, pair[1].start_line, pair[0])):
            self._sections.setdefault((chunk.path, chunk.heading_path), []).append(chunk)
        self._headings: dict[str, list[tuple[str, ...]]] = {}
        for path, heading in self._sections:
            self._headings.setdefault(path, []).append(heading)

    def _members(self, chunk: Chunk) -> list[Chunk]:
        members = self._sections.get((chunk.path, chunk.heading_path), [])
        return members if any(m.id == chunk.id for m in members) else [chunk]

    def section_of(self, chunk: Chunk) -> Chunk:
        """``chunk`` with its section's text and lines: the whole section when it fits ``max_chars``, else the
        chunk and its neighbours, taken alternately after and before it while they fit. A section that is only
        a lead-in to its subsections ("…via two ways:", or a line or two) comes with them, each under its
        heading, as many as fit."""
        members = self._members(chunk)
        at = next(i for i, m in enumerate(members) if m.id == chunk.id)
        first, last, size = at, at, len(chunk.text)
        grew = True
        while grew:
            grew = False
            for step in (1, -1):
                i = last + 1 if step == 1 else first - 1
                if 0 <= i < len(members) and size + len(members[i].text) + 2 <= self.max_chars:
                    size += len(members[i].text) + 2
                    first, last = min(first, i), max(last, i)
                    grew = True
        chosen = members[first:last + 1]
        text = join_chunks([m.text for m in chosen])
        if len(chosen) == len(members) and (text.rstrip().endswith(":") or len(text) < LEAD_IN_CHARS):
            for heading, sub in self._subsections(chunk):
                part = f"**{' › '.join(heading)}**\n\n{join_chunks([m.text for m in sub])}"
                if len(text) + len(part) + 2 > self.max_chars:
                    break
                text += "\n\n" + part
                chosen = chosen + sub
        if len(chosen) == 1:
            return chunk
        lined = [m for m in chosen if m.start_line]
        return dataclasses.replace(
            chunk, text=text,
            start_line=min((m.start_line for m in lined), default=chunk.start_line),
            end_line=max((m.end_line for m in lined), default=chunk.end_line),
        )

    def _subsections(self, chunk: Chunk) -> list[tuple[tuple[str, ...], list[Chunk]]]:
        """The sections under ``chunk``'s heading, in page order, each with its headings below that one."""
        depth = len(chunk.heading_path)
        subs = [(heading[depth:], self._sections[(chunk.path, heading)]) for heading in self._headings.get(chunk.path, [])
                if len(heading) > depth and heading[:depth] == chunk.heading_path]
        return sorted(subs, key=lambda sub: min(m.start_line for m in sub[1]))

    def widen(self, hits: Sequence[Hit], k: int) -> list[Hit]:
        """The first ``k`` hits each widened to its section; a hit whose section an earlier hit gave already is
        left out (its text is in that one), so ``k`` sections are ``k`` different parts of the docs."""
        widened: list[Hit] = []
        for hit in hits:
            if any(hit.chunk.path == w.chunk.path and hit.chunk.text in w.chunk.text for w in widened):
                continue
            widened.append(dataclasses.replace(hit, chunk=self.section_of(hit.chunk)))
            if len(widened) == k:
                break
        return widened
