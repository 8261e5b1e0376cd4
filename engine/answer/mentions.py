"""Defusing mentions in text a model wrote, so no answer can ping a crowd, a role or a person.

Frontends also block mentions on their side (Discord's ``allowed_mentions``); this is the
engine's own layer, so the text is safe wherever it is shown. It must run last, over the text
exactly as it will be shown: dropping a citation marker can join ``@every[9]one`` into a live
``@everyone``.

A crowd mention is recognised as a reader (or a frontend that normalises text) would see it: any
at sign (``@``, fullwidth ``＠``, small ``﹫``), then letters in any width or case, with invisible
characters (zero-width spaces and joiners, soft hyphens, variation selectors, …) anywhere in
between, that spell ``everyone`` or ``here``. It is defused by a zero-width space right after the
at sign, which is also how an already defused mention is recognised (so defusing twice changes nothing).
"""

from __future__ import annotations

import re
import unicodedata

ZERO_WIDTH_SPACE = "\u200b"
AT_SIGNS = "@\uff20\ufe6b"
#: Characters that show as nothing, so a reader sees the letters on either side as one word.
INVISIBLE = ("\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
             "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000e0000-\U000e007f\U000e0100-\U000e01ef")
CROWDS = ("everyone", "here")
# No look-behind: Discord pings "@everyone" wherever it stands, "x@everyone" and "foo.@here" included.
_AT_WORD = re.compile(rf"([{AT_SIGNS}])((?:[{INVISIBLE}]*\w)+)")
_INVISIBLE_RUN = re.compile(rf"[{INVISIBLE}]+")
_DISCORD_MENTION = re.compile(r"<@([!&]?)(\d+)>")
#: The end of a text that more text could still turn into a mention (streaming holds it back).
OPEN_MENTION = re.compile(rf"[{AT_SIGNS}](?:[{INVISIBLE}]|\w)*\Z")


def _spells_a_crowd(word: str) -> bool:
    """Whether ``word`` (after an at sign) begins with a crowd's name, read up to the end of a word or
    any invisible character (Discord ends a mention there; a reader does not)."""
    seen = ""
    for part in _INVISIBLE_RUN.split(word):
        seen += unicodedata.normalize("NFKC", part).casefold()
        if seen in CROWDS:
            return True
        if not any(crowd.startswith(seen) for crowd in CROWDS):
            return False
    return False


def _defuse_crowd(match: re.Match[str]) -> str:
    at, word = match.group(1), match.group(2)
    if word.startswith(ZERO_WIDTH_SPACE) or not _spells_a_crowd(word):
        return match.group(0)
    return f"{at}{ZERO_WIDTH_SPACE}{word}"


def defuse_mentions(text: str) -> str:
    text = _AT_WORD.sub(_defuse_crowd, text)
    return _DISCORD_MENTION.sub(lambda m: f"<@{ZERO_WIDTH_SPACE}{m.group(1)}{m.group(2)}>", text)
