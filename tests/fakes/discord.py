"""A loopback fake of Discord: the gateway websocket and the REST routes the bot calls, as strict as Discord.

It is built from Discord's API reference (``../shared/fixtures/discord/api-docs``) and the frames and
REST bodies captured from the live v10 API (``../shared/fixtures/discord/captured/frames``): HELLO,
READY, GUILD_CREATE, MESSAGE_CREATE, THREAD_CREATE and INTERACTION_CREATE are the captured payloads
with only the fields a test is about replaced. What Discord refuses, it refuses with Discord's status,
error code and body:

- messages (channel messages, interaction responses, follow-ups, edits): content of at most 2,000
  characters; components only inside action rows, at most 5 rows of at most 5 buttons, each
  ``custom_id`` 1-100 characters and unique in the message (400, code 50035 "Invalid Form Body",
  with the field named in ``errors``); an empty message is 50006; flags a route can't set are
  ignored (EPHEMERAL on a channel message makes no message private); ``allowed_mentions`` may not
  name users or roles it also parses;
- embeds within Discord's limits (title 256, description 4,096, 25 fields of 256/1,024, footer 2,048,
  author 256, 6,000 characters over all of a message's embeds; 10 embeds): else 400/50035;
  ``allowed_mentions`` must be an object with a list ``parse`` of known kinds and snowflake ids; which
  roles a message really pings (``mention_roles``) and whether it pings everyone (``mention_everyone``)
  are worked out as Discord does: allowed, and mentionable or the bot has MENTION_EVERYONE;
- permissions: the bot's permissions in a channel are computed from the captured guild's roles and the
  channel's overwrites (@everyone, roles, the bot), a thread using its parent's, as permissions.mdx
  documents: a channel it can't view is 403/50001; posting without SEND_MESSAGES (in a thread,
  SEND_MESSAGES_IN_THREADS), typing likewise, embeds without EMBED_LINKS, a reply without
  READ_MESSAGE_HISTORY and a thread without CREATE_PUBLIC_THREADS are 403/50013;
- channels: a forum or media channel takes no message (400/40058), nor does a category (400/50008); a
  locked thread takes none from a bot without MANAGE_THREADS (400/160005); posting in an archived
  thread unarchives it (THREAD_UPDATE), as "Sending a message will automatically unarchive the thread";
- a reply (``message_reference``) to a message that doesn't exist is 400/50035, unless
  ``fail_if_not_exists`` is false, when the message is posted without the reference;
- a thread started from a message takes the message's id, and a second one on the same message is
  400/160004; posting to a channel that doesn't exist is 404/10003;
- rate limits: every bucketed response carries ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset``,
  ``-Reset-After`` and ``-Bucket``; past a bucket's limit, or when a test forces it, the answer is a
  429 with ``X-RateLimit-Scope`` (and ``X-RateLimit-Global`` for the global limit, which interaction
  routes are not bound to);
- interactions: the first callback must come within ``callback_deadline`` seconds (Discord: 3) or it
  is 404/10062 "Unknown interaction"; a second callback is 400/40060; follow-ups need an acknowledged
  interaction and a token younger than ``token_lifetime`` (Discord: 15 minutes, then 401/50027); the
  first follow-up after a deferred response edits that response, whose visibility was fixed when it
  was deferred (the follow-up's EPHEMERAL flag is ignored);
- application commands: only commands registered with ``PUT /applications/{app}/commands`` (or the
  guild route) can be run, with options their registered definition has; in a DM only a global command
  whose ``contexts`` include BOT_DM (1) (guild commands never); a guild the app was not authorised in
  with the ``applications.commands`` scope answers 403/50001;
- the gateway: ``compress=zlib-stream`` in the URL gets binary frames through one zlib context per
  connection; IDENTIFY's ``shard`` routes each guild's events to its shard (``(guild_id >> 22) %
  num_shards``, the rest to shard 0); intents select the events sent, a privileged intent the app
  has not enabled closes the connection with 4014, and without MESSAGE_CONTENT a message's content
  arrives empty unless the bot wrote it or is mentioned in it; the bot's own messages come back as
  MESSAGE_CREATE (with the bot's own member), as on Discord.

Every REST request is recorded, with the status it got, so tests can read exactly what the bot sent.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import WSCloseCode, WSMsgType, web

FRAMES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "discord" / "captured" / "frames"

# Gateway intents (events/gateway.mdx, "List of Intents")
GUILDS, GUILD_MEMBERS, GUILD_PRESENCES = 1 << 0, 1 << 1, 1 << 8
GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 9, 1 << 12, 1 << 15
KNOWN_INTENTS = sum(1 << bit for bit in (*range(0, 17), 20, 21, 24, 25))
PRIVILEGED_INTENTS = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT

# Message flags (resources/message.mdx, "Message Flags") and which a route may set
SUPPRESS_EMBEDS, EPHEMERAL, LOADING = 1 << 2, 1 << 6, 1 << 7
SUPPRESS_NOTIFICATIONS, IS_VOICE_MESSAGE, IS_COMPONENTS_V2 = 1 << 12, 1 << 13, 1 << 15
CHANNEL_MESSAGE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_VOICE_MESSAGE | IS_COMPONENTS_V2
INTERACTION_MESSAGE_FLAGS = CHANNEL_MESSAGE_FLAGS | EPHEMERAL

CONTENT_LIMIT = 2000
ACTION_ROW, BUTTON = 1, 2
SELECTS = {3, 5, 6, 7, 8}
LINK_BUTTON = 5
COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
ARCHIVE_DURATIONS = {60, 1440, 4320, 10080}
BODY = web.RequestKey("body", object)  # the request's JSON, read once by the middleware
BAD_JSON = web.RequestKey("bad_json", bool)


def frame(name: str):
    return json.loads((FRAMES / f"{name}.json").read_text())[0]


def discord_json(data, status: int = 200, headers: dict | None = None) -> web.Response:
    # discord.py accepts a JSON body only when Content-Type is exactly this
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


class DiscordError(Exception):
    """An error Discord answers with: HTTP status, JSON error code, message and (form errors) ``errors``."""

    def __init__(self, status: int, code: int, message: str, errors: dict | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def response(self) -> web.Response:
        body = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return discord_json(body, self.status)


def invalid_form(path: str, code: str, message: str) -> DiscordError:
    """400/50035 with the nested ``errors`` object Discord uses (reference.mdx, "Error Messages")."""
    errors: dict = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


UNKNOWN_CHANNEL = (404, 10003, "Unknown Channel")
UNKNOWN_MESSAGE = (404, 10008, "Unknown Message")
UNKNOWN_WEBHOOK = (404, 10015, "Unknown Webhook")
UNKNOWN_INTERACTION = (404, 10062, "Unknown interaction")
ALREADY_ACKNOWLEDGED = (400, 40060, "Interaction has already been acknowledged.")
INVALID_WEBHOOK_TOKEN = (401, 50027, "Invalid Webhook Token")
MISSING_ACCESS = (403, 50001, "Missing Access")
MISSING_PERMISSIONS = (403, 50013, "Missing Permissions")
FORUM_REFUSES_MESSAGES = (400, 40058, "Cannot send a message in a forum channel")
NOT_A_TEXT_CHANNEL = (400, 50008, "Cannot send messages in a non-text channel")
THREAD_EXISTS = (400, 160004, "A thread has already been created for this message")
THREAD_LOCKED = (400, 160005, "Thread is locked")

# Permissions (topics/permissions.mdx, "Bitwise Permission Flags")
ADMINISTRATOR, VIEW_CHANNEL, SEND_MESSAGES = 1 << 3, 1 << 10, 1 << 11
EMBED_LINKS, READ_MESSAGE_HISTORY, MENTION_EVERYONE = 1 << 14, 1 << 16, 1 << 17
MANAGE_THREADS, CREATE_PUBLIC_THREADS, SEND_MESSAGES_IN_THREADS = 1 << 34, 1 << 35, 1 << 38
ALL_PERMISSIONS = (1 << 53) - 1

# Channel types (resources/channel.mdx, "Channel Types")
GUILD_TEXT, DM, GUILD_CATEGORY, GUILD_ANNOUNCEMENT = 0, 1, 4, 5
THREAD_TYPES = {10, 11, 12}
FORUM_TYPES = {15, 16}  # GUILD_FORUM, GUILD_MEDIA: posts are threads, the channel itself takes no message

# Embed limits (resources/message.mdx, "Embed Limits")
EMBED_LIMITS = {"title": 256, "description": 4096}
EMBED_FIELDS, EMBED_FIELD_NAME, EMBED_FIELD_VALUE, EMBED_FOOTER, EMBED_AUTHOR, EMBED_TOTAL = 25, 256, 1024, 2048, 256, 6000
SNOWFLAKE = re.compile(r"^\d{1,20}$")


TEXT_INPUT = 4


def check_modal(data: dict) -> None:
    """A modal as Discord accepts it (interactions/receiving-and-responding.mdx, "Modal"; components.mdx, "Text
    Input"): custom_id 1-100, title 1-45, 1-5 action rows each holding one text input with custom_id 1-100,
    style 1 (short) or 2 (paragraph), label 1-45, min_length 0-4000, max_length 1-4000, value at most 4000."""
    def length(path: str, value, low: int, high: int) -> None:
        if not isinstance(value, str) or not low <= len(value) <= high:
            raise invalid_form(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")

    length("data.custom_id", data.get("custom_id"), 1, 100)
    length("data.title", data.get("title"), 1, 45)
    rows = data.get("components")
    if not isinstance(rows, list) or not 1 <= len(rows) <= 5:
        raise invalid_form("data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
    for r, row in enumerate(rows):
        where = f"data.components.{r}"
        if not isinstance(row, dict) or row.get("type") != ACTION_ROW or not isinstance(row.get("components"), list) \
                or len(row["components"]) != 1:
            raise invalid_form(where, "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "The specified component exceeds the maximum width")
        field_ = row["components"][0]
        here = f"{where}.components.0"
        if field_.get("type") != TEXT_INPUT:
            raise invalid_form(f"{here}.type", "UNION_TYPE_CHOICES", "Value of field \"type\" must be one of (4,).")
        length(f"{here}.custom_id", field_.get("custom_id"), 1, 100)
        length(f"{here}.label", field_.get("label"), 1, 45)
        if field_.get("style") not in (1, 2):
            raise invalid_form(f"{here}.style", "BASE_TYPE_CHOICES", "Value must be one of (1, 2).")
        low, high = field_.get("min_length", 0), field_.get("max_length", 4000)
        if not (isinstance(low, int) and 0 <= low <= 4000 and isinstance(high, int) and 1 <= high <= 4000):
            raise invalid_form(f"{here}.max_length", "NUMBER_TYPE_MAX", "int value should be less than or equal to 4000.")
        if "value" in field_:
            length(f"{here}.value", field_["value"], 0, 4000)


def check_components(components, path: str = "components") -> None:
    """Message components as Discord accepts them without IS_COMPONENTS_V2: action rows of buttons or one select."""
    if not isinstance(components, list):
        raise invalid_form(path, "BASE_TYPE_BAD_LIST", "Must be a list.")
    if len(components) > 5:
        raise invalid_form(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
    custom_ids: set[str] = set()
    for r, row in enumerate(components):
        where = f"{path}.{r}"
        if not isinstance(row, dict) or row.get("type") != ACTION_ROW:
            raise invalid_form(f"{where}.type", "UNION_TYPE_CHOICES", "Value of field \"type\" must be one of (1,).")
        items = row.get("components")
        if not isinstance(items, list) or not 1 <= len(items) <= 5:
            raise invalid_form(f"{where}.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        kinds = [item.get("type") if isinstance(item, dict) else None for item in items]
        if any(k in SELECTS for k in kinds) and len(items) > 1:
            raise invalid_form(f"{where}.components", "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                               "The specified component exceeds the maximum width")
        for i, item in enumerate(items):
            here = f"{where}.components.{i}"
            if kinds[i] not in {BUTTON, *SELECTS}:
                raise invalid_form(f"{here}.type", "UNION_TYPE_CHOICES", "Value of field \"type\" must be one of (2, 3, 5, 6, 7, 8).")
            if kinds[i] == BUTTON:
                style = item.get("style")
                if style not in {1, 2, 3, 4, 5, 6}:
                    raise invalid_form(f"{here}.style", "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5, 6}.")
                if len(str(item.get("label") or "")) > 80:
                    raise invalid_form(f"{here}.label", "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length.")
                if style == LINK_BUTTON:
                    if not item.get("url") or "custom_id" in item:
                        raise invalid_form(f"{here}.url", "BUTTON_COMPONENT_URL_REQUIRED", "A link button needs a url and no custom_id.")
                    continue
            custom_id = item.get("custom_id")
            if not isinstance(custom_id, str) or not custom_id:
                raise invalid_form(f"{here}.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
            if len(custom_id) > 100:
                raise invalid_form(f"{here}.custom_id", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
            if custom_id in custom_ids:
                raise invalid_form(f"{here}.custom_id", "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
            custom_ids.add(custom_id)


def check_embeds(embeds) -> None:
    """Rich embeds within Discord's limits: 10 per message, each field's length, and 6,000 characters in all."""
    if not isinstance(embeds, list):
        raise invalid_form("embeds", "BASE_TYPE_BAD_LIST", "Must be a list.")
    if len(embeds) > 10:
        raise invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for n, embed in enumerate(embeds):
        where = f"embeds.{n}"
        if not isinstance(embed, dict):
            raise invalid_form(where, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        for key, limit in EMBED_LIMITS.items():
            text = str(embed.get(key) or "")
            if len(text) > limit:
                raise invalid_form(f"{where}.{key}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
            total += len(text)
        fields = embed.get("fields") or []
        if not isinstance(fields, list) or len(fields) > EMBED_FIELDS:
            raise invalid_form(f"{where}.fields", "BASE_TYPE_MAX_LENGTH", f"Must be {EMBED_FIELDS} or fewer in length.")
        for f, item in enumerate(fields):
            for key, limit in (("name", EMBED_FIELD_NAME), ("value", EMBED_FIELD_VALUE)):
                text = str((item or {}).get(key) or "")
                if not text:
                    raise invalid_form(f"{where}.fields.{f}.{key}", "BASE_TYPE_REQUIRED", "This field is required")
                if len(text) > limit:
                    raise invalid_form(f"{where}.fields.{f}.{key}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
                total += len(text)
        for key, inner, limit in (("footer", "text", EMBED_FOOTER), ("author", "name", EMBED_AUTHOR)):
            text = str((embed.get(key) or {}).get(inner) or "")
            if len(text) > limit:
                raise invalid_form(f"{where}.{key}.{inner}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
            total += len(text)
    if total > EMBED_TOTAL:
        raise invalid_form("embeds", "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {EMBED_TOTAL}")


def check_message(body: dict, *, allowed_flags: int, partial: bool = False) -> int:
    """Refuse what Discord refuses in a message body; returns the flags Discord keeps (others are ignored)."""
    if not isinstance(body, dict):
        raise DiscordError(400, 50109, "The request body contains invalid JSON.")
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        raise invalid_form("content", "BASE_TYPE_STRING", "Must be a string.")
    if content is not None and len(content) > CONTENT_LIMIT:
        raise invalid_form("content", "BASE_TYPE_MAX_LENGTH", f"Must be {CONTENT_LIMIT} or fewer in length.")
    if body.get("embeds") is not None:
        check_embeds(body["embeds"])
    if body.get("components") is not None:
        check_components(body["components"])
    mentions = body.get("allowed_mentions")
    if mentions is not None:
        if not isinstance(mentions, dict):
            raise invalid_form("allowed_mentions", "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        parse = mentions.get("parse", [])
        if not isinstance(parse, list):
            raise invalid_form("allowed_mentions.parse", "BASE_TYPE_BAD_LIST", "Must be a list.")
        for kind in ("users", "roles"):
            ids = mentions.get(kind)
            if ids is not None and (not isinstance(ids, list) or not all(SNOWFLAKE.match(str(i)) for i in ids)):
                raise invalid_form(f"allowed_mentions.{kind}", "NUMBER_TYPE_COERCE", "Value is not snowflake.")
        if "replied_user" in mentions and not isinstance(mentions["replied_user"], bool):
            raise invalid_form("allowed_mentions.replied_user", "BASE_TYPE_BOOLEAN", "Must be either true or false.")
        if any(kind not in {"roles", "users", "everyone"} for kind in parse):
            raise invalid_form("allowed_mentions.parse", "BASE_TYPE_CHOICES", "Value must be one of {'roles', 'users', 'everyone'}.")
        for kind in ("users", "roles"):
            if kind in parse and mentions.get(kind):
                raise invalid_form(f"allowed_mentions.{kind}", "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                                   f"parse:[\"{kind}\"] and {kind}: [ids] are mutually exclusive.")
            if len(mentions.get(kind) or []) > 100:
                raise invalid_form(f"allowed_mentions.{kind}", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
    flags = body.get("flags") or 0
    if not isinstance(flags, int):
        raise invalid_form("flags", "NUMBER_TYPE_COERCE", "Value is not int.")
    if flags & IS_COMPONENTS_V2 & allowed_flags and (content or body.get("embeds")):
        raise invalid_form("content", "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                           "The 'content' field cannot be used when using MessageFlags.IS_COMPONENTS_V2")
    if not partial and not any(body.get(k) for k in ("content", "embeds", "components", "sticker_ids", "attachments", "poll")):
        raise DiscordError(400, 50006, "Cannot send an empty message")
    return flags & allowed_flags


def command_size(command: dict) -> int:
    """Characters counted against a slash command's 8,000 (names, descriptions, choice names and values)."""
    size = len(command.get("name", "")) + len(command.get("description", ""))
    for option in command.get("options") or []:
        size += command_size(option)
        size += sum(len(str(c.get("name", ""))) + len(str(c.get("value", ""))) for c in option.get("choices") or [])
    return size


def shard_of(guild_id: str | int, shard_count: int) -> int:
    """Which shard a guild's events go to (events/gateway.mdx, "Sharding Formula")."""
    return (int(guild_id) >> 22) % shard_count


@dataclass
class Recorded:
    method: str
    path: str
    json: dict | list | None
    query: dict = field(default_factory=dict)
    status: int | None = None  # what the fake answered
    code: int | None = None  # Discord's JSON error code, for errors

    @property
    def body(self) -> dict:
        """The JSON body when it is an object (a message, a callback), else empty (command lists, no body)."""
        return self.json if isinstance(self.json, dict) else {}


@dataclass
class Session:
    """One gateway connection."""

    socket: web.WebSocketResponse
    deflate: "zlib._Compress | None"
    shard: tuple[int, int] = (0, 1)
    intents: int = 0
    identified: bool = False
    sequence: int = 0


@dataclass
class Interaction:
    """An interaction as Discord tracks it: its token's age, how it was acknowledged, what it posted."""

    data: dict
    created: float
    acknowledged: int | None = None  # the callback type
    original: dict | None = None  # the response message (or, for components, the message clicked)
    loading: bool = False  # a deferred response still "thinking…": the next follow-up edits it
    modal: dict | None = None  # the modal it answered with (callback type 9), shown to the user
    messages: list[dict] = field(default_factory=list)  # everything it posted, as the messages are now


class Bucket:
    """One rate-limit bucket: ``limit`` requests per ``window`` seconds."""

    def __init__(self, name: str, limit: int, window: float) -> None:
        self.name, self.limit, self.window = name, limit, window
        self.remaining, self.reset_at = limit, 0.0

    def take(self) -> bool:
        now = time.time()
        if now >= self.reset_at:
            self.remaining, self.reset_at = self.limit, now + self.window
        if self.remaining == 0:
            return False
        self.remaining -= 1
        return True

    def headers(self) -> dict[str, str]:
        now = time.time()
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": f"{self.reset_at:.3f}", "X-RateLimit-Reset-After": f"{max(0.0, self.reset_at - now):.3f}",
                "X-RateLimit-Bucket": self.name}


class FakeDiscord:
    def __init__(self, *, token: str | None = None, callback_deadline: float = 3.0, token_lifetime: float = 15 * 60,
                 route_limit: int = 5, route_window: float = 1.0, global_limit: int = 50,
                 privileged_intents: int = MESSAGE_CONTENT) -> None:
        self.token = token  # when set, any other bot token is refused
        self.callback_deadline = callback_deadline  # seconds to answer an interaction (Discord: 3)
        self.token_lifetime = token_lifetime  # seconds an interaction token works for follow-ups (Discord: 15 min)
        self.route_limit, self.route_window, self.global_limit = route_limit, route_window, global_limit
        self.privileged_intents = privileged_intents  # what the app enabled in the developer portal
        self.rate_limit_next = 0  # answer this many message posts with a per-route 429 first
        self.global_rate_limit_next = 0  # answer this many requests (not interaction routes) with a global 429 first
        self.guilds_without_commands_scope: set[str] = set()  # invited without applications.commands
        self.requests: list[Recorded] = []
        self.ids = itertools.count(950000000000000000)

        ready = frame("gateway_ready")["d"]
        guild = frame("gateway_guild_create")["d"]
        self.bot_user = ready["user"]
        self.application_id = ready["application"]["id"]
        self.guild = guild
        self.guild_id = guild["id"]
        self.text_channel = next(c["id"] for c in guild["channels"] if c["type"] == 0)
        self.forum_channel = next(c["id"] for c in guild["channels"] if c["type"] == 15)
        self.category = next(c["id"] for c in guild["channels"] if c["type"] == GUILD_CATEGORY)
        self.channels: dict[str, dict] = {c["id"]: dict(c, guild_id=self.guild_id) for c in guild["channels"]}
        self.messages: dict[str, dict] = {}
        self.commands: dict[str | None, list[dict]] = {None: []}  # scope (None: global, else a guild id) -> commands
        self.interactions: dict[str, Interaction] = {}
        self.url = ""
        self.sessions: list[Session] = []
        self.identified = asyncio.Event()
        self.identify_payloads: list[dict] = []
        self.posted = asyncio.Condition()
        self._buckets: dict[tuple, Bucket] = {}
        self._global_hits: list[float] = []

    # -- the app ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.rest_middleware])
        app.router.add_get("/gateway", self.gateway)
        api = "/api/v10"
        app.router.add_get(f"{api}/gateway/bot", self.gateway_bot)
        app.router.add_get(f"{api}/users/@me", lambda r: discord_json(self.bot_user))
        app.router.add_get(f"{api}/oauth2/applications/@me", lambda r: discord_json(self.application()))
        app.router.add_get(f"{api}/applications/{{app}}/commands", self.get_commands)
        app.router.add_put(f"{api}/applications/{{app}}/commands", self.put_commands)
        app.router.add_get(f"{api}/applications/{{app}}/guilds/{{guild}}/commands", self.get_commands)
        app.router.add_put(f"{api}/applications/{{app}}/guilds/{{guild}}/commands", self.put_commands)
        app.router.add_get(f"{api}/channels/{{channel}}", self.get_channel)
        app.router.add_post(f"{api}/channels/{{channel}}/messages", self.create_message)
        app.router.add_delete(f"{api}/channels/{{channel}}/messages/{{message}}", self.delete_message_route)
        app.router.add_post(f"{api}/channels/{{channel}}/messages/{{message}}/threads", self.create_thread)
        app.router.add_post(f"{api}/channels/{{channel}}/typing", self.typing)
        app.router.add_post(f"{api}/interactions/{{id}}/{{token}}/callback", self.interaction_callback)
        app.router.add_post(f"{api}/webhooks/{{app}}/{{token}}", self.create_followup)
        app.router.add_patch(f"{api}/webhooks/{{app}}/{{token}}/messages/@original", self.edit_original)
        app.router.add_route("*", f"{api}/{{tail:.*}}", self.not_found)
        return app

    @web.middleware
    async def rest_middleware(self, request: web.Request, handler):
        if not request.path.startswith("/api/v10/"):
            return await handler(request)
        recorded = await self.record(request)
        request[BODY] = recorded.json
        bucket = None
        try:
            if request.get(BAD_JSON):
                raise DiscordError(400, 50109, "The request body contains invalid JSON.")
            self.check_auth(request)
            bucket = self.rate_limit(request)
            response = await handler(request)
        except DiscordError as error:
            response = error.response()
            recorded.code = error.code
        except RateLimitedResponse as limited:
            response = limited.response
        if bucket is not None and response.status != 429:
            response.headers.update(bucket.headers())
        recorded.status = response.status
        async with self.posted:
            self.posted.notify_all()
        return response

    async def record(self, request: web.Request) -> Recorded:
        body = None
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    request[BAD_JSON] = True
            elif request.content_type.startswith("multipart/"):
                reader = await request.multipart()
                async for part in reader:
                    if part.name == "payload_json":
                        body = json.loads(await part.text())
        recorded = Recorded(request.method, request.path.removeprefix("/api/v10"), body, dict(request.query))
        self.requests.append(recorded)
        async with self.posted:
            self.posted.notify_all()
        return recorded

    def check_auth(self, request: web.Request) -> None:
        # interaction callbacks and follow-ups are authenticated by the token in their path
        if request.path.startswith(("/api/v10/interactions/", "/api/v10/webhooks/")):
            return
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bot ") or (self.token is not None and header != f"Bot {self.token}"):
            raise DiscordError(401, 0, "401: Unauthorized")

    def rate_limit(self, request: web.Request) -> Bucket | None:
        """The global limit, then the route's bucket (per top-level resource); a 429 when either is spent."""
        interaction_route = request.path.startswith(("/api/v10/interactions/", "/api/v10/webhooks/"))
        if not interaction_route:  # interaction endpoints are not bound to the global limit
            now = time.time()
            self._global_hits = [t for t in self._global_hits if now - t < 1.0]
            if self.global_rate_limit_next > 0 or len(self._global_hits) >= self.global_limit:
                self.global_rate_limit_next = max(0, self.global_rate_limit_next - 1)
                retry = 0.3 if not self._global_hits else max(0.05, 1.0 - (now - self._global_hits[0]))
                raise RateLimitedResponse(discord_json(
                    {"message": "You are being rate limited.", "retry_after": round(retry, 3), "global": True}, 429,
                    {"Retry-After": str(max(1, round(retry))), "X-RateLimit-Global": "true", "X-RateLimit-Scope": "global",
                     "Via": "1.1 google"}))  # discord.py takes a 429 without Via for a Cloudflare ban
            self._global_hits.append(now)
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else request.path
        info = request.match_info
        top = info.get("channel") or info.get("guild") or (f"{info.get('app')}/{info.get('token')}" if "token" in info else "")
        if "/interactions/" in template:
            top = info.get("id", "")
        key = (request.method, template, top)
        if key not in self._buckets:
            self._buckets[key] = Bucket(f"{abs(hash((request.method, template))):x}"[:12], self.route_limit, self.route_window)
        bucket = self._buckets[key]
        forced = request.method == "POST" and template.endswith("/channels/{channel}/messages") and self.rate_limit_next > 0
        if forced:
            self.rate_limit_next -= 1
        if forced or not bucket.take():
            retry = max(0.05, bucket.reset_at - time.time()) if not forced else 0.3
            headers = bucket.headers() | {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": f"{retry:.3f}",
                                          "Retry-After": str(max(1, round(retry))), "X-RateLimit-Scope": "user",
                                          "Via": "1.1 google"}
            raise RateLimitedResponse(discord_json(
                {"message": "You are being rate limited.", "retry_after": round(retry, 3), "global": False}, 429, headers))
        return bucket

    async def not_found(self, request: web.Request) -> web.Response:
        raise DiscordError(404, 0, "404: Not Found")

    def application(self) -> dict:
        """The bot's application (not captured: built from READY's application and the documented fields)."""
        return {"id": self.application_id, "name": self.bot_user["username"], "icon": None, "description": "",
                "bot_public": False, "bot_require_code_grant": False, "owner": self.bot_user,
                "verify_key": "0" * 64, "flags": frame("gateway_ready")["d"]["application"]["flags"], "team": None}

    async def gateway_bot(self, request: web.Request) -> web.Response:
        data = frame("rest_get_gateway_bot")
        data["url"] = self.url.replace("http://", "ws://") + "/gateway"
        return discord_json(data)

    # -- messages ----------------------------------------------------------------------------

    def message(self, channel_id: str, body: dict, author: dict | None = None, flags: int = 0) -> dict:
        """A message object as the REST API returns it (the captured create-message body, filled in)."""
        data = copy.deepcopy(frame("rest_create_message"))
        data.update(id=str(next(self.ids)), channel_id=channel_id, content=body.get("content") or "",
                    components=copy.deepcopy(body.get("components") or []), embeds=body.get("embeds") or [],
                    flags=flags, author=author or self.bot_user)
        if body.get("nonce") is not None:
            data["nonce"] = body["nonce"]
        data.update(self.mentions(channel_id, body))
        return data

    def mentions(self, channel_id: str, body: dict) -> dict:
        """Who a message really pings, as Discord works it out (message.mdx, "Allowed Mentions Object"): a role
        mentioned in the content and allowed (``parse`` or ``roles``), that is mentionable or the bot may
        mention everyone; ``@everyone``/``@here`` only when parsed and the bot has MENTION_EVERYONE."""
        content = body.get("content") or ""
        allowed = body.get("allowed_mentions")
        parse = set(allowed.get("parse", [])) if isinstance(allowed, dict) else {"users", "roles", "everyone"}
        named = {str(r) for r in (allowed.get("roles") or [])} if isinstance(allowed, dict) else set()
        channel = self.channels.get(channel_id, {})
        may_ping_all = channel.get("type") != DM and channel_id in self.channels and \
            bool(self.permissions(channel_id) & MENTION_EVERYONE)
        roles = {r["id"]: r for r in self.guild["roles"] if r["id"] != self.guild_id}
        pinged = []
        for role_id in dict.fromkeys(re.findall(r"<@&(\d+)>", content)):
            role = roles.get(role_id)
            if role and ("roles" in parse or role_id in named) and (role["mentionable"] or may_ping_all):
                pinged.append(role_id)
        everyone = bool(re.search(r"@(everyone|here)\b", content)) and "everyone" in parse and may_ping_all
        return {"mention_roles": pinged, "mention_everyone": everyone}

    # -- permissions (topics/permissions.mdx) ---------------------------------------------------

    def bot_member(self) -> dict:
        return next(m for m in self.guild["members"] if m["user"]["id"] == self.bot_user["id"])

    def permissions(self, channel_id: str) -> int:
        """The bot's permissions in a channel, computed as Discord documents it: @everyone, then the bot's roles,
        then the channel's overwrites (@everyone, roles, the bot itself); a thread uses its parent's."""
        channel = self.channel(channel_id)
        if channel["type"] in THREAD_TYPES:
            channel = self.channel(channel["parent_id"])
        roles = {r["id"]: int(r["permissions"]) for r in self.guild["roles"]}
        member = self.bot_member()
        permissions = roles.get(self.guild_id, 0)
        for role in member["roles"]:
            permissions |= roles.get(role, 0)
        if permissions & ADMINISTRATOR:
            return ALL_PERMISSIONS
        overwrites = {o["id"]: o for o in channel.get("permission_overwrites") or []}
        if self.guild_id in overwrites:
            permissions = (permissions & ~int(overwrites[self.guild_id]["deny"])) | int(overwrites[self.guild_id]["allow"])
        allow = deny = 0
        for role in member["roles"]:
            if role in overwrites:
                allow, deny = allow | int(overwrites[role]["allow"]), deny | int(overwrites[role]["deny"])
        permissions = (permissions & ~deny) | allow
        mine = overwrites.get(self.bot_user["id"])
        if mine:
            permissions = (permissions & ~int(mine["deny"])) | int(mine["allow"])
        if not permissions & VIEW_CHANNEL:  # "Denying VIEW_CHANNEL implicitly denies other permissions"
            return 0
        return permissions

    def require(self, channel_id: str, *needed: int) -> int:
        """403/50001 when the bot can't see the channel, 403/50013 when it lacks one of ``needed``."""
        permissions = self.permissions(channel_id)
        if not permissions & VIEW_CHANNEL:
            raise DiscordError(*MISSING_ACCESS)
        if any(not permissions & p for p in needed):
            raise DiscordError(*MISSING_PERMISSIONS)
        return permissions

    def sendable(self, channel_id: str, body: dict | None = None) -> dict:
        """Whether the bot may post this in the channel, as Discord decides; unarchives an archived thread."""
        channel = self.channel(channel_id)
        kind = channel["type"]
        if kind in FORUM_TYPES:
            raise DiscordError(*FORUM_REFUSES_MESSAGES)
        if kind == GUILD_CATEGORY:
            raise DiscordError(*NOT_A_TEXT_CHANNEL)
        if kind == DM:
            return channel
        thread = kind in THREAD_TYPES
        permissions = self.require(channel_id, SEND_MESSAGES_IN_THREADS if thread else SEND_MESSAGES)
        body = body or {}
        if body.get("embeds") and not permissions & EMBED_LINKS:
            raise DiscordError(*MISSING_PERMISSIONS)
        if body.get("message_reference") and not permissions & READ_MESSAGE_HISTORY:
            raise DiscordError(*MISSING_PERMISSIONS)
        if thread:
            metadata = channel.setdefault("thread_metadata", {})
            if metadata.get("locked") and not permissions & MANAGE_THREADS:
                raise DiscordError(*THREAD_LOCKED)
        return channel

    async def unarchive(self, channel: dict) -> None:
        """"Sending a message will automatically unarchive the thread, unless the thread has been locked"."""
        metadata = channel.get("thread_metadata") or {}
        if channel["type"] in THREAD_TYPES and metadata.get("archived"):
            metadata["archived"] = False
            await self.dispatch("THREAD_UPDATE", copy.deepcopy(channel), guild_id=self.guild_id, intent=GUILDS)

    def channel(self, channel_id: str) -> dict:
        if channel_id not in self.channels:
            raise DiscordError(*UNKNOWN_CHANNEL)
        return self.channels[channel_id]

    def reference(self, channel_id: str, reference) -> dict | None:
        """The reply's reference as Discord stores it, or a 400 when it names a message that isn't there."""
        if not isinstance(reference, dict) or reference.get("message_id") is None:
            return None
        target = self.messages.get(str(reference["message_id"]))
        if target is None or target["channel_id"] != str(reference.get("channel_id") or channel_id):
            if reference.get("fail_if_not_exists", True) is False:
                return None  # posted as a normal message, not a reply
            raise invalid_form("message_reference", "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
        return {"type": 0, "message_id": target["id"], "channel_id": target["channel_id"], "guild_id": self.guild_id}

    async def create_message(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel"]
        body = request[BODY] or {}
        channel = self.sendable(channel_id, body if isinstance(body, dict) else {})
        flags = check_message(body, allowed_flags=CHANNEL_MESSAGE_FLAGS)
        reference = self.reference(channel_id, body.get("message_reference"))
        await self.unarchive(channel)
        message = self.message(channel_id, body, flags=flags)
        if reference:
            message["message_reference"] = reference
            message["type"] = 19  # REPLY
        await self.publish(message)
        return discord_json(message)

    async def publish(self, message: dict) -> None:
        """Keep a new message, and tell the gateway about it unless only one user can see it."""
        self.messages[message["id"]] = message
        if not message["flags"] & EPHEMERAL:
            await self.dispatch("MESSAGE_CREATE", self.as_event(message), guild_id=self.guild_id)

    def as_event(self, message: dict) -> dict:
        """A message the bot posted, as MESSAGE_CREATE carries it: with the bot's own member (its roles, not a
        captured user's: discord.py updates the bot's cached member, and so its permissions, from it)."""
        member = {k: v for k, v in self.bot_member().items() if k != "user"}
        return dict(message, guild_id=self.guild_id, member=copy.deepcopy(member))

    async def delete_message_route(self, request: web.Request) -> web.Response:
        message = self.messages.get(request.match_info["message"])
        if message is None or message["channel_id"] != request.match_info["channel"]:
            raise DiscordError(*UNKNOWN_MESSAGE)
        await self.delete_message(message["id"])
        return web.Response(status=204)

    async def create_thread(self, request: web.Request) -> web.Response:
        channel_id, message_id = request.match_info["channel"], request.match_info["message"]
        parent = self.channel(channel_id)
        if parent["type"] not in (0, 5):  # "Does not work on a GUILD_FORUM or a GUILD_MEDIA channel"
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        self.require(channel_id, CREATE_PUBLIC_THREADS)
        message = self.messages.get(message_id)
        if message is None or message["channel_id"] != channel_id:
            raise DiscordError(*UNKNOWN_MESSAGE)
        if message_id in self.channels:  # the thread takes the message's id, so there can be only one
            raise DiscordError(*THREAD_EXISTS)
        body = request[BODY] or {}
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise invalid_form("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if body.get("auto_archive_duration") not in (None, *ARCHIVE_DURATIONS):
            raise invalid_form("auto_archive_duration", "BASE_TYPE_CHOICES", "Value must be one of {60, 1440, 4320, 10080}.")
        thread = frame("gateway_thread_create")["d"]
        thread.pop("newly_created", None)
        thread.update(id=message_id, parent_id=channel_id, guild_id=self.guild_id, name=name,
                      owner_id=self.bot_user["id"], type=11 if parent["type"] == 0 else 10)
        thread["thread_metadata"]["auto_archive_duration"] = body.get("auto_archive_duration") or 4320
        self.channels[message_id] = thread
        await self.dispatch("THREAD_CREATE", thread | {"newly_created": True}, guild_id=self.guild_id, intent=GUILDS)
        return discord_json(thread)

    async def typing(self, request: web.Request) -> web.Response:
        self.sendable(request.match_info["channel"])
        return web.Response(status=204)

    async def get_channel(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel"]
        channel = self.channel(channel_id)
        if channel["type"] != DM:
            self.require(channel_id)
        return discord_json(channel)

    # -- application commands ----------------------------------------------------------------

    def command_scope(self, request: web.Request) -> str | None:
        if request.match_info["app"] != self.application_id:
            raise DiscordError(*MISSING_ACCESS)
        guild = request.match_info.get("guild")
        if guild is not None and (guild != self.guild_id or guild in self.guilds_without_commands_scope):
            raise DiscordError(*MISSING_ACCESS)  # not in that guild, or invited without applications.commands
        return guild

    async def get_commands(self, request: web.Request) -> web.Response:
        return discord_json(self.commands.get(self.command_scope(request), []))

    async def put_commands(self, request: web.Request) -> web.Response:
        scope = self.command_scope(request)
        body = request[BODY]
        if not isinstance(body, list):
            raise DiscordError(400, 50035, "Invalid Form Body", {"_errors": [{"code": "BASE_TYPE_BAD_LIST", "message": "Must be a list."}]})
        if len(body) > 100:
            raise invalid_form("_", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        previous = {(c["type"], c["name"]): c for c in self.commands.get(scope, [])}
        seen: set[tuple] = set()
        stored = []
        for n, definition in enumerate(body):
            command = self.check_command(definition, str(n), guild=scope)
            key = (command["type"], command["name"])
            if key in seen:
                raise invalid_form(f"{n}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique")
            seen.add(key)
            old = previous.get(key)
            command["id"] = old["id"] if old else str(next(self.ids))
            unchanged = old is not None and {k: v for k, v in old.items() if k != "version"} == command
            command["version"] = old["version"] if unchanged else str(next(self.ids))
            stored.append(command)
        self.commands[scope] = stored
        return discord_json(stored)

    def check_command(self, definition: dict, path: str, guild: str | None) -> dict:
        """One command of a bulk overwrite, checked as Discord does, in the shape Discord returns it."""
        if not isinstance(definition, dict):
            raise invalid_form(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        kind = definition.get("type", 1)
        name, description = definition.get("name"), definition.get("description")
        if not isinstance(name, str) or not COMMAND_NAME.match(name) or (kind == 1 and name != name.lower()):
            raise invalid_form(f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if kind == 1 and (not isinstance(description, str) or not 1 <= len(description) <= 100):
            raise invalid_form(f"{path}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        permissions = definition.get("default_member_permissions")
        command = {"application_id": self.application_id, "type": kind, "name": name, "description": description or "",
                   "default_member_permissions": None if permissions is None else str(int(permissions)),
                   "nsfw": bool(definition.get("nsfw", False)),
                   "options": self.check_options(definition.get("options") or [], f"{path}.options")}
        if guild is None:  # these three apply to global commands only (application-commands.mdx)
            dm = definition.get("dm_permission")
            command["dm_permission"] = True if dm is None else bool(dm)
            contexts, installs = definition.get("contexts"), definition.get("integration_types") or [0]
            if contexts is not None and (not isinstance(contexts, list) or any(c not in (0, 1, 2) for c in contexts)):
                raise invalid_form(f"{path}.contexts", "BASE_TYPE_CHOICES", "Value must be one of {0, 1, 2}.")
            if not isinstance(installs, list) or any(i not in (0, 1) for i in installs):
                raise invalid_form(f"{path}.integration_types", "BASE_TYPE_CHOICES", "Value must be one of {0, 1}.")
            command["contexts"], command["integration_types"] = contexts, installs
        else:
            command["guild_id"] = guild
        if command_size(command) > 8000:
            raise invalid_form(path, "APPLICATION_COMMAND_TOO_LARGE", "Command exceeds maximum size (8000)")
        return command

    def check_options(self, options, path: str, parent: int | None = None) -> list[dict]:
        """Options as Discord accepts them: at most 25, unique lowercase names, required before optional,
        subcommand groups only at the top holding only subcommands, subcommands holding only plain options."""
        if not isinstance(options, list) or len(options) > 25:
            raise invalid_form(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        names: set[str] = set()
        seen_optional = False
        result = []
        for n, option in enumerate(options):
            here = f"{path}.{n}"
            kind, name = option.get("type"), option.get("name")
            if kind not in range(1, 12):
                raise invalid_form(f"{here}.type", "BASE_TYPE_CHOICES", "Value must be one of 1..11.")
            nesting_ok = {None: True, 2: kind == 1, 1: kind not in (1, 2)}[parent]
            if not nesting_ok:
                raise invalid_form(f"{here}.type", "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Invalid nesting of options")
            if not isinstance(name, str) or not COMMAND_NAME.match(name) or name != name.lower() or name in names:
                raise invalid_form(f"{here}.name", "APPLICATION_COMMAND_INVALID_NAME", "Option name is invalid or repeated")
            if not isinstance(option.get("description"), str) or not 1 <= len(option["description"]) <= 100:
                raise invalid_form(f"{here}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            names.add(name)
            stored = {"type": kind, "name": name, "description": option["description"]}
            if kind in (1, 2):
                stored["options"] = self.check_options(option.get("options") or [], f"{here}.options", kind)
            else:
                if option.get("required"):
                    if seen_optional:
                        raise invalid_form(f"{here}.required", "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                                           "Required options must be placed before non-required options")
                    stored["required"] = True
                else:
                    seen_optional = True
                if len(option.get("choices") or []) > 25:
                    raise invalid_form(f"{here}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
                for key in ("choices", "channel_types", "min_value", "max_value", "min_length", "max_length", "autocomplete"):
                    if option.get(key) not in (None, [], False):
                        stored[key] = option[key]
            result.append(stored)
        return result

    def registered(self, name: str, *, dm: bool = False) -> dict | None:
        """The command a user sees under ``name``: in the fake guild, a guild command before a global one allowed in
        guilds; in a DM, a global command whose ``contexts`` include BOT_DM (application-commands.mdx, "Contexts":
        guild commands never are, and ``contexts`` left null means every context unless ``dm_permission`` is false)."""
        for scope in ((None,) if dm else (self.guild_id, None)):
            for command in self.commands.get(scope, []):
                if command["name"] != name or command["type"] != 1:
                    continue
                contexts = command.get("contexts")
                if scope is None and contexts is None:
                    contexts = [0, 1, 2] if command.get("dm_permission", True) else [0]
                if scope is None and (1 if dm else 0) not in contexts:
                    continue
                return command
        return None

    # -- interactions ------------------------------------------------------------------------

    def interaction(self, interaction_id: str, token: str) -> Interaction:
        found = self.interactions.get(interaction_id)
        if found is None or found.data["token"] != token:
            raise DiscordError(*UNKNOWN_INTERACTION)
        return found

    def by_token(self, app: str, token: str) -> Interaction:
        found = next((i for i in self.interactions.values() if i.data["token"] == token), None)
        if app != self.application_id or found is None or found.acknowledged is None:
            raise DiscordError(*UNKNOWN_WEBHOOK)  # no webhook until the interaction was acknowledged
        if time.monotonic() - found.created > self.token_lifetime:
            raise DiscordError(*INVALID_WEBHOOK_TOKEN)
        return found

    async def interaction_callback(self, request: web.Request) -> web.Response:
        interaction = self.interaction(request.match_info["id"], request.match_info["token"])
        if interaction.acknowledged is not None:
            raise DiscordError(*ALREADY_ACKNOWLEDGED)
        if time.monotonic() - interaction.created > self.callback_deadline:
            raise DiscordError(*UNKNOWN_INTERACTION)  # the token was invalidated at the deadline
        body = request[BODY] or {}
        kind, data = body.get("type"), body.get("data") or {}
        is_component = interaction.data["type"] == 3
        # MODAL (9) answers a command or a component, never a modal's own submission (type 5).
        if kind not in (4, 5) and not (is_component and kind in (6, 7)) and not (kind == 9 and interaction.data["type"] in (2, 3)):
            raise invalid_form("type", "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type")
        channel_id = interaction.data["channel_id"]
        if kind == 9:
            check_modal(data)
            interaction.modal = copy.deepcopy(data)
        elif kind == 4:
            flags = check_message(data, allowed_flags=INTERACTION_MESSAGE_FLAGS)
            interaction.original = self.message(channel_id, data, flags=flags)
            interaction.messages.append(interaction.original)
            await self.publish(interaction.original)
        elif kind == 5:
            if (data.get("flags") or 0) & ~EPHEMERAL:
                raise invalid_form("data.flags", "INTERACTION_RESPONSE_FLAGS_INVALID", "Only EPHEMERAL may be set when deferring")
            interaction.original = self.message(channel_id, {}, flags=LOADING | ((data.get("flags") or 0) & EPHEMERAL))
            interaction.loading = True
            interaction.messages.append(interaction.original)
            await self.publish(interaction.original)
        elif kind == 6:
            interaction.original = self.messages.get(interaction.data["message"]["id"])
        else:
            flags = check_message(data, allowed_flags=INTERACTION_MESSAGE_FLAGS, partial=True)
            interaction.original = self.edit(self.messages[interaction.data["message"]["id"]], data, flags)
        interaction.acknowledged = kind
        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        response = {"interaction": {"id": interaction.data["id"], "type": interaction.data["type"],
                                    "response_message_loading": kind == 5,
                                    "response_message_ephemeral": bool(interaction.original and interaction.original["flags"] & EPHEMERAL)}}
        if kind in (4, 7):  # a message was created or updated
            response["interaction"]["response_message_id"] = interaction.original["id"]
            response["resource"] = {"type": kind, "message": interaction.original}
        return discord_json(response)

    def edit(self, message: dict, body: dict, flags: int | None = None) -> dict:
        for key in ("content", "components", "embeds", "allowed_mentions"):
            if key in body:
                message[key] = copy.deepcopy(body[key]) if body[key] is not None else ([] if key != "content" else "")
        if "content" in body:  # "mentions ... will be reconstructed from scratch based on the new content"
            message.update(self.mentions(message["channel_id"], body))
        if flags is not None:  # a message's EPHEMERAL state can't change; the loading state ends with an edit
            message["flags"] = (message["flags"] & EPHEMERAL) | (flags & ~EPHEMERAL)
        message["flags"] &= ~LOADING
        message["edited_timestamp"] = "2026-02-28T00:00:00.000000+00:00"
        return message

    async def create_followup(self, request: web.Request) -> web.Response:
        interaction = self.by_token(request.match_info["app"], request.match_info["token"])
        body = request[BODY] or {}
        flags = check_message(body, allowed_flags=INTERACTION_MESSAGE_FLAGS)
        if interaction.loading:
            # "this endpoint will function as Edit Original Interaction Response ... The ephemeral flag will be
            # ignored, and the value you provided in the initial defer response will be preserved"
            interaction.loading = False
            message = self.edit(interaction.original, body, flags)
            if not message["flags"] & EPHEMERAL:
                await self.dispatch("MESSAGE_UPDATE", self.as_event(message), guild_id=self.guild_id)
            return discord_json(message)
        message = self.message(interaction.data["channel_id"], body, flags=flags)
        message["webhook_id"] = self.application_id
        interaction.messages.append(message)
        await self.publish(message)
        return discord_json(message)

    async def edit_original(self, request: web.Request) -> web.Response:
        interaction = self.by_token(request.match_info["app"], request.match_info["token"])
        if interaction.original is None:
            raise DiscordError(*UNKNOWN_MESSAGE)
        body = request[BODY] or {}
        flags = check_message(body, allowed_flags=INTERACTION_MESSAGE_FLAGS, partial=True)
        interaction.loading = False
        message = self.edit(interaction.original, body, flags if "flags" in body else None)
        return discord_json(message)

    # -- the gateway -----------------------------------------------------------------------

    async def gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        compress = request.query.get("compress")
        if request.query.get("v") != "10":
            await socket.close(code=4012, message=b"Invalid API version")
            return socket
        if request.query.get("encoding", "json") != "json" or compress not in (None, "zlib-stream"):
            # ETF and zstd-stream are Discord's too, but not modelled here: fail loudly rather than pretend
            await socket.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"not modelled by the fake")
            return socket
        session = Session(socket, zlib.compressobj() if compress == "zlib-stream" else None)
        self.sessions.append(session)
        try:
            await self.send_raw(session, frame("gateway_hello"))
            async for message in socket:
                if message.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(message.data)
                if payload["op"] == 1:  # heartbeat
                    await self.send_raw(session, {"op": 11, "d": None, "s": None, "t": None})
                elif payload["op"] == 2:
                    await self.identify(session, payload["d"])
                elif payload["op"] == 6:  # resume: sessions are not kept, so the client must identify again
                    await self.send_raw(session, {"op": 9, "d": False, "s": None, "t": None})
        finally:
            self.sessions.remove(session)
        return socket

    async def identify(self, session: Session, data: dict) -> None:
        if session.identified:
            await session.socket.close(code=4005, message=b"Already authenticated")
            return
        if self.token is not None and data.get("token") != self.token:
            await session.socket.close(code=4004, message=b"Authentication failed")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents & ~KNOWN_INTENTS:
            await session.socket.close(code=4013, message=b"Invalid intent(s)")
            return
        if intents & PRIVILEGED_INTENTS & ~self.privileged_intents:
            await session.socket.close(code=4014, message=b"Disallowed intent(s)")
            return
        shard = data.get("shard", [0, 1])
        if (not isinstance(shard, list) or len(shard) != 2 or not all(isinstance(n, int) for n in shard)
                or not 0 <= shard[0] < shard[1]):
            await session.socket.close(code=4010, message=b"Invalid shard")
            return
        session.shard, session.intents, session.identified = (shard[0], shard[1]), intents, True
        self.identify_payloads.append(data)
        ready = copy.deepcopy(frame("gateway_ready")["d"])
        mine = shard_of(self.guild_id, shard[1]) == shard[0]
        ready["guilds"] = [{"id": self.guild_id, "unavailable": True}] if mine else []
        ready["shard"] = list(shard)
        await self.send(session, "READY", ready)
        if mine and intents & GUILDS:
            guild = copy.deepcopy(self.guild)
            guild["threads"] = [copy.deepcopy(c) for c in self.channels.values() if c["type"] in (10, 11, 12)]
            await self.send(session, "GUILD_CREATE", guild)
        self.identified.set()

    async def send_raw(self, session: Session, payload: dict) -> None:
        data = json.dumps(payload)
        if session.deflate is None:
            await session.socket.send_str(data)
        else:  # one zlib context per connection, each payload ending in Z_SYNC_FLUSH's 00 00 ff ff
            await session.socket.send_bytes(session.deflate.compress(data.encode()) + session.deflate.flush(zlib.Z_SYNC_FLUSH))

    async def send(self, session: Session, event: str, data: dict) -> None:
        session.sequence += 1
        await self.send_raw(session, {"op": 0, "t": event, "s": session.sequence, "d": data})

    async def dispatch(self, event: str, data: dict, *, guild_id: str | None = None, intent: int | None = None) -> None:
        """Send an event to the shard it belongs to, if that connection asked for it with its intents."""
        if intent is None and event.startswith("MESSAGE_"):
            intent = GUILD_MESSAGES if guild_id else DIRECT_MESSAGES
        for session in list(self.sessions):
            if not session.identified or session.socket.closed:
                continue
            if session.shard[0] != (shard_of(guild_id, session.shard[1]) if guild_id else 0):
                continue
            if intent is not None and not session.intents & intent:
                continue
            payload = data
            if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and not session.intents & MESSAGE_CONTENT:
                payload = self.without_content(data)
            await self.send(session, event, copy.deepcopy(payload))

    def without_content(self, message: dict) -> dict:
        """What an app without the MESSAGE_CONTENT intent receives (events/gateway.mdx, "Message Content Intent")."""
        bot_id = self.bot_user["id"]
        if (message.get("author") or {}).get("id") == bot_id or not message.get("guild_id") \
                or any(m.get("id") == bot_id for m in message.get("mentions") or []):
            return message
        return dict(message, content="", embeds=[], attachments=[], components=[])

    # -- what tests do -----------------------------------------------------------------------

    async def user_message(self, content: str, *, channel_id: str | None = None, author_id: str = "900000000000000002",
                           mentions_bot: bool = False, bot_author: bool = False) -> dict:
        data = copy.deepcopy(frame("gateway_message_create")["d"])
        data.update(id=str(next(self.ids)), content=content, channel_id=channel_id or self.text_channel,
                    guild_id=self.guild_id, mentions=[self.bot_user] if mentions_bot else [])
        data["author"] = dict(data["author"], id=author_id, bot=bot_author)
        self.channel(data["channel_id"])
        self.messages[data["id"]] = data
        await self.dispatch("MESSAGE_CREATE", data, guild_id=self.guild_id)
        return data

    async def delete_message(self, message_id: str) -> None:
        """Someone deletes a message: it is gone, and the gateway says so."""
        message = self.messages.pop(message_id)
        await self.dispatch("MESSAGE_DELETE", {"id": message_id, "channel_id": message["channel_id"],
                                               "guild_id": self.guild_id}, guild_id=self.guild_id)

    async def set_permissions(self, channel_id: str, *, allow: int = 0, deny: int = 0) -> None:
        """A moderator sets the bot's own overwrite on a channel; the gateway sends CHANNEL_UPDATE."""
        channel = self.channels[channel_id]
        overwrites = [o for o in channel.get("permission_overwrites") or [] if o["id"] != self.bot_user["id"]]
        overwrites.append({"id": self.bot_user["id"], "type": 1, "allow": str(allow), "deny": str(deny)})
        channel["permission_overwrites"] = overwrites
        await self.dispatch("CHANNEL_UPDATE", copy.deepcopy(channel), guild_id=self.guild_id, intent=GUILDS)

    async def user_thread(self, name: str, *, message_id: str | None = None, author_id: str = "900000000000000002",
                          announce: bool = True) -> dict:
        """A user starts a public thread in the text channel (from ``message_id``, which it takes the id of, or alone).
        ``announce=False``: the THREAD_CREATE is still on its way to the bot (a race with the bot's own REST calls)."""
        if message_id is not None and message_id in self.channels:
            raise DiscordError(*THREAD_EXISTS)
        thread = frame("gateway_thread_create")["d"]
        thread.pop("newly_created", None)
        thread.update(id=message_id or str(next(self.ids)), guild_id=self.guild_id, parent_id=self.text_channel,
                      name=name, owner_id=author_id, type=11)
        self.channels[thread["id"]] = thread
        if announce:
            await self.dispatch("THREAD_CREATE", thread | {"newly_created": True}, guild_id=self.guild_id, intent=GUILDS)
        return thread

    async def update_thread(self, thread_id: str, *, locked: bool | None = None, archived: bool | None = None) -> None:
        """A moderator locks or archives a thread (or undoes it); the gateway sends THREAD_UPDATE."""
        metadata = self.channels[thread_id]["thread_metadata"]
        if locked is not None:
            metadata["locked"] = locked
        if archived is not None:
            metadata["archived"] = archived
        await self.dispatch("THREAD_UPDATE", copy.deepcopy(self.channels[thread_id]), guild_id=self.guild_id, intent=GUILDS)

    async def forum_post(self, title: str, content: str, author_id: str = "900000000000000002") -> dict:
        """A new forum post: Discord sends THREAD_CREATE, then the starter message whose id is the thread's."""
        thread = frame("gateway_thread_create")["d"]
        thread.pop("newly_created", None)
        thread.update(id=str(next(self.ids)), guild_id=self.guild_id, parent_id=self.forum_channel, name=title,
                      owner_id=author_id)
        self.channels[thread["id"]] = thread
        await self.dispatch("THREAD_CREATE", thread | {"newly_created": True}, guild_id=self.guild_id, intent=GUILDS)
        data = copy.deepcopy(frame("gateway_message_create")["d"])
        data.update(id=thread["id"], content=content, channel_id=thread["id"], guild_id=self.guild_id, mentions=[])
        data["author"] = dict(data["author"], id=author_id, bot=False)
        self.messages[data["id"]] = data
        await self.dispatch("MESSAGE_CREATE", data, guild_id=self.guild_id)
        return thread

    async def slash(self, name: str, options: dict, user_id: str = "900000000000000002", *, subcommand: str | None = None,
                    permissions: str | None = None, dm: bool = False) -> dict:
        """A user running a slash command in the text channel (or, ``dm``, in their DM with the bot): the captured
        INTERACTION_CREATE, as that command.

        Raises :class:`NotRegistered` when Discord would offer the user no such command (or no such option): in a
        DM, only a global command whose ``contexts`` include BOT_DM (1) is offered."""
        command = self.registered(name, dm=dm)
        if command is None:
            raise NotRegistered(f"/{name} is not registered{' for DMs' if dm else ''}: Discord offers users no such command")
        definition = command["options"]
        if subcommand is not None:
            sub = next((o for o in definition if o["name"] == subcommand and o["type"] == 1), None)
            if sub is None:
                raise NotRegistered(f"/{name} {subcommand} is not registered")
            definition = sub.get("options", [])
        kinds = {str: 3, bool: 5, int: 4}
        registered_options = {o["name"]: o for o in definition}
        for key, value in options.items():
            if key not in registered_options or registered_options[key]["type"] != kinds[type(value)]:
                raise NotRegistered(f"/{name} has no {key!r} option of that type")
        missing = [o["name"] for o in definition if o.get("required") and o["name"] not in options]
        if missing:
            raise NotRegistered(f"/{name} needs {', '.join(missing)}: Discord won't send it without")
        arguments = [{"name": k, "type": kinds[type(v)], "value": v} for k, v in options.items()]
        if subcommand:
            arguments = [{"name": subcommand, "type": 1, "options": arguments}]
        data = copy.deepcopy(frame("gateway_interaction_create")["d"])
        data.update(id=str(next(self.ids)), token=f"token-{next(self.ids)}", type=2, application_id=self.application_id,
                    channel_id=self.text_channel, guild_id=self.guild_id,
                    data={"id": command["id"], "name": name, "type": 1, "options": arguments,
                          **({"guild_id": command["guild_id"]} if "guild_id" in command else {})})
        if permissions is not None:
            data["member"]["permissions"] = permissions
        data["channel"] = copy.deepcopy(self.channels[self.text_channel])
        data["member"]["user"] = dict(data["member"]["user"], id=user_id)
        data.pop("guild", None)
        data["app_permissions"] = str(self.permissions(data["channel_id"]))  # the bot's, in that channel
        if dm:  # receiving-and-responding.mdx: no guild, a ``user`` instead of a ``member``, context BOT_DM
            user = data.pop("member")["user"]
            channel = self.dm_channel(user)
            data.pop("guild_id", None)
            data["data"].pop("guild_id", None)
            data.update(user=user, channel_id=channel["id"], channel=copy.deepcopy(channel), context=1,
                        authorizing_integration_owners={"0": self.guild_id})
            self.interactions[data["id"]] = Interaction(data, time.monotonic())
            await self.dispatch("INTERACTION_CREATE", data)
            return data
        await self.deliver(data)
        return data

    def dm_channel(self, user: dict) -> dict:
        """The DM channel between the bot and ``user`` (made on first use)."""
        for channel in self.channels.values():
            if channel["type"] == DM and channel["recipients"][0]["id"] == user["id"]:
                return channel
        channel = {"id": str(next(self.ids)), "type": DM, "last_message_id": None, "flags": 0, "recipients": [user]}
        self.channels[channel["id"]] = channel
        return channel

    async def deliver(self, data: dict) -> None:
        self.interactions[data["id"]] = Interaction(data, time.monotonic())
        await self.dispatch("INTERACTION_CREATE", data, guild_id=self.guild_id)  # needs no intent

    def followups(self, interaction: dict) -> list[Recorded]:
        return self.sent("POST", f"/webhooks/{self.application_id}/{interaction['token']}")

    async def click(self, custom_id: str, *, message: dict, user_id: str = "900000000000000002") -> dict:
        """A user pressing a button on a message the bot posted: the captured INTERACTION_CREATE, as a component
        interaction. Raises ValueError when the message has no such button (nobody could press it)."""
        current = self.messages.get(message["id"])
        buttons = {c["custom_id"]: c for row in (current or {}).get("components", []) for c in row["components"]
                   if "custom_id" in c}
        if custom_id not in buttons:
            raise ValueError(f"message {message['id']} has no component {custom_id!r}")
        channel_id = current["channel_id"]
        data = copy.deepcopy(frame("gateway_interaction_create")["d"])
        data.update(id=str(next(self.ids)), token=f"token-{next(self.ids)}", type=3, application_id=self.application_id,
                    channel_id=channel_id, guild_id=self.guild_id, message=copy.deepcopy(current),
                    data={"custom_id": custom_id, "component_type": buttons[custom_id]["type"]})
        data["channel"] = copy.deepcopy(self.channels[channel_id])  # interactions carry the full channel
        data["member"]["user"] = dict(data["member"]["user"], id=user_id)
        data.pop("guild", None)
        data["app_permissions"] = str(self.permissions(data["channel_id"]))  # the bot's, in that channel
        await self.deliver(data)
        return data

    async def submit_modal(self, shown: dict, values: dict[str, str], *, user_id: str = "900000000000000002") -> dict:
        """The user filling in and sending the modal the bot answered ``shown`` (an interaction) with: a
        MODAL_SUBMIT interaction. The client enforces the inputs' lengths and required flags, so values outside
        them can't be sent (ValueError here)."""
        modal = self.interactions[shown["id"]].modal
        if modal is None:
            raise ValueError(f"interaction {shown['id']} showed no modal")
        rows = []
        for row in modal["components"]:
            field_ = row["components"][0]
            value = values.get(field_["label"], values.get(field_["custom_id"], ""))
            if (field_.get("required", True) and not value) or not field_.get("min_length", 0) <= len(value) <= field_.get("max_length", 4000):
                raise ValueError(f"Discord's client would not send {value!r} for {field_['label']!r}")
            rows.append({"type": ACTION_ROW, "components": [{"type": TEXT_INPUT, "custom_id": field_["custom_id"], "value": value}]})
        data = copy.deepcopy(frame("gateway_interaction_create")["d"])
        data.update(id=str(next(self.ids)), token=f"token-{next(self.ids)}", type=5, application_id=self.application_id,
                    channel_id=shown["channel_id"], guild_id=self.guild_id,
                    data={"custom_id": modal["custom_id"], "components": rows})
        data["channel"] = copy.deepcopy(self.channels[shown["channel_id"]])
        data["member"]["user"] = dict(data["member"]["user"], id=user_id)
        data.pop("guild", None)
        data.pop("message", None)
        await self.deliver(data)
        return data

    def modal(self, interaction: dict) -> dict | None:
        """The modal the bot answered an interaction with, if it did."""
        return self.interactions[interaction["id"]].modal

    def bot_messages(self, channel_id: str) -> list[dict]:
        """The messages the bot has in a channel now, oldest first (ephemeral ones included)."""
        return [m for m in self.messages.values() if m["channel_id"] == channel_id and m["author"]["id"] == self.bot_user["id"]]

    def callbacks(self, interaction: dict) -> list[Recorded]:
        return self.sent("POST", f"/interactions/{interaction['id']}/")

    def replies(self, interaction: dict) -> list[dict]:
        """Every message an interaction produced, as it is now (``flags & 64``: only the user who ran it sees it)."""
        return self.interactions[interaction["id"]].messages

    def sent(self, method: str, path_part: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    async def wait_for(self, predicate, timeout: float = 20.0) -> None:
        async def check():
            async with self.posted:
                await self.posted.wait_for(predicate)

        await asyncio.wait_for(check(), timeout)


class RateLimitedResponse(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__("429")
        self.response = response


class NotRegistered(LookupError):
    """A test tried to run a slash command (or option) the bot never registered: no user could."""
