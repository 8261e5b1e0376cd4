"""Whether a Discord message is a question for the bot, and the question without the mention.

Plain data in, a decision out: the discord.py layer builds an :class:`Incoming` from a
message and posts only when :func:`decide` says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Incoming:
    content: str
    author_id: int
    author_is_bot: bool = False
    is_webhook: bool = False
    is_dm: bool = False
    channel_id: int = 0
    parent_id: int | None = None  # the channel a thread belongs to
    in_thread: bool = False
    thread_owned_by_bot: bool = False  # a thread the bot started, or a forum post it gave the first reply to
    is_forum_post: bool = False  # the first message of a new forum post
    mentions_bot: bool = False


@dataclass(frozen=True)
class TriggerConfig:
    bot_id: int
    help_channels: frozenset[int] = field(default_factory=frozenset)
    forum_channels: frozenset[int] = field(default_factory=frozenset)
    answer_dms: bool = False


@dataclass(frozen=True)
class Decision:
    answer: bool
    reason: str
    question: str = ""


def strip_mention(content: str, bot_id: int) -> str:
    """The message without mentions of the bot (``<@id>`` or ``<@!id>``), tidied."""
    text = re.sub(rf"<@!?{bot_id}>", " ", content)
    return re.sub(r"[ \t]+", " ", text).strip()


def decide(message: Incoming, config: TriggerConfig) -> Decision:
    if message.author_id == config.bot_id:
        return Decision(False, "own message")
    if message.author_is_bot:
        return Decision(False, "from a bot")
    if message.is_webhook:
        return Decision(False, "from a webhook")
    if message.is_dm and not config.answer_dms:
        return Decision(False, "direct messages are off")
    question = strip_mention(message.content, config.bot_id)
    if not question:
        return Decision(False, "nothing to answer")
    if message.is_dm:
        return Decision(True, "direct message", question)
    if message.mentions_bot:
        return Decision(True, "mentioned", question)
    if message.is_forum_post and message.parent_id in config.forum_channels:
        return Decision(True, "new forum post", question)
    if message.in_thread and message.thread_owned_by_bot:
        return Decision(True, "follow-up in the bot's thread", question)
    if not message.in_thread and message.channel_id in config.help_channels:
        return Decision(True, "help channel", question)
    return Decision(False, "not addressed to the bot")
