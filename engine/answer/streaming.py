"""Streaming a model's text as safely as the finished answer: nothing shown can ping or mis-cite.

Mentions are defused and invalid citation markers dropped over whole text, but a model streams in
pieces cut wherever its tokenizer cuts (``" @"``, ``"every"``, ``"one"``). :class:`HeldBackText`
releases text only up to the point where nothing that follows can change how it reads: an ``@``
still followed only by letters (and any citation markers and spaces after them, since a dropped
marker would join ``@every[9]`` to ``one``), a ``<`` not yet closed, a ``[`` not yet closed (and
the spaces before it, which a dropped marker takes with it) wait for the next piece. What is released is
cleaned exactly as the final answer is, so the pieces add up to the final text.
"""

from __future__ import annotations

import re
from typing import Callable

from engine.answer.citations import MAX_MARKER_INNER
from engine.answer.mentions import AT_SIGNS, INVISIBLE

_MARKER_OR_OPEN = rf"\[[\d\s,]{{0,{MAX_MARKER_INNER}}}\]?"
# An at sign and a word that could still become @everyone or @here (in any width, with invisible characters
# between), and any markers and spaces after it: a dropped marker takes its spaces with it and would join
# "@every" to the "one" that comes next.
_OPEN_AT = re.compile(rf"[{AT_SIGNS}](?:[{INVISIBLE}]|\w|\s*{_MARKER_OR_OPEN})*\s*\Z")
_OPEN_ANGLE = re.compile(r"<[^<>]{0,40}\Z")  # could still become <@&123>
# could still become a citation marker [12] or [1, 2]: exactly as long as a marker may be, no longer
_OPEN_BRACKET = re.compile(rf"\[[\d\s,]{{0,{MAX_MARKER_INNER}}}\Z")


def release_point(text: str) -> int:
    """How much of ``text`` may be shown now: everything before the earliest construct still open at its end,
    and before the whitespace in front of it."""
    cut = len(text)
    for pattern in (_OPEN_AT, _OPEN_ANGLE, _OPEN_BRACKET):
        found = pattern.search(text)
        if found:
            cut = min(cut, found.start())
    while cut > 0 and text[cut - 1].isspace():
        cut -= 1
    return cut


class HeldBackText:
    """Feed it streamed pieces; it gives back what may be shown, cleaned by ``clean``."""

    def __init__(self, clean: Callable[[str], str]) -> None:
        self.clean = clean
        self.pending = ""

    def push(self, piece: str) -> str:
        self.pending += piece
        cut = release_point(self.pending)
        ready, self.pending = self.pending[:cut], self.pending[cut:]
        return self.clean(ready) if ready else ""

    def flush(self) -> str:
        ready, self.pending = self.pending, ""
        return self.clean(ready) if ready else ""
