"""Turning an answer into Discord messages: sources as links without previews, split under
Discord's 2,000-character limit at paragraph boundaries and never inside a code block.

A code block longer than a whole message is split by lines, each piece closed and the next
reopened with the same fence and language, so every message renders on its own.
"""

from __future__ import annotations

import re

from engine.markdown import FENCE, split_blocks
from engine.protocol import Answer

DISCORD_LIMIT = 2000
LEAD_IN = 300  # characters: prose this short before a code block stays with (the start of) it
MIN_CODE_PIECE = 200  # characters of room needed to start a code block beside its lead-in


def _split_long(block: str, limit: int, first_limit: int | None = None) -> list[str]:
    """Split one block that is longer than a message (a fenced one: its first piece at most ``first_limit``)."""
    match = FENCE.match(block)
    if match:
        opener = block.split("\n", 1)[0]
        closer = match.group(1)
        body = block.split("\n")[1:-1]
        full_room = limit - len(opener) - len(closer) - 2
        room = full_room if first_limit is None else first_limit - len(opener) - len(closer) - 2
        pieces: list[list[str]] = []
        current: list[str] = []
        for line in body:
            while len(line) > room:
                if current:
                    pieces.append(current)
                    current, room = [], full_room
                elif len(line) <= full_room:  # the first piece has no room for this line: start in the next
                    room = full_room
                else:  # a single enormous line
                    pieces.append([line[:room]])
                    line, room = line[room:], full_room
            if current and len("\n".join(current + [line])) > room:
                pieces.append(current)
                current, room = [], full_room
            current.append(line)
        if current:
            pieces.append(current)
        return [f"{opener}\n" + "\n".join(p) + f"\n{closer}" for p in pieces]
    parts: list[str] = []
    run = ""
    for word in re.split(r"(?<=\s)", block):
        while len(word) > limit:
            if run:
                parts.append(run)
                run = ""
            parts.append(word[:limit])
            word = word[limit:]
        if len(run) + len(word) > limit:
            parts.append(run)
            run = ""
        run += word
    if run:
        parts.append(run)
    return [p.strip() for p in parts if p.strip()]


def split_message(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    """Split ``text`` into messages of at most ``limit`` characters, at block boundaries.

    A short lead-in ("Here is how:") is not posted alone before a code block that doesn't fit beside it: the
    code block is split by lines and its first piece goes with the lead-in."""
    messages: list[str] = []
    current = ""
    for block in split_blocks(text):
        room = limit - len(current) - 2
        if (current and len(current) <= LEAD_IN and FENCE.match(block) and len(current) + 2 + len(block) > limit
                and room >= MIN_CODE_PIECE):
            pieces = _split_long(block, limit, first_limit=room)
        else:
            pieces = [block] if len(block) <= limit else _split_long(block, limit)
        for piece in pieces:
            candidate = f"{current}\n\n{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                messages.append(current)
                current = piece
    if current:
        messages.append(current)
    return messages


def sources_block(answer: Answer) -> str:
    """The answer's sources as Markdown links; ``<…>`` keeps Discord from unfurling previews."""
    lines = []
    for citation in answer.citations:
        label = citation.label().replace("[", "(").replace("]", ")")
        if citation.url.startswith(("http://", "https://")):
            lines.append(f"[{citation.number}] [{label}](<{citation.url}>)")
        else:
            lines.append(f"[{citation.number}] {label} ({citation.url})")
    return "**Sources**\n" + "\n".join(lines) if lines else ""


def answer_messages(answer: Answer, limit: int = DISCORD_LIMIT, *, escalation: bool = True) -> list[str]:
    """Everything the bot posts for one answer, in order: the answer, then its sources. An abstention's
    next step ("Press “Ask a maintainer” …") only with ``escalation``: when that button is shown."""
    if answer.abstained:
        text = answer.text + (f"\n\n{answer.escalation}" if answer.escalation and escalation else "")
    else:
        text = answer.text
        sources = sources_block(answer)
        if sources:
            text = f"{text}\n\n{sources}"
    return split_message(text, limit)
