"""Citations: the [n] markers a model wrote, checked against the passages it was actually given."""

from __future__ import annotations

import re
from typing import Sequence

from engine.answer.mentions import defuse_mentions
from engine.answer.model import Citation
from engine.llm.base import ContextPassage

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_DROPPED = "\x00"


def resolve_citations(text: str, passages: Sequence[ContextPassage]) -> tuple[str, list[Citation]]:
    """Drop markers that point at no given passage; return the text and the cited sources, in order."""
    given = {p.number: p for p in passages}
    cited: list[int] = []

    def keep(match: re.Match) -> str:
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
