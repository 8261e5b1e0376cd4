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
from bot.limits import Notices, QuestionLimits, SlidingWindow
from bot.messages import answer_messages
from bot.triggers import Decision, Incoming, TriggerConfig, decide
from bot.views import CommentButton, EscalateButton, VoteButton, answer_view
from engine.config import DiscordSettings
from engine.logs import CORRELATION
from engine.protocol import Answerer, EngineError, EngineUnavailable, Question

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
# Where Discord offers the slash commands (their ``contexts``), and to whom they are installed (servers only)
IN_SERVERS = app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False)
IN_DMS = app_commands.AppCommandContext(guild=False, dm_channel=True, private_channel=False)
IN_SERVERS_AND_DMS = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=False)
GUILD_INSTALL = app_commands.AppInstallationType(guild=True, user=False)
NO_MAINTAINER_ROLE = "No maintainer role is configured for this server."
NO_DMS = "I don't answer in direct messages here — please ask in the project's server."
THREAD_EXISTS = 160004  # Discord's code for "A thread has already been created for this message"


@dataclass
class BotConfig:
    """What the bot does where: its settings (:class:`engine.config.DiscordSettings`, whose defaults these are),
    and the limits that keep one user or channel from taking all of it."""

    help_channels: frozenset[int] = frozenset(DiscordSettings.default("help_channels"))
    forum_channels: frozenset[int] = frozenset(DiscordSettings.default("forum_channels"))
    maintainer_role: int | None = DiscordSettings.default("maintainer_role")
    answer_dms: bool = DiscordSettings.default("answer_dms")
    thread_mode: bool = DiscordSettings.default("thread_mode")  # answer in a new thread made from the question, where it can
    user_questions_per_minute: int = 5
    channel_questions_per_minute: int = 20
    max_concurrent_answers: int = 8
    max_waiting_answers: int = 32
    command_guilds: frozenset[int] = frozenset(DiscordSettings.default("guild_ids"))  # slash commands there; empty: globally

    @classmethod
    def of(cls, settings: DiscordSettings) -> BotConfig:
        return cls(help_channels=frozenset(settings.help_channels), forum_channels=frozenset(settings.forum_channels),
                   maintainer_role=settings.maintainer_role, answer_dms=settings.answer_dms,
                   thread_mode=settings.thread_mode, command_guilds=frozenset(settings.guild_ids))


@dataclass(frozen=True)
class Refusal:
    """Why a question isn't answered now: the polite notice, whose limit it hit, and for how long."""

    notice: str
    key: tuple
    seconds: float


@dataclass(frozen=True)
class Allowed:
    """What the bot's permissions allow where a question was asked, worked out before asking the engine."""

    thread: bool  # start a thread from the question and answer there
    reply: bool  # reply to the question (READ_MESSAGE_HISTORY), else a plain message beside it


@dataclass
class Answering:
    """The message being answered in this task, and where the answer goes once that is known."""

    message: discord.Message
    where: discord.abc.Messageable | None = None
    reply: bool = True  # the bot may reply to the message (READ_MESSAGE_HISTORY)


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
        self.notices = Notices()  # one "slow down" per user (or channel) per wait, not one per message
        self.answering = asyncio.Semaphore(config.max_concurrent_answers)
        self.waiting = 0  # questions waiting for, or holding, an answering slot
        self.active = 0  # questions the engine is answering right now
        self.tree = app_commands.CommandTree(self)
        self.define_commands()
        self.tree.error(self.on_app_command_error)
        self.overrides: dict[int, dict] = {}  # channel id -> settings stored in the engine
        self.overrides_loaded = 0.0

    def ask_definition(self, contexts: app_commands.AppCommandContext) -> app_commands.Command:
        return app_commands.Command(name="ask", description="Ask a question about the project", callback=self.ask_command,
                                    allowed_contexts=contexts, allowed_installs=GUILD_INSTALL)

    def define_commands(self) -> None:
        """/ask and /firstreply, where Discord should offer them (their ``contexts``).

        Globally (the default): /ask in servers, and in DMs with the bot only when ``answer_dms`` is on. In
        ``command_guilds``: both commands in those servers; guild commands are never offered in DMs, so with
        ``answer_dms`` a global /ask offered in DMs only is added (it doesn't show in servers twice)."""
        admin = app_commands.Group(name="firstreply", description="Settings for this server's firstreply",
                                   default_permissions=discord.Permissions(manage_guild=True),
                                   allowed_contexts=IN_SERVERS, allowed_installs=GUILD_INSTALL)
        admin.add_command(app_commands.Command(name="status", description="Index size, model and queue",
                                               callback=self.status_command))
        admin.add_command(app_commands.Command(name="channel", description="Settings for this channel",
                                               callback=self.channel_command))
        guilds = [discord.Object(g) for g in sorted(self.config.command_guilds)]
        if guilds:
            self.tree.add_command(self.ask_definition(IN_SERVERS), guilds=guilds)
            self.tree.add_command(admin, guilds=guilds)
            if self.config.answer_dms:
                self.tree.add_command(self.ask_definition(IN_DMS))
        else:
            self.tree.add_command(self.ask_definition(IN_SERVERS_AND_DMS if self.config.answer_dms else IN_SERVERS))
            self.tree.add_command(admin)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(VoteButton, EscalateButton, CommentButton)
        await self.register_commands()

    async def register_commands(self) -> None:
        """Make Discord offer /ask and /firstreply: globally, or in ``command_guilds`` (instant there).

        What Discord has is fetched and compared first, and overwritten only when it differs, so restarts
        don't spend Discord's daily command-create limit. A scope Discord refuses is one error line naming
        the fix; the bot runs on (mentions don't need slash commands)."""
        scopes: list[discord.Object | None] = [discord.Object(g) for g in sorted(self.config.command_guilds)]
        if not scopes or self.tree.get_commands():  # globally, or the DM-only /ask beside guild commands
            scopes.append(None)
        registered: list[str] = []
        unchanged: list[str] = []
        for guild in scopes:
            where = f"in guild {guild.id}" if guild else "globally"
            try:
                current = await self.tree.fetch_commands(guild=guild)
                local = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
                if commands_differ(local, current, guild=guild is not None):
                    await self.tree.sync(guild=guild)
                    registered.append(where)
                else:
                    unchanged.append(where)
            except discord.HTTPException as error:
                hint = ("; invite the bot with the applications.commands scope: "
                        f"{invite_url(self.application_id, guild.id if guild else None)}"
                        if isinstance(error, discord.Forbidden) else "")
                log.error("can't register the slash commands %s: Discord answered %s %s (code %s)%s", where,
                          error.status, error.text or ("Forbidden" if isinstance(error, discord.Forbidden) else ""),
                          error.code, hint)
        if registered or unchanged:
            names = ", ".join(f"/{name}" for name in sorted({command.name for guild in scopes
                                                               for command in self.tree.get_commands(guild=guild)}))
            done = ([f"registered {', '.join(registered)}"] if registered else []) + \
                   ([f"unchanged {', '.join(unchanged)}"] if unchanged else [])
            log.info("slash commands %s: %s", names, "; ".join(done))

    def admit(self, user_id: int, channel_id: int) -> Refusal | None:
        """None if this question may be answered now; else what to tell the asker instead."""
        wait, key = self.limits.limited(user_id, channel_id)
        if wait:
            return Refusal(SLOW_DOWN.format(seconds=max(1, round(wait))), key, wait)
        if self.waiting >= self.config.max_waiting_answers:
            return Refusal(BUSY, ("busy", user_id), 60.0)
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
        if interaction.guild_id is None and not self.config.answer_dms:  # a command registered by an older setting
            await interaction.response.send_message(NO_DMS, ephemeral=True)
            return
        refused = self.admit(interaction.user.id, interaction.channel_id or 0)
        if refused:  # decided before any deferral, so it can be private (a deferral fixes the visibility)
            self.count("rate_limited")  # every command needs a response: the notice, seen by the asker alone
            await interaction.response.send_message(refused.notice, ephemeral=True)
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

        await self.post_answer(send, answer, escalate=not private)  # only the asker sees a private answer

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
        if isinstance(answering.where, discord.Thread):
            send = functools.partial(answering.where.send, APOLOGY, allowed_mentions=discord.AllowedMentions.none())
        else:  # beside the question, even if it was deleted meanwhile
            send = functools.partial(
                answering.message.channel.send, APOLOGY, allowed_mentions=discord.AllowedMentions.none(),
                reference=answering.message.to_reference(fail_if_not_exists=False) if answering.reply else None)
        await self.apologise(f"message {answering.message.id}", send)

    @staticmethod
    async def apologise(what: str, send) -> None:
        """Post an apology with ``send`` (a coroutine function): the one place the bot's apologies meet Discord's
        refusals (the channel is gone, the interaction expired), which are logged, never raised."""
        try:
            await send()
        except discord.HTTPException as failed:
            log.warning("couldn't apologise for %s: %s", what, failed)

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """The command tree's error hook: every slash command that fails ends in a private apology."""
        command = interaction.command.qualified_name if interaction.command else "a command"
        await self.interaction_failed(interaction, getattr(error, "original", error), f"/{command}")

    async def interaction_failed(self, interaction: discord.Interaction, error: BaseException, what: str) -> None:
        """Log a failed command or button with its id, and apologise to the one user who used it."""
        CORRELATION.set(f"discord-{interaction.id}")
        self.count("interaction_failed")
        log_failure(f"{what} (interaction {interaction.id})", error)

        async def send() -> None:
            if not interaction.response.is_done():
                await interaction.response.send_message(APOLOGY, ephemeral=True)
                return
            if interaction.extras.get(PUBLIC_LOADING):
                # the next follow-up would fill the public "thinking…" and be public whatever its flags say
                await interaction.edit_original_response(content=UNANSWERED, allowed_mentions=discord.AllowedMentions.none())
                interaction.extras[PUBLIC_LOADING] = False
            await interaction.followup.send(APOLOGY, ephemeral=True)

        await self.apologise(f"interaction {interaction.id}", send)

    # -- answering -----------------------------------------------------------------------------

    def allowed(self, message: discord.Message) -> Allowed | None:
        """What the bot may do where ``message`` was posted, from its permissions there (the channel's overwrites,
        a thread's parent's, a locked thread); None, with a log line, when it can't post an answer at all."""
        channel = message.channel
        me = message.guild.me if message.guild is not None else None
        if me is None:  # a DM (or a guild the bot has no member for yet): Discord will say if it refuses
            return Allowed(thread=False, reply=True)
        permissions = channel.permissions_for(me)
        missing = None
        if isinstance(channel, discord.Thread):
            if not permissions.send_messages_in_threads:
                missing = "Send Messages in Threads"
            elif channel.locked and not permissions.manage_threads:
                missing = "Manage Threads (the thread is locked)"
            if missing is None:
                return Allowed(thread=False, reply=permissions.read_message_history)
        else:
            if (self.thread_mode(channel.id) and isinstance(channel, discord.TextChannel)
                    and permissions.create_public_threads and permissions.send_messages_in_threads):
                return Allowed(thread=True, reply=permissions.read_message_history)
            if permissions.send_messages:
                return Allowed(thread=False, reply=permissions.read_message_history)
            missing = "Send Messages"
        self.count("no_permission")
        log.warning("not answering message %s in channel %s: the bot lacks the %s permission there",
                    message.id, channel.id, missing)
        return None

    async def destination(self, message: discord.Message, decision: Decision,
                          allowed: Allowed) -> tuple[discord.abc.Messageable, bool]:
        """Where the answer goes, and whether the bot started that thread just now."""
        channel = message.channel
        if allowed.thread:
            existing = message.guild.get_thread(message.id) if message.guild else None
            if existing is not None:  # someone started a thread from the question already: answer there
                return existing, False
            try:
                return await message.create_thread(name=thread_name(decision.question), auto_archive_duration=1440), True
            except discord.HTTPException as error:
                if error.code == THREAD_EXISTS:  # started meanwhile; a thread from a message has the message's id
                    try:
                        return message.guild.get_thread(message.id) or await self.fetch_channel(message.id), False
                    except discord.HTTPException as failed:
                        error = failed
                log.info("answering in the channel: can't create a thread (%s)", error)
        return channel, False

    async def answer_message(self, message: discord.Message, decision: Decision) -> None:
        allowed = self.allowed(message)
        if allowed is None:  # checked before asking the engine: nobody would see the answer
            return
        refused = self.admit(message.author.id, message.channel.id)
        if refused:
            self.count("rate_limited")
            if self.notices.due(refused.key, refused.seconds):  # told once; later messages in the wait are skipped
                reference = message.to_reference(fail_if_not_exists=False) if allowed.reply else None
                await message.channel.send(refused.notice, reference=reference,
                                           allowed_mentions=discord.AllowedMentions.none(), delete_after=30)
            return
        where, started = await self.destination(message, decision, allowed)
        answering = ANSWERING.get()
        if answering is not None:
            answering.where, answering.reply = where, allowed.reply
        if (started or decision.reason == "new forum post") and not self.threads_seen.get(where.id, (False,))[0]:
            # a thread the bot started, or a forum post it gave the first reply to: follow-ups here need no mention,
            # in every bot process and after restarts. Anywhere else (a user's thread where someone mentioned the
            # bot) each question needs its mention.
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
            reference = message.to_reference(fail_if_not_exists=False) if allowed.reply else None
            await self.post_answer(functools.partial(where.send, reference=reference), answer)

    async def post_answer(self, send, answer, *, escalate: bool = True) -> None:
        """Post an answer through ``send`` (a channel's or an interaction's): mentions off, no previews,
        the buttons under the last message ("Ask a maintainer" only when a maintainer role is configured
        and ``escalate``: not under a private answer)."""
        escalate = escalate and self.config.maintainer_role is not None
        messages = answer_messages(answer, escalation=escalate)  # no "press Ask a maintainer" without the button
        for index, text in enumerate(messages):
            last = index == len(messages) - 1
            await send(text, allowed_mentions=discord.AllowedMentions.none(), suppress_embeds=True,
                       view=answer_view(answer.id, escalate=escalate) if last and answer.id else discord.utils.MISSING)

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
        role = self.maintainer_role(interaction)
        if role is None:
            await interaction.followup.send(NO_MAINTAINER_ROLE, ephemeral=True)
            return
        channel = interaction.channel
        where = channel.id if isinstance(channel, discord.Thread) or interaction.message is None else interaction.message.id
        if not await self.answerer.escalate_discord_thread(str(where)):
            await interaction.followup.send("A maintainer has already been asked here.", ephemeral=True)
            return
        await interaction.followup.send(  # the one ping the bot sends: that role, nobody else, never @everyone
            f"{role.mention}, {interaction.user.mention} would like a maintainer to look at this.",
            allowed_mentions=discord.AllowedMentions(everyone=False, users=False, roles=[role], replied_user=False),
        )

    def maintainer_role(self, interaction: discord.Interaction) -> discord.Role | None:
        """The configured maintainer role in this server, if it is one the bot may ping: not the @everyone role
        (its id is the server's), and one that exists there. Anything else is an error line naming the setting."""
        role_id, guild = self.config.maintainer_role, interaction.guild
        if role_id is None or guild is None:
            return None
        if role_id == guild.id:
            log.error("FIRSTREPLY_DISCORD_MAINTAINER_ROLE is the @everyone role of server %s: the bot never pings "
                      "everyone; set it to your maintainers' role", guild.id)
            return None
        role = guild.get_role(role_id)
        if role is None:
            log.error("FIRSTREPLY_DISCORD_MAINTAINER_ROLE %s is not a role in server %s", role_id, guild.id)
            return None
        if not role.mentionable and not interaction.app_permissions.mention_everyone:
            log.warning("the maintainer role %s is not mentionable and the bot may not mention all roles in channel %s: "
                        "Discord will show the mention but notify nobody", role_id, interaction.channel_id)
        return role


class ShardedFirstReplyBot(FirstReplyBot, discord.AutoShardedClient):
    """The same bot over several gateway shards, for large servers (``FIRSTREPLY_DISCORD_SHARD_COUNT``):
    discord.py's AutoShardedClient runs the shards in one process and routes each guild to its own."""
