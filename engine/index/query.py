"""Turning a question as users write it into text worth searching for.

Real questions arrive with greetings, @mentions, thanks, pasted stack traces and code. The
dense side gets the prose and the shape of any code; the keyword side gets identifiers
too, since an API name is the strongest keyword there is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MENTION = re.compile(r"<@[!&]?\d+>|@\w[\w.-]*")
_URL = re.compile(r"https?://\S+")
_FENCE = re.compile(r"```[\w+-]*\n?(.*?)```", re.DOTALL)
_GREETING = re.compile(
    r"^\s*(hi|hey|hello|howdy|yo|good (morning|afternoon|evening))\b[\w ,!.]*?(?=[,!.\n]|$)[,!.]?", re.IGNORECASE
)
_THANKS = re.compile(r"(thanks|thank you|thx|cheers)( (so|very) much)?( in advance)?[!. ]*", re.IGNORECASE)
_TRACE_LINE = re.compile(r"^\s*(at .+\(.+:\d+:\d+\)|File \".+\", line \d+.*|at [\w.$<>]+ \(.*\))\s*$")


@dataclass(frozen=True)
class PreparedQuery:
    text: str  # for the embedding model
    keyword_text: str  # for BM25


def prepare_query(question: str, title: str | None = None) -> PreparedQuery:
    text = question.replace("\r\n", "\n")
    text = _URL.sub(" ", _MENTION.sub(" ", text))
    code = " ".join(_FENCE.findall(text))
    prose = _FENCE.sub(" ", text)
    prose = _GREETING.sub(" ", prose)
    prose = _THANKS.sub(" ", prose)
    lines = [line for line in prose.splitlines() if line.strip() and not _TRACE_LINE.match(line)]
    prose = re.sub(r"\s+", " ", " ".join(lines)).strip()
    if title and title.strip() and title.strip().lower() not in prose.lower():
        prose = f"{title.strip()}. {prose}" if prose else title.strip()
    keyword_text = f"{prose} {code}".strip()
    dense_text = prose or re.sub(r"\s+", " ", code).strip()
    return PreparedQuery(text=dense_text, keyword_text=keyword_text)
