"""Defusing mentions in text a model wrote, so no answer can ping a crowd, a role or a person.

Frontends also block mentions on their side (Discord's ``allowed_mentions``); this is the
engine's own layer, so the text is safe wherever it is shown.
"""

from __future__ import annotations

import re

ZERO_WIDTH_SPACE = "\u200b"
# No look-behind: Discord pings "@everyone" wherever it stands, "x@everyone" and "foo.@here" included.
_CROWD = re.compile(r"@(everyone|here)\b", re.IGNORECASE)
_DISCORD_MENTION = re.compile(r"<@([!&]?)(\d+)>")


def defuse_mentions(text: str) -> str:
    text = _CROWD.sub(lambda m: f"@{ZERO_WIDTH_SPACE}{m.group(1)}", text)
    return _DISCORD_MENTION.sub(lambda m: f"<@{ZERO_WIDTH_SPACE}{m.group(1)}{m.group(2)}>", text)
