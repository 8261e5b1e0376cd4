"""A loopback fake of Discord: the gateway websocket and the REST routes the bot calls.

Frames and REST bodies start from the real captures in
``../shared/fixtures/discord/captured/frames``: HELLO, READY (its bot user and application),
GUILD_CREATE (its guild, text and forum channels), MESSAGE_CREATE and INTERACTION_CREATE are
the captured payloads with only the fields a test is about replaced. Every REST request is
recorded so tests can read exactly what the bot sent.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import WSMsgType, web

FRAMES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "discord" / "captured" / "frames"


def frame(name: str):
    return json.loads((FRAMES / f"{name}.json").read_text())[0]


def discord_json(data, status: int = 200, headers: dict | None = None) -> web.Response:
    # discord.py accepts a JSON body only when Content-Type is exactly this
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


@dataclass
class Recorded:
    method: str
    path: str
    json: dict | None


@dataclass
class FakeDiscord:
    requests: list[Recorded] = field(default_factory=list)
    rate_limit_next: int = 0  # answer this many message posts with 429 first
    token: str | None = None  # when set, any other bot token is refused
    ids: itertools.count = field(default_factory=lambda: itertools.count(950000000000000000))

    def __post_init__(self) -> None:
        ready = frame("gateway_ready")["d"]
        guild = frame("gateway_guild_create")["d"]
        self.bot_user = ready["user"]
        self.application_id = ready["application"]["id"]
        self.guild = guild
        self.guild_id = guild["id"]
        self.text_channel = next(c["id"] for c in guild["channels"] if c["type"] == 0)
        self.forum_channel = next(c["id"] for c in guild["channels"] if c["type"] == 15)
        self.url = ""
        self.sockets: list[web.WebSocketResponse] = []
        self.sequence = 0
        self.identified = asyncio.Event()
        self.identify_payloads: list[dict] = []
        self.posted = asyncio.Condition()
        self.interactions: dict[str, dict] = {}

    # -- the app ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/gateway", self.gateway)
        app.router.add_get("/api/v10/gateway/bot", self.gateway_bot)
        app.router.add_get("/api/v10/users/@me", self.users_me)
        app.router.add_get("/api/v10/oauth2/applications/@me", lambda r: self.record_and(r, self.application()))
        app.router.add_post("/api/v10/channels/{channel}/messages", self.create_message)
        app.router.add_post("/api/v10/channels/{channel}/messages/{message}/threads", self.create_thread)
        app.router.add_post("/api/v10/channels/{channel}/typing", lambda r: self.record_and(r, None, 204))
        app.router.add_post("/api/v10/interactions/{id}/{token}/callback", self.interaction_callback)
        app.router.add_post("/api/v10/webhooks/{app}/{token}", self.create_followup)
        app.router.add_patch("/api/v10/webhooks/{app}/{token}/messages/@original", self.create_followup)
        app.router.add_route("*", "/api/v10/{tail:.*}", lambda r: self.record_and(r, {"message": "Unknown", "code": 0}, 404))
        return app

    async def record(self, request: web.Request) -> dict | None:
        body = None
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
            elif request.content_type.startswith("multipart/"):
                reader = await request.multipart()
                async for part in reader:
                    if part.name == "payload_json":
                        body = json.loads(await part.text())
        self.requests.append(Recorded(request.method, request.path.removeprefix("/api/v10"), body))
        async with self.posted:
            self.posted.notify_all()
        return body

    async def record_and(self, request: web.Request, data, status: int = 200) -> web.Response:
        await self.record(request)
        return web.Response(status=204) if status == 204 else discord_json(data, status)

    async def users_me(self, request: web.Request) -> web.Response:
        if self.token is not None and request.headers.get("Authorization") != f"Bot {self.token}":
            await self.record(request)
            return discord_json({"message": "401: Unauthorized", "code": 0}, 401)
        return await self.record_and(request, self.bot_user)

    def application(self) -> dict:
        """The bot's application (not captured: built from READY's application and the documented fields)."""
        return {"id": self.application_id, "name": self.bot_user["username"], "icon": None, "description": "",
                "bot_public": False, "bot_require_code_grant": False, "owner": self.bot_user,
                "verify_key": "0" * 64, "flags": frame("gateway_ready")["d"]["application"]["flags"], "team": None}

    def message(self, channel_id: str, body: dict, author: dict | None = None) -> dict:
        data = copy.deepcopy(frame("rest_create_message"))
        data.update(id=str(next(self.ids)), channel_id=channel_id, content=body.get("content") or "",
                    components=body.get("components") or [], flags=body.get("flags", 0))
        if author:
            data["author"] = author
        return data

    async def gateway_bot(self, request: web.Request) -> web.Response:
        data = frame("rest_get_gateway_bot")
        data["url"] = self.url.replace("http://", "ws://") + "/gateway"
        return await self.record_and(request, data)

    async def create_message(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return discord_json({"message": "You are being rate limited.", "retry_after": 0.3, "global": False}, 429,
                                {"Retry-After": "0.3", "X-RateLimit-Scope": "user", "X-RateLimit-Bucket": "fake",
                                 "Via": "1.1 google"})  # discord.py treats a 429 without Via as a Cloudflare ban
        return discord_json(self.message(request.match_info["channel"], body or {}))

    async def create_thread(self, request: web.Request) -> web.Response:
        body = await self.record(request) or {}
        thread = frame("gateway_thread_create")["d"]
        thread.update(id=str(next(self.ids)), parent_id=request.match_info["channel"], guild_id=self.guild_id,
                      name=body.get("name", "thread"), owner_id=self.bot_user["id"])
        thread.pop("newly_created", None)
        await self.dispatch("THREAD_CREATE", thread | {"newly_created": True})
        return discord_json(thread)

    async def interaction_callback(self, request: web.Request) -> web.Response:
        body = await self.record(request) or {}
        if "with_response" not in request.query:
            return web.Response(status=204)
        interaction = self.interactions.get(request.match_info["id"], {})
        data = body.get("data") or {}
        response = {"interaction": {"id": request.match_info["id"], "type": interaction.get("type", 2),
                                    "response_message_loading": body.get("type") == 5,
                                    "response_message_ephemeral": bool(data.get("flags", 0) & 64)}}
        if body.get("type") in (4, 7):  # a message was created or updated
            message = self.message(interaction.get("channel_id", "0"), data, author=self.bot_user)
            response["interaction"]["response_message_id"] = message["id"]
            response["resource"] = {"type": body["type"], "message": message}
        return discord_json(response)

    async def create_followup(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        return discord_json(self.message("0", body or {}, author=self.bot_user))

    # -- the gateway -----------------------------------------------------------------------

    async def gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.sockets.append(socket)
        await socket.send_json(frame("gateway_hello"))
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            payload = json.loads(message.data)
            if payload["op"] == 1:  # heartbeat
                await socket.send_json({"op": 11, "d": None, "s": None, "t": None})
            elif payload["op"] == 2:  # identify
                self.identify_payloads.append(payload["d"])
                ready = copy.deepcopy(frame("gateway_ready")["d"])
                ready["guilds"] = [{"id": self.guild_id, "unavailable": True}]
                await self.send(socket, "READY", ready)
                await self.send(socket, "GUILD_CREATE", copy.deepcopy(self.guild))
                self.identified.set()
        self.sockets.remove(socket)
        return socket

    async def send(self, socket: web.WebSocketResponse, event: str, data: dict) -> None:
        self.sequence += 1
        await socket.send_json({"op": 0, "t": event, "s": self.sequence, "d": data})

    async def dispatch(self, event: str, data: dict) -> None:
        for socket in list(self.sockets):
            await self.send(socket, event, data)

    # -- what tests send ---------------------------------------------------------------------

    async def user_message(self, content: str, *, channel_id: str | None = None, author_id: str = "900000000000000002",
                           mentions_bot: bool = False, bot_author: bool = False) -> dict:
        data = copy.deepcopy(frame("gateway_message_create")["d"])
        data.update(id=str(next(self.ids)), content=content, channel_id=channel_id or self.text_channel,
                    guild_id=self.guild_id, mentions=[self.bot_user] if mentions_bot else [])
        data["author"] = dict(data["author"], id=author_id, bot=bot_author)
        await self.dispatch("MESSAGE_CREATE", data)
        return data

    async def forum_post(self, title: str, content: str, author_id: str = "900000000000000002") -> dict:
        """A new forum post: Discord sends THREAD_CREATE, then the starter message whose id is the thread's."""
        thread = frame("gateway_thread_create")["d"]
        thread.update(id=str(next(self.ids)), guild_id=self.guild_id, parent_id=self.forum_channel, name=title,
                      owner_id=author_id)
        await self.dispatch("THREAD_CREATE", thread)
        data = copy.deepcopy(frame("gateway_message_create")["d"])
        data.update(id=thread["id"], content=content, channel_id=thread["id"], guild_id=self.guild_id, mentions=[])
        data["author"] = dict(data["author"], id=author_id, bot=False)
        await self.dispatch("MESSAGE_CREATE", data)
        return thread

    async def slash(self, name: str, options: dict, user_id: str = "900000000000000002", *, subcommand: str | None = None,
                    permissions: str | None = None) -> dict:
        """A user running a slash command in the text channel: the captured INTERACTION_CREATE, as that command."""
        data = copy.deepcopy(frame("gateway_interaction_create")["d"])
        kinds = {str: 3, bool: 5, int: 4}
        arguments = [{"name": k, "type": kinds[type(v)], "value": v} for k, v in options.items()]
        if subcommand:
            arguments = [{"name": subcommand, "type": 1, "options": arguments}]
        data.update(id=str(next(self.ids)), token=f"token-{next(self.ids)}", type=2, application_id=self.application_id,
                    channel_id=self.text_channel, guild_id=self.guild_id,
                    data={"id": str(next(self.ids)), "name": name, "type": 1, "options": arguments})
        if permissions is not None:
            data["member"]["permissions"] = permissions
        data["channel"] = next(dict(c, guild_id=self.guild_id) for c in self.guild["channels"] if c["id"] == self.text_channel)
        data["member"]["user"] = dict(data["member"]["user"], id=user_id)
        data.pop("guild", None)
        self.interactions[data["id"]] = data
        await self.dispatch("INTERACTION_CREATE", data)
        return data

    def followups(self, interaction: dict) -> list[Recorded]:
        return self.sent("POST", f"/webhooks/{self.application_id}/{interaction['token']}")

    async def click(self, custom_id: str, *, message: dict, channel_id: str, user_id: str = "900000000000000002") -> dict:
        """A user pressing a button: the captured INTERACTION_CREATE, as a component interaction."""
        data = copy.deepcopy(frame("gateway_interaction_create")["d"])
        data.update(id=str(next(self.ids)), token=f"token-{next(self.ids)}", type=3, application_id=self.application_id,
                    channel_id=channel_id, guild_id=self.guild_id, message=message,
                    data={"custom_id": custom_id, "component_type": 2})
        thread = frame("gateway_thread_create")["d"]  # interactions carry the full channel, thread metadata included
        thread.pop("newly_created", None)
        data["channel"] = dict(thread, id=channel_id, guild_id=self.guild_id, parent_id=self.text_channel,
                               owner_id=self.bot_user["id"])
        data["member"]["user"] = dict(data["member"]["user"], id=user_id)
        data.pop("guild", None)
        self.interactions[data["id"]] = data
        await self.dispatch("INTERACTION_CREATE", data)
        return data

    def callbacks(self, interaction: dict) -> list[Recorded]:
        return self.sent("POST", f"/interactions/{interaction['id']}/")

    def sent(self, method: str, path_part: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    async def wait_for(self, predicate, timeout: float = 20.0) -> None:
        async def check():
            async with self.posted:
                await self.posted.wait_for(predicate)

        await asyncio.wait_for(check(), timeout)
