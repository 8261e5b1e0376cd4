"""Citations: the [n] markers a model wrote, checked against the passages it was actually given.

A marker is ``[n]`` or ``[n, m, …]`` with at most :data:`MAX_MARKER_INNER` characters between its
brackets; anything longer is plain text. Streaming holds back an open ``[`` for exactly that long
(:mod:`engine.answer.streaming`), so a streamed answer reads as the finished one does.
"""

from __future__ import annotations

import re
from typing import Sequence

from engine.answer.mentions import defuse_mentions
from engine.answer.model import Citation
from engine.llm.base import ContextPassage

#: The most characters a citation marker holds between its brackets ("12, 13, 14, 15, 16" and room to spare).
MAX_MARKER_INNER = 22
_MARKER = re.compile(rf"\[([\d\s,]{{1,{MAX_MARKER_INNER}}})\]")
_MARKER_INNER = re.compile(r"\d{1,3}(?:\s*,\s*\d{1,3})*")
_DROPPED = "\x00"


def finish_text(text: str, passages: Sequence[ContextPassage]) -> tuple[str, list[Citation]]:
    """The text as it is shown: invalid markers dropped, then mentions defused over the result (dropping
    a marker can join ``@every[9]one`` into a live ``@everyone``); and the cited sources."""
    cleaned, citations = resolve_citations(text, passages)
    return defuse_mentions(cleaned), citations


def resolve_citations(text: str, passages: Sequence[ContextPassage]) -> tuple[str, list[Citation]]:
    """Drop markers that point at no given passage; return the text and the cited sources, in order.

    Mentions are not defused here (titles aside): :func:`finish_text` does both, in the safe order."""
    given = {p.number: p for p in passages}
    cited: list[int] = []

    def keep(match: re.Match) -> str:
        if not _MARKER_INNER.fullmatch(match.group(1)):
            return match.group(0)  # brackets around digits, but not a marker: "[ 1]", "[1,,2]"
        numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
        valid = [n for n in numbers if n in given]
        for n in valid:
            if n not in cited:
                cited.append(n)
        return "".join(f"[{n}]" for n in valid) or _DROPPED

    cleaned = _MARKER.sub(keep, text)
    cleaned = re.sub(rf"[ \t]*{_DROPPED}", "", cleaned)  # a dropped marker takes its leading space with it
    citations = []
    for n in cited:
        p = given[n]
        title, _, heading = defuse_mentions(p.title).partition(" › ")  # titles are shown beside the answer
        citations.append(Citation(n, title, p.url, p.path, heading))
    return cleaned, citations
