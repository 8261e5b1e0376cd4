"""The Discord client: listens, decides (:mod:`bot.triggers`), answers in a thread, posts safely.

Everything the model wrote is posted with no mention allowed and link previews off; the
only ping the bot ever sends is the maintainer role, once per thread, when a user asks for it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

import discord
from discord import app_commands

from bot.limits import QuestionLimits, SlidingWindow
from bot.messages import answer_messages
from bot.triggers import Decision, Incoming, TriggerConfig, decide
from bot.views import EscalateButton, VoteButton, answer_view
from engine.answer.model import Question
from engine.client import EngineError, EngineUnavailable
from engine.logs import CORRELATION
from engine.protocol import Answerer

log = logging.getLogger(__name__)
APOLOGY = "Sorry, I can't answer right now: my knowledge base is unavailable. Please try again in a little while."
SLOW_DOWN = "You're asking faster than I can keep up — please try again in {seconds} seconds."
BUSY = "I'm answering a lot of questions right now — please try again in a minute."
OVERRIDES_TTL = 60.0  # seconds
THREAD_NAME_LIMIT = 100


@dataclass
class BotConfig:
    help_channels: frozenset[int] = frozenset()
    forum_channels: frozenset[int] = frozenset()
    maintainer_role: int | None = None
    answer_dms: bool = False
    thread_mode: bool = True  # answer in a new thread created from the question, where the channel allows it
    user_questions_per_minute: int = 5
    channel_questions_per_minute: int = 20
    max_concurrent_answers: int = 8
    max_waiting_answers: int = 32


def thread_name(question: str) -> str:
    name = " ".join(question.split())
    return name if len(name) <= THREAD_NAME_LIMIT else name[: THREAD_NAME_LIMIT - 1] + "…"


class FirstReplyBot(discord.Client):
    def __init__(self, answerer: Answerer, config: BotConfig, *, metrics=None, **options) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        options.setdefault("chunk_guilds_at_startup", False)
        super().__init__(intents=intents, allowed_mentions=discord.AllowedMentions.none(), **options)
        self.answerer = answerer
        self.config = config
        self.metrics = metrics  # engine.metrics.Metrics when the engine runs in this process
        self.answered_threads: set[int] = set()
        self.escalated: set[int] = set()  # threads whose maintainers were already pinged
        self.limits = QuestionLimits(SlidingWindow(config.user_questions_per_minute, 60),
                                     SlidingWindow(config.channel_questions_per_minute, 60))
        self.answering = asyncio.Semaphore(config.max_concurrent_answers)
        self.waiting = 0  # questions waiting for, or holding, an answering slot
        self.active = 0  # questions the engine is answering right now
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(app_commands.Command(
            name="ask", description="Ask a question about the project", callback=self.ask_command))
        admin = app_commands.Group(name="firstreply", description="Settings for this server's firstreply",
                                   default_permissions=discord.Permissions(manage_guild=True), guild_only=True)
        admin.add_command(app_commands.Command(name="status", description="Index size, model and queue",
                                               callback=self.status_command))
        admin.add_command(app_commands.Command(name="channel", description="Settings for this channel",
                                               callback=self.channel_command))
        self.tree.add_command(admin)
        self.overrides: dict[int, dict] = {}  # channel id -> settings stored in the engine
        self.overrides_loaded = 0.0

    async def setup_hook(self) -> None:
        self.add_dynamic_items(VoteButton, EscalateButton)

    def admit(self, user_id: int, channel_id: int) -> str | None:
        """None if this question may be answered now; else the polite notice to give instead."""
        wait = self.limits.check(user_id, channel_id)
        if wait:
            return SLOW_DOWN.format(seconds=max(1, round(wait)))
        if self.waiting >= self.config.max_waiting_answers:
            return BUSY
        return None

    async def ask_engine(self, question: Question):
        """Ask the engine, at most ``max_concurrent_answers`` at a time; the rest wait their turn."""
        CORRELATION.set(question.request_id)  # this task's log lines carry the question's id
        self.waiting += 1
        try:
            async with self.answering:
                self.active += 1
                try:
                    return await self.answerer.answer(question)
                finally:
                    self.active -= 1
        finally:
            self.waiting -= 1

    @app_commands.describe(question="What do you want to know?", private="Only you will see the answer")
    async def ask_command(self, interaction: discord.Interaction, question: str, private: bool = False) -> None:
        await interaction.response.defer(thinking=True, ephemeral=private)  # Discord allows 3 s before this
        self.count("slash_ask")
        notice = self.admit(interaction.user.id, interaction.channel_id or 0)
        if notice:
            self.count("rate_limited")
            await interaction.followup.send(notice, ephemeral=True)
            return
        conversation = f"interaction:{interaction.id}"
        try:
            answer = await self.ask_engine(Question(question, channel="discord", conversation_id=conversation,
                                                    user_id=f"discord:{interaction.user.id}",
                                                    request_id=f"discord-{interaction.id}",
                                                    link=getattr(interaction.channel, "jump_url", None)))
        except (EngineUnavailable, EngineError) as error:
            log.warning("engine unavailable for /ask %s: %s", interaction.id, error)
            await interaction.followup.send(APOLOGY, ephemeral=True)
            return
        await self.post_answer(lambda text, **options: interaction.followup.send(text, ephemeral=private, **options), answer)

    # -- deciding ----------------------------------------------------------------------------

    def incoming(self, message: discord.Message) -> Incoming:
        channel = message.channel
        in_thread = isinstance(channel, discord.Thread)
        parent_id = channel.parent_id if in_thread else None
        return Incoming(
            content=message.content,
            author_id=message.author.id,
            author_is_bot=message.author.bot,
            is_webhook=message.webhook_id is not None,
            is_dm=message.guild is None,
            channel_id=channel.id,
            parent_id=parent_id,
            in_thread=in_thread,
            thread_owned_by_bot=in_thread and (channel.owner_id == self.user.id or channel.id in self.answered_threads),
            is_forum_post=in_thread and message.id == channel.id and isinstance(channel.parent, discord.ForumChannel),
            mentions_bot=self.user in message.mentions,
        )

    def trigger_config(self) -> TriggerConfig:
        help_channels = set(self.config.help_channels)
        for channel_id, settings in self.overrides.items():
            if settings.get("help_channel") is True:
                help_channels.add(channel_id)
            elif settings.get("help_channel") is False:
                help_channels.discard(channel_id)
        return TriggerConfig(bot_id=self.user.id, help_channels=frozenset(help_channels),
                             forum_channels=self.config.forum_channels, answer_dms=self.config.answer_dms)

    def thread_mode(self, channel_id: int) -> bool:
        override = self.overrides.get(channel_id, {}).get("thread_mode")
        return self.config.thread_mode if override is None else override

    async def refresh_overrides(self, force: bool = False) -> None:
        """Per-channel settings admins stored in the engine, re-read at most once a minute."""
        loop = asyncio.get_running_loop()
        if not force and loop.time() - self.overrides_loaded < OVERRIDES_TTL:
            return
        self.overrides_loaded = loop.time()
        try:
            stored = await self.answerer.channel_settings("discord")
        except (EngineUnavailable, EngineError) as error:
            log.info("channel settings not refreshed: %s", error)
            return
        self.overrides = {int(channel): settings for channel, settings in stored.items()}

    def count(self, event: str) -> None:
        if self.metrics is not None:
            self.metrics.discord_events.labels(event).inc()

    async def on_message(self, message: discord.Message) -> None:
        await self.refresh_overrides()
        decision = decide(self.incoming(message), self.trigger_config())
        self.count("message_answered" if decision.answer else "message_ignored")
        if not decision.answer:
            return
        log.info("answering message %s (%s)", message.id, decision.reason)
        await self.answer_message(message, decision)

    # -- answering -----------------------------------------------------------------------------

    async def destination(self, message: discord.Message, decision: Decision) -> discord.abc.Messageable:
        channel = message.channel
        if self.thread_mode(channel.id) and isinstance(channel, discord.TextChannel):
            try:
                return await message.create_thread(name=thread_name(decision.question), auto_archive_duration=1440)
            except discord.HTTPException as error:  # no permission, or a thread exists already
                log.info("answering in the channel: can't create a thread (%s)", error)
        return channel

    async def answer_message(self, message: discord.Message, decision: Decision) -> None:
        notice = self.admit(message.author.id, message.channel.id)
        if notice:
            self.count("rate_limited")
            await message.reply(notice, allowed_mentions=discord.AllowedMentions.none(), delete_after=30)
            return
        where = await self.destination(message, decision)
        conversation = str(where.id) if isinstance(where, discord.Thread) else f"message:{message.id}"
        title = where.name if decision.reason == "new forum post" else None  # a forum post's title is half the question
        question = Question(decision.question, channel="discord", conversation_id=conversation, title=title,
                            user_id=f"discord:{message.author.id}", request_id=f"discord-{message.id}",
                            link=message.jump_url)
        try:
            async with where.typing():
                answer = await self.ask_engine(question)
        except (EngineUnavailable, EngineError) as error:
            log.warning("engine unavailable for message %s: %s", message.id, error)
            await where.send(APOLOGY, allowed_mentions=discord.AllowedMentions.none())
            return
        if isinstance(where, discord.Thread):
            self.answered_threads.add(where.id)
            await self.post_answer(where.send, answer)
        else:  # in the channel itself: reply to the question, so the answer is found beside it
            await self.post_answer(functools.partial(where.send, reference=message), answer)

    @staticmethod
    async def post_answer(send, answer) -> None:
        """Post an answer through ``send`` (a channel's or an interaction's): mentions off, no previews,
        the buttons under the last message."""
        messages = answer_messages(answer)
        for index, text in enumerate(messages):
            last = index == len(messages) - 1
            await send(text, allowed_mentions=discord.AllowedMentions.none(), suppress_embeds=True,
                       view=answer_view(answer.id) if last and answer.id else discord.utils.MISSING)

    # -- admin commands (Manage Server) ------------------------------------------------------------

    @staticmethod
    async def _admin_only(interaction: discord.Interaction) -> bool:
        # Discord hides these commands from others (default_permissions); checked here as well.
        if interaction.permissions.manage_guild:
            return True
        await interaction.response.send_message("Only members who can manage this server can do that.", ephemeral=True)
        return False

    async def status_command(self, interaction: discord.Interaction) -> None:
        if not await self._admin_only(interaction):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            status = await self.answerer.status()
        except (EngineUnavailable, EngineError) as error:
            await interaction.followup.send(f"The engine is not reachable: {error}", ephemeral=True)
            return
        await interaction.followup.send(
            f"**Knowledge base** `{status['kb']}`: {status['index_chunks']} passages\n"
            f"**Model**: {status['model']} (fallbacks: {', '.join(status['providers'][1:]) or 'none'})\n"
            f"**Answers logged**: {status['answers']}\n"
            f"**Queue**: {self.active} answering, {self.waiting - self.active} waiting",
            ephemeral=True)

    @app_commands.describe(help_channel="Answer every message in this channel", thread_mode="Answer in a new thread")
    async def channel_command(self, interaction: discord.Interaction, help_channel: bool | None = None,
                              thread_mode: bool | None = None) -> None:
        if not await self._admin_only(interaction):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        channel_id = interaction.channel_id or 0
        changes = {k: v for k, v in (("help_channel", help_channel), ("thread_mode", thread_mode)) if v is not None}
        try:
            if changes:
                stored = await self.answerer.set_channel_settings("discord", str(channel_id), changes,
                                                                  by=f"discord:{interaction.user.id}")
                self.overrides[channel_id] = stored
            await self.refresh_overrides(force=True)
        except (EngineUnavailable, EngineError) as error:
            await interaction.followup.send(f"The engine is not reachable: {error}", ephemeral=True)
            return
        helping = channel_id in self.trigger_config().help_channels
        await interaction.followup.send(
            f"In <#{channel_id}>: help channel **{'on' if helping else 'off'}**, "
            f"answers in threads **{'on' if self.thread_mode(channel_id) else 'off'}**.",
            ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    async def escalate(self, interaction: discord.Interaction, answer_id: str) -> None:
        channel = interaction.channel
        role = self.config.maintainer_role
        if role is None:
            await interaction.response.send_message("No maintainer role is configured for this server.", ephemeral=True)
            return
        if channel is None or channel.id in self.escalated:
            await interaction.response.send_message("A maintainer has already been asked here.", ephemeral=True)
            return
        self.escalated.add(channel.id)
        await interaction.response.send_message(
            f"<@&{role}>, {interaction.user.mention} would like a maintainer to look at this.",
            allowed_mentions=discord.AllowedMentions(roles=[discord.Object(role)], users=False, everyone=False),
        )


class ShardedFirstReplyBot(FirstReplyBot, discord.AutoShardedClient):
    """The same bot over several gateway shards, for large servers (``FIRSTREPLY_DISCORD_SHARD_COUNT``):
    discord.py's AutoShardedClient runs the shards in one process and routes each guild to its own."""
