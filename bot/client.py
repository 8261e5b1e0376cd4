"""The Discord client: listens, decides (:mod:`bot.triggers`), answers in a thread, posts safely.

Everything the model wrote is posted with no mention allowed and link previews off; the
only ping the bot ever sends is the maintainer role, once per thread, when a user asks for it.

Whatever fails while answering, the asker gets one short apology and the log gets the detail,
through discord.py's own hooks: :meth:`FirstReplyBot.on_error` for messages, the command tree's
error handler for slash commands, and :meth:`FirstReplyBot.interaction_failed` for buttons.
What must outlive the process (threads answered, maintainers asked) is kept by the engine.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import sys
from dataclasses import dataclass, replace

import discord
from discord import app_commands

from bot.commands import commands_differ, invite_url
from bot.limits import QuestionLimits, SlidingWindow
from bot.messages import answer_messages
from bot.triggers import Decision, Incoming, TriggerConfig, decide
from bot.views import CommentButton, EscalateButton, VoteButton, answer_view
from engine.answer.model import Question
from engine.client import EngineError, EngineUnavailable
from engine.logs import CORRELATION
from engine.protocol import Answerer

log = logging.getLogger(__name__)
APOLOGY = "Sorry, something went wrong while I was answering. Please try again in a little while."
# A public /ask was deferred publicly, and Discord keeps a deferral's visibility: its "thinking…" ends with this,
# for everyone, and the apology goes to the asker alone.
UNANSWERED = "I couldn't answer this one just now."
PUBLIC_LOADING = "firstreply_public_loading"  # interaction.extras: a public "thinking…" is still showing
SLOW_DOWN = "You're asking faster than I can keep up — please try again in {seconds} seconds."
BUSY = "I'm answering a lot of questions right now — please try again in a minute."
OVERRIDES_TTL = 60.0  # seconds
THREAD_RECHECK = 60.0  # seconds before asking the engine again whether a thread was answered
THREADS_REMEMBERED = 10_000
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
    command_guilds: frozenset[int] = frozenset()  # register the slash commands in these guilds; globally when empty


@dataclass
class Answering:
    """The message being answered in this task, and where the answer goes once that is known."""

    message: discord.Message
    where: discord.abc.Messageable | None = None


# Set by on_message once it decides to answer, read by on_error in the same task: only a question the bot
# took on gets an apology (a failure on a message nobody addressed to the bot is only logged).
ANSWERING: contextvars.ContextVar[Answering | None] = contextvars.ContextVar("firstreply_answering", default=None)


def log_failure(what: str, error: BaseException) -> None:
    """One line for an engine that is down (expected, no traceback); the traceback for anything else."""
    if isinstance(error, (EngineUnavailable, EngineError)):
        log.warning("%s failed (id %s): %s", what, CORRELATION.get(), error)
    else:
        log.error("%s failed (id %s): %s", what, CORRELATION.get(), type(error).__name__, exc_info=error)


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
        self.threads_seen: dict[int, tuple[bool, float]] = {}  # thread id -> (answered, when the engine said so)
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
        self.tree.error(self.on_app_command_error)
        self.overrides: dict[int, dict] = {}  # channel id -> settings stored in the engine
        self.overrides_loaded = 0.0

    async def setup_hook(self) -> None:
        self.add_dynamic_items(VoteButton, EscalateButton, CommentButton)
        await self.register_commands()

    async def register_commands(self) -> None:
        """Make Discord offer /ask and /firstreply: globally, or in ``command_guilds`` (instant there).

        What Discord has is fetched and compared first, and overwritten only when it differs, so restarts
        don't spend Discord's daily command-create limit. A scope Discord refuses is one error line naming
        the fix; the bot runs on (mentions don't need slash commands)."""
        scopes: list[discord.Object | None] = [discord.Object(g) for g in sorted(self.config.command_guilds)] or [None]
        registered: list[str] = []
        unchanged: list[str] = []
        for guild in scopes:
            where = f"in guild {guild.id}" if guild else "globally"
            if guild is not None:
                self.tree.copy_global_to(guild=guild)
            try:
                current = await self.tree.fetch_commands(guild=guild)
                local = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
                if commands_differ(local, current, guild=guild is not None):
                    await self.tree.sync(guild=guild)
                    registered.append(where)
                else:
                    unchanged.append(where)
            except discord.Forbidden as error:
                log.error("can't register the slash commands %s: Discord answered %s %s (code %s); invite the bot "
                          "with the applications.commands scope: %s", where, error.status, error.text or "Forbidden",
                          error.code, invite_url(self.application_id, guild.id if guild else None))
            except discord.HTTPException as error:
                log.error("can't register the slash commands %s: Discord answered %s %s (code %s)", where,
                          error.status, error.text or "", error.code)
        if registered or unchanged:
            names = ", ".join(f"/{command.name}" for command in self.tree.get_commands())
            done = ([f"registered {', '.join(registered)}"] if registered else []) + \
                   ([f"unchanged {', '.join(unchanged)}"] if unchanged else [])
            log.info("slash commands %s: %s", names, "; ".join(done))

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
        CORRELATION.set(f"discord-{interaction.id}")
        self.count("slash_ask")
        notice = self.admit(interaction.user.id, interaction.channel_id or 0)
        if notice:  # decided before any deferral, so it can be private (a deferral fixes the visibility)
            self.count("rate_limited")
            await interaction.response.send_message(notice, ephemeral=True)
            return
        await interaction.response.defer(thinking=True, ephemeral=private)  # Discord allows 3 s before this
        interaction.extras[PUBLIC_LOADING] = not private
        conversation = f"interaction:{interaction.id}"
        answer = await self.ask_engine(Question(question, channel="discord", conversation_id=conversation,
                                                user_id=f"discord:{interaction.user.id}",
                                                request_id=f"discord-{interaction.id}",
                                                link=getattr(interaction.channel, "jump_url", None)))

        async def send(text: str, **options) -> None:
            await interaction.followup.send(text, ephemeral=private, **options)  # the first one fills the deferral
            interaction.extras[PUBLIC_LOADING] = False

        await self.post_answer(send, answer)

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
            thread_owned_by_bot=in_thread and (channel.owner_id == self.user.id or self.threads_seen.get(channel.id, (False,))[0]),
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

    async def thread_answered(self, thread_id: int) -> bool:
        """Whether the bot answered in this thread, in this process or any other (the engine keeps it)."""
        now = asyncio.get_running_loop().time()
        answered, when = self.threads_seen.get(thread_id, (False, float("-inf")))
        if answered or now - when < THREAD_RECHECK:
            return answered
        answered = (await self.answerer.discord_thread(str(thread_id)))["answered"]
        self.remember_thread(thread_id, answered)
        return answered

    def remember_thread(self, thread_id: int, answered: bool) -> None:
        if len(self.threads_seen) >= THREADS_REMEMBERED:
            self.threads_seen.clear()
        self.threads_seen[thread_id] = (answered, asyncio.get_running_loop().time())

    async def decision_for(self, message: discord.Message) -> Decision:
        incoming, config = self.incoming(message), self.trigger_config()
        decision = decide(incoming, config)
        if (not decision.answer and decision.reason == "not addressed to the bot" and incoming.in_thread
                and not incoming.thread_owned_by_bot and await self.thread_answered(message.channel.id)):
            decision = decide(replace(incoming, thread_owned_by_bot=True), config)
        return decision

    async def on_message(self, message: discord.Message) -> None:
        CORRELATION.set(f"discord-{message.id}")  # this task's log lines carry the question's id
        await self.refresh_overrides()
        decision = await self.decision_for(message)
        self.count("message_answered" if decision.answer else "message_ignored")
        if not decision.answer:
            return
        ANSWERING.set(Answering(message))
        log.info("answering message %s (%s)", message.id, decision.reason)
        await self.answer_message(message, decision)

    async def on_error(self, event_method: str, /, *args, **kwargs) -> None:
        """discord.py's hook for an event handler that raised: a question the bot took on gets an apology."""
        error = sys.exc_info()[1]
        answering = ANSWERING.get()
        if event_method != "on_message" or answering is None or error is None:
            if isinstance(error, (EngineUnavailable, EngineError)):
                log_failure(event_method, error)
            else:
                await super().on_error(event_method, *args, **kwargs)
            return
        self.count("answer_failed")
        log_failure(f"answering message {answering.message.id}", error)
        try:
            if isinstance(answering.where, discord.Thread):
                await answering.where.send(APOLOGY, allowed_mentions=discord.AllowedMentions.none())
            else:  # beside the question, even if it was deleted meanwhile
                await answering.message.channel.send(
                    APOLOGY, allowed_mentions=discord.AllowedMentions.none(),
                    reference=answering.message.to_reference(fail_if_not_exists=False))
        except discord.HTTPException as failed:
            log.warning("couldn't apologise for message %s: %s", answering.message.id, failed)

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """The command tree's error hook: every slash command that fails ends in a private apology."""
        command = interaction.command.qualified_name if interaction.command else "a command"
        await self.interaction_failed(interaction, getattr(error, "original", error), f"/{command}")

    async def interaction_failed(self, interaction: discord.Interaction, error: BaseException, what: str) -> None:
        """Log a failed command or button with its id, and apologise to the one user who used it."""
        CORRELATION.set(f"discord-{interaction.id}")
        self.count("interaction_failed")
        log_failure(f"{what} (interaction {interaction.id})", error)
        try:
            if not interaction.response.is_done():
                await interaction.response.send_message(APOLOGY, ephemeral=True)
                return
            if interaction.extras.get(PUBLIC_LOADING):
                # the next follow-up would fill the public "thinking…" and be public whatever its flags say
                await interaction.edit_original_response(content=UNANSWERED, allowed_mentions=discord.AllowedMentions.none())
                interaction.extras[PUBLIC_LOADING] = False
            await interaction.followup.send(APOLOGY, ephemeral=True)
        except discord.HTTPException as failed:
            log.warning("couldn't apologise for interaction %s: %s", interaction.id, failed)

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
            await message.channel.send(notice, reference=message.to_reference(fail_if_not_exists=False),
                                       allowed_mentions=discord.AllowedMentions.none(), delete_after=30)
            return
        where = await self.destination(message, decision)
        answering = ANSWERING.get()
        if answering is not None:
            answering.where = where
        if isinstance(where, discord.Thread) and not self.threads_seen.get(where.id, (False,))[0]:
            # follow-ups here need no mention, in every bot process and after restarts
            await self.answerer.mark_discord_thread_answered(str(where.id))
            self.remember_thread(where.id, True)
        conversation = str(where.id) if isinstance(where, discord.Thread) else f"message:{message.id}"
        title = where.name if decision.reason == "new forum post" else None  # a forum post's title is half the question
        question = Question(decision.question, channel="discord", conversation_id=conversation, title=title,
                            user_id=f"discord:{message.author.id}", request_id=f"discord-{message.id}",
                            link=message.jump_url)
        async with where.typing():
            answer = await self.ask_engine(question)  # any failure: on_error apologises
        if isinstance(where, discord.Thread):
            await self.post_answer(where.send, answer)
        else:  # in the channel itself: reply to the question, so the answer is found beside it, or alone if it's gone
            reference = message.to_reference(fail_if_not_exists=False)
            await self.post_answer(functools.partial(where.send, reference=reference), answer)

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
        status = await self.answerer.status()  # any failure: on_app_command_error apologises
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
        if changes:
            stored = await self.answerer.set_channel_settings("discord", str(channel_id), changes,
                                                              by=f"discord:{interaction.user.id}")
            self.overrides[channel_id] = stored
        await self.refresh_overrides(force=True)
        helping = channel_id in self.trigger_config().help_channels
        await interaction.followup.send(
            f"In <#{channel_id}>: help channel **{'on' if helping else 'off'}**, "
            f"answers in threads **{'on' if self.thread_mode(channel_id) else 'off'}**.",
            ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    async def escalate(self, interaction: discord.Interaction, answer_id: str) -> None:
        """After the click was acknowledged (:mod:`bot.views`): ping the maintainer role, once per thread (outside
        threads, once per answer) whichever bot process sees the click; the engine decides who was first."""
        role = self.config.maintainer_role
        if role is None:
            await interaction.followup.send("No maintainer role is configured for this server.", ephemeral=True)
            return
        channel = interaction.channel
        where = channel.id if isinstance(channel, discord.Thread) or interaction.message is None else interaction.message.id
        if not await self.answerer.escalate_discord_thread(str(where)):
            await interaction.followup.send("A maintainer has already been asked here.", ephemeral=True)
            return
        await interaction.followup.send(
            f"<@&{role}>, {interaction.user.mention} would like a maintainer to look at this.",
            allowed_mentions=discord.AllowedMentions(roles=[discord.Object(role)], users=False, everyone=False),
        )


class ShardedFirstReplyBot(FirstReplyBot, discord.AutoShardedClient):
    """The same bot over several gateway shards, for large servers (``FIRSTREPLY_DISCORD_SHARD_COUNT``):
    discord.py's AutoShardedClient runs the shards in one process and routes each guild to its own."""
