"""What text the store can hold: every column is UTF-8 text, and PostgreSQL refuses a NUL character
in one, and no encoder takes a lone UTF-16 surrogate. Checked at every edge that writes text."""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def text_problem(text: str) -> str | None:
    """Why ``text`` can't be encoded or stored (a lone surrogate, a NUL character); None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    kind = "a NUL character" if found.group() == "\x00" else f"a lone surrogate (U+{ord(found.group()):04X})"
    return f"is not valid Unicode text: it holds {kind}"
