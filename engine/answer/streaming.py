"""Streaming a model's text as safely as the finished answer: nothing shown can ping or mis-cite.

Mentions are defused and invalid citation markers dropped over whole text, but a model streams in
pieces cut wherever its tokenizer cuts (``" @"``, ``"every"``, ``"one"``). :class:`HeldBackText`
releases text only up to the point where nothing that follows can change how it reads: an ``@``
still followed only by letters, a ``<`` not yet closed, a ``[`` not yet closed (and the spaces
before it, which a dropped marker takes with it) wait for the next piece. What is released is
cleaned exactly as the final answer is, so the pieces add up to the final text.
"""

from __future__ import annotations

import re
from typing import Callable

_OPEN_AT = re.compile(r"@\w*\Z")  # could still become @everyone, @here
_OPEN_ANGLE = re.compile(r"<[^<>]{0,40}\Z")  # could still become <@&123>
_OPEN_BRACKET = re.compile(r"\[[\d\s,]{0,24}\Z")  # could still become a citation marker [12] or [1, 2]


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
