"""Citations: the [n] markers a model wrote, checked against the passages it was actually given.

The model numbers passages by retrieval rank, so an answer may cite [3][1][5]. The reader sees a
source list numbered 1, 2, 3, so the markers are renumbered by first appearance: the first source
cited becomes [1], the next new one [2], and so on; the citations carry the new numbers. Text in
code (a fenced block, an inline code span) is quoted, not cited: ``colors[1]`` is left alone.

A marker is ``[n]`` or ``[n, m, …]`` with at most :data:`MAX_MARKER_INNER` characters between its
brackets; anything longer is plain text. Streaming holds back an open ``[`` for exactly that long
(:mod:`engine.answer.streaming`), so a streamed answer reads as the finished one does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from engine.answer.mentions import defuse_mentions
from engine.answer.model import Citation
from engine.llm.base import ContextPassage

#: The most characters a citation marker holds between its brackets ("12, 13, 14, 15, 16" and room to spare).
MAX_MARKER_INNER = 22
_MARKER = re.compile(rf"\[([\d\s,]{{1,{MAX_MARKER_INNER}}})\]")
_MARKER_INNER = re.compile(r"\d{1,3}(?:\s*,\s*\d{1,3})*")
_BACKTICKS = re.compile(r"`+|\n[ \t]*\n")  # backtick runs, and blank lines (which end an unclosed inline span)
_DROPPED = "\x00"


@dataclass
class Numbering:
    """How passages are renumbered (passage number -> shown number), and whether the text so far ends inside
    code: shared by the pieces of a streamed answer, so they read exactly as the whole answer does."""

    shown: dict[int, int] = field(default_factory=dict)
    fence: str = ""  # the backtick run that opened the code we are in ("" outside code)


def _prose_and_code(text: str, numbering: Numbering) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, is_code), carrying ``numbering.fence`` over from the text before it."""
    parts: list[tuple[str, bool]] = []
    start = 0
    for run in _BACKTICKS.finditer(text):
        ticks = run.group()
        if not ticks.startswith("`"):  # a blank line: an inline span left open is no code after all
            if numbering.fence and len(numbering.fence) < 3:  # (what came before stays code: it may be shown already)
                parts.append((text[start:run.start()], True))
                numbering.fence, start = "", run.start()
            continue
        if not numbering.fence:
            parts.append((text[start:run.start()], False))
            numbering.fence, start = ticks, run.start()
        elif ticks == numbering.fence or (len(numbering.fence) >= 3 and len(ticks) >= len(numbering.fence)):
            parts.append((text[start:run.end()], True))
            numbering.fence, start = "", run.end()
    parts.append((text[start:], bool(numbering.fence)))
    return parts


def finish_text(text: str, passages: Sequence[ContextPassage],
                numbering: Numbering | None = None) -> tuple[str, list[Citation]]:
    """The text as it is shown: invalid markers dropped and the rest renumbered, then mentions defused over
    the result (dropping a marker can join ``@every[9]one`` into a live ``@everyone``); and the cited sources."""
    cleaned, citations = resolve_citations(text, passages, numbering)
    return defuse_mentions(cleaned), citations


def resolve_citations(text: str, passages: Sequence[ContextPassage],
                      numbering: Numbering | None = None) -> tuple[str, list[Citation]]:
    """Drop markers that point at no given passage and renumber the rest by first appearance; return the text
    and the cited sources, in order (numbered 1, 2, 3…). ``numbering`` carries the state across the pieces
    of a streamed answer."""
    given = {p.number: p for p in passages}
    numbering = numbering if numbering is not None else Numbering()
    shown = numbering.shown
    cited: list[int] = []

    def keep(match: re.Match[str]) -> str:
        if not _MARKER_INNER.fullmatch(match.group(1)):
            return match.group(0)  # brackets around digits, but not a marker: "[ 1]", "[1,,2]"
        numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
        valid = [n for n in numbers if n in given]
        for n in valid:
            if n not in shown:
                shown[n] = len(shown) + 1
            if n not in cited:
                cited.append(n)
        return "".join(f"[{shown[n]}]" for n in valid) or _DROPPED

    pieces = [piece if code else _MARKER.sub(keep, piece) for piece, code in _prose_and_code(text, numbering)]
    cleaned = re.sub(rf"[ \t]*{_DROPPED}", "", "".join(pieces))  # a dropped marker takes its leading space with it
    citations = []
    for n in sorted(cited, key=shown.__getitem__):
        p = given[n]
        title, _, heading = defuse_mentions(p.title).partition(" › ")  # titles are shown beside the answer
        citations.append(Citation(shown[n], title, p.url, p.path, heading))
    return cleaned, citations


def strip_markers(text: str) -> str:
    """The text without its [n] markers (and the space before each), code left alone: for an answer quoted
    away from the sources it once cited, such as a golden record."""
    numbering = Numbering()
    def drop(match: re.Match[str]) -> str:
        return "" if _MARKER_INNER.fullmatch(match.group(1)) else match.group(0)

    return "".join(piece if code else re.sub(r"[ \t]*" + _MARKER.pattern, drop, piece)
                   for piece, code in _prose_and_code(text, numbering))
