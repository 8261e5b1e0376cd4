"""The fake Discord itself: it must refuse what Discord refuses, as Discord's documentation says, or it hides bugs.

Each case names what Discord's API reference (``../shared/fixtures/discord/api-docs``) says and checks the
fake answers the same status, error code and headers, over real HTTP and a real websocket.
"""

import asyncio
import contextlib
import json
import zlib

import aiohttp
import pytest
from fakes.discord import (
    EPHEMERAL,
    FRAMES,
    GUILD_MEMBERS,
    GUILD_MESSAGES,
    GUILDS,
    MESSAGE_CONTENT,
    FakeDiscord,
    NotRegistered,
    shard_of,
)
from fakes.server import serve

pytestmark = pytest.mark.skipif(not FRAMES.is_dir(), reason="../shared/fixtures/discord is absent")

AUTH = {"Authorization": "Bot fake-token"}
ROW = {"type": 1, "components": [{"type": 2, "style": 2, "label": "ok", "custom_id": "fr:ok"}]}
DEFAULT_INTENTS = GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT


@contextlib.asynccontextmanager
async def served(**options):
    fake = FakeDiscord(**options)
    async with serve(fake.app()) as url, aiohttp.ClientSession(url + "/api/v10/", headers=AUTH) as http:
        fake.url = url
        yield fake, http


async def call(http, method, path, body=None, **options):
    async with http.request(method, path.lstrip("/"), json=body, **options) as response:
        data = await response.json() if response.content_type == "application/json" else None
        return response.status, data, response.headers


def button(n: int, custom_id: str | None = None) -> dict:
    return {"type": 2, "style": 2, "label": str(n), "custom_id": custom_id or f"b{n}"}


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"content": "x" * 2001}, 50035, ["content"]),
    ({"content": "hi", "components": [button(1)]}, 50035, ["components", "0", "type"]),  # a button outside an action row
    ({"content": "hi", "components": [{"type": 1, "components": [button(n)]} for n in range(6)]}, 50035, ["components"]),
    ({"content": "hi", "components": [{"type": 1, "components": [button(n) for n in range(6)]}]}, 50035,
     ["components", "0", "components"]),
    ({"content": "hi", "components": [{"type": 1, "components": [button(1, "x" * 101)]}]}, 50035,
     ["components", "0", "components", "0", "custom_id"]),
    ({"content": "hi", "components": [{"type": 1, "components": [button(1, "same"), button(2, "same")]}]}, 50035,
     ["components", "0", "components", "1", "custom_id"]),
    ({"content": "hi", "allowed_mentions": {"parse": ["users"], "users": ["1"]}}, 50035, ["allowed_mentions", "users"]),
    ({}, 50006, None),
])
async def test_a_message_discord_refuses_is_refused_with_its_code_and_field(body, code, field):
    async with served() as (fake, http):
        status, error, _ = await call(http, "POST", f"channels/{fake.text_channel}/messages", body)
    assert status == 400 and error["code"] == code
    if field:
        errors = error["errors"]
        for part in field:
            errors = errors[part]
        assert errors["_errors"][0]["code"]
    assert not fake.bot_messages(fake.text_channel)


async def test_the_largest_message_discord_allows_is_accepted_and_echoed_on_the_gateway():
    body = {"content": "x" * 2000, "components": [{"type": 1, "components": [button(n) for n in range(5)]}] * 1}
    async with served() as (fake, http):
        async with gateway(fake) as socket:
            status, message, headers = await call(http, "POST", f"channels/{fake.text_channel}/messages", body)
            assert status == 200 and message["content"] == body["content"]
            event = await next_event(socket, "MESSAGE_CREATE")
    assert event["id"] == message["id"] and event["author"]["id"] == fake.bot_user["id"]  # the bot sees its own message
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After",
            "X-RateLimit-Bucket"} <= set(headers)


async def test_an_ephemeral_flag_on_a_channel_message_makes_nothing_private():
    async with served() as (fake, http):
        status, message, _ = await call(http, "POST", f"channels/{fake.text_channel}/messages",
                                        {"content": "for everyone", "flags": EPHEMERAL | 4})
    assert status == 200 and message["flags"] == 4  # only SUPPRESS_EMBEDS and its kind can be set here


async def test_a_reply_to_a_deleted_message_fails_unless_told_not_to():
    async with served() as (fake, http):
        question = await fake.user_message("a question")
        await fake.delete_message(question["id"])
        reference = {"message_id": question["id"]}
        status, error, _ = await call(http, "POST", f"channels/{fake.text_channel}/messages",
                                      {"content": "an answer", "message_reference": reference})
        assert status == 400 and error["code"] == 50035 and "message_reference" in error["errors"]
        status, message, _ = await call(http, "POST", f"channels/{fake.text_channel}/messages",
                                        {"content": "an answer", "message_reference": reference | {"fail_if_not_exists": False}})
    assert status == 200 and "message_reference" not in message  # posted, as a plain message


async def test_a_thread_takes_its_message_s_id_and_there_is_only_one():
    async with served() as (fake, http):
        question = await fake.user_message("a question")
        path = f"channels/{fake.text_channel}/messages/{question['id']}/threads"
        status, thread, _ = await call(http, "POST", path, {"name": "a question", "auto_archive_duration": 1440})
        assert status == 200 and thread["id"] == question["id"] and thread["type"] == 11
        status, error, _ = await call(http, "POST", path, {"name": "again"})
        assert (status, error["code"]) == (400, 160004)
        status, error, _ = await call(http, "POST", f"channels/{fake.text_channel}/messages/123/threads", {"name": "x"})
        assert (status, error["code"]) == (404, 10008)
        status, error, _ = await call(http, "POST", "channels/123/messages", {"content": "to nowhere"})
        assert (status, error["code"]) == (404, 10003)
        status, _, _ = await call(http, "POST", f"channels/{thread['id']}/messages", {"content": "in the thread"})
    assert status == 200


async def test_a_spent_bucket_is_a_429_with_discord_s_headers_and_the_global_limit_says_so():
    async with served(route_limit=1, route_window=30) as (fake, http):
        path = f"channels/{fake.text_channel}/messages"
        status, _, headers = await call(http, "POST", path, {"content": "one"})
        assert status == 200 and headers["X-RateLimit-Remaining"] == "0" and headers["X-RateLimit-Limit"] == "1"
        status, body, headers = await call(http, "POST", path, {"content": "two"})
        assert status == 429 and body["global"] is False and body["retry_after"] > 0
        assert headers["X-RateLimit-Scope"] == "user" and headers["X-RateLimit-Bucket"] and "Retry-After" in headers
        assert float(headers["X-RateLimit-Reset-After"]) > 0 and float(headers["X-RateLimit-Reset"]) > 0

        fake.global_rate_limit_next = 1
        status, body, headers = await call(http, "GET", "users/@me")
        assert status == 429 and body["global"] is True
        assert headers["X-RateLimit-Global"] == "true" and headers["X-RateLimit-Scope"] == "global"
        status, _, _ = await call(http, "GET", "users/@me")
    assert status == 200


async def test_interaction_callbacks_have_a_deadline_and_only_one_is_accepted():
    async with served(callback_deadline=0.3) as (fake, http):
        await register(fake, http)
        late = await fake.slash("ask", {"question": "q"})
        await asyncio.sleep(0.5)
        status, error, _ = await call(http, "POST", f"interactions/{late['id']}/{late['token']}/callback", {"type": 5})
        assert (status, error["code"], error["message"]) == (404, 10062, "Unknown interaction")

        ok = await fake.slash("ask", {"question": "q"})
        status, _, _ = await call(http, "POST", f"interactions/{ok['id']}/{ok['token']}/callback", {"type": 5})
        assert status == 204
        status, error, _ = await call(http, "POST", f"interactions/{ok['id']}/{ok['token']}/callback", {"type": 5})
        assert (status, error["code"]) == (400, 40060)
        status, error, _ = await call(http, "POST", f"interactions/{ok['id']}/wrong-token/callback", {"type": 5})
        assert (status, error["code"]) == (404, 10062)
        status, error, _ = await call(http, "POST", f"interactions/{ok['id']}/{ok['token']}/callback",
                                      {"type": 6})  # a deferred update is for components only
        assert status == 400


async def test_the_first_follow_up_after_a_public_deferral_edits_it_and_stays_public():
    async with served() as (fake, http):
        await register(fake, http)
        asked = await fake.slash("ask", {"question": "q"})
        webhook = f"webhooks/{fake.application_id}/{asked['token']}"
        status, error, _ = await call(http, "POST", webhook, {"content": "too early"})
        assert (status, error["code"]) == (404, 10015)  # no follow-up before the interaction is acknowledged
        await call(http, "POST", f"interactions/{asked['id']}/{asked['token']}/callback", {"type": 5})
        status, first, _ = await call(http, "POST", webhook, {"content": "meant to be private", "flags": EPHEMERAL})
        assert status == 200
        status, second, _ = await call(http, "POST", webhook, {"content": "really private", "flags": EPHEMERAL})
        assert status == 200
    original, followup = fake.replies(asked)
    assert first["id"] == original["id"] and original["content"] == "meant to be private"
    assert not original["flags"] & EPHEMERAL  # the deferral was public, so is the edit
    assert followup["id"] == second["id"] and followup["flags"] & EPHEMERAL


async def test_an_interaction_token_expires_for_follow_ups():
    async with served(token_lifetime=0.3) as (fake, http):
        await register(fake, http)
        asked = await fake.slash("ask", {"question": "q"})
        await call(http, "POST", f"interactions/{asked['id']}/{asked['token']}/callback", {"type": 5})
        await asyncio.sleep(0.5)
        status, error, _ = await call(http, "POST", f"webhooks/{fake.application_id}/{asked['token']}", {"content": "late"})
    assert (status, error["code"]) == (401, 50027)


async def register(fake, http, *, guild: str | None = None):
    path = f"applications/{fake.application_id}" + (f"/guilds/{guild}" if guild else "") + "/commands"
    return await call(http, "PUT", path, [{"name": "ask", "description": "Ask", "type": 1, "default_member_permissions": 32,
                                           "options": [{"type": 3, "name": "question", "description": "q", "required": True}]}])


async def test_only_registered_commands_can_be_run_with_their_registered_options():
    async with served() as (fake, http):
        with pytest.raises(NotRegistered):
            await fake.slash("ask", {"question": "q"})
        status, commands, _ = await register(fake, http)
        assert status == 200 and commands[0]["id"] and commands[0]["default_member_permissions"] == "32"
        status, listed, _ = await call(http, "GET", f"applications/{fake.application_id}/commands")
        assert listed == commands
        assert (await fake.slash("ask", {"question": "q"}))["data"]["id"] == commands[0]["id"]
        with pytest.raises(NotRegistered):
            await fake.slash("ask", {"question": "q", "private": True})  # not in the registered definition
        with pytest.raises(NotRegistered):
            await fake.slash("ask", {})  # a required option missing

        status, error, _ = await call(http, "PUT", f"applications/{fake.application_id}/commands",
                                      [{"name": "Ask", "description": "capitals are refused", "type": 1}])
        assert (status, error["code"]) == (400, 50035)
        status, error, _ = await call(http, "PUT", f"applications/{fake.application_id}/commands", [
            {"name": "ask", "description": "d", "options": [{"type": 3, "name": "a", "description": "d"},
                                                           {"type": 3, "name": "b", "description": "d", "required": True}]}])
        assert (status, error["code"]) == (400, 50035)  # required options first

        fake.guilds_without_commands_scope.add(fake.guild_id)
        status, error, _ = await register(fake, http, guild=fake.guild_id)
    assert (status, error["code"]) == (403, 50001)


@contextlib.asynccontextmanager
async def gateway(fake, *, intents: int = DEFAULT_INTENTS, shard=None, compress: bool = False, identify: bool = True):
    query = "?v=10&encoding=json" + ("&compress=zlib-stream" if compress else "")
    async with aiohttp.ClientSession() as http, http.ws_connect(fake.url + "/gateway" + query) as socket:
        socket.inflate = zlib.decompressobj() if compress else None
        hello = await receive(socket)
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
        if identify:
            await socket.send_json({"op": 2, "d": {"token": "fake-token", "intents": intents, "properties": {},
                                                   **({"shard": shard} if shard else {})}})
        yield socket


async def receive(socket) -> dict:
    message = await socket.receive(timeout=5)
    if message.type == aiohttp.WSMsgType.BINARY:
        assert socket.inflate is not None and message.data.endswith(b"\x00\x00\xff\xff")
        return json.loads(socket.inflate.decompress(message.data))
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


async def next_event(socket, name: str) -> dict:
    while True:
        payload = await receive(socket)
        if payload.get("t") == name:
            return payload["d"]


async def test_the_gateway_compresses_when_asked_and_routes_the_guild_to_its_shard():
    async with served() as (fake, http):
        async with gateway(fake, compress=True, identify=False) as socket:
            await socket.send_json({"op": 1, "d": None})
            assert (await receive(socket))["op"] == 11  # the heartbeat ACK came compressed, through the same context
        home = shard_of(fake.guild_id, 2)
        async with gateway(fake, shard=[home, 2]) as mine, gateway(fake, shard=[1 - home, 2]) as other:
            assert (await next_event(mine, "READY"))["guilds"][0]["id"] == fake.guild_id
            assert (await next_event(other, "READY"))["guilds"] == []
            await next_event(mine, "GUILD_CREATE")
            await fake.user_message("hello")
            assert (await next_event(mine, "MESSAGE_CREATE"))["content"] == "hello"
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(next_event(other, "MESSAGE_CREATE"), 0.5)


@pytest.mark.parametrize(("identify", "close_code"), [
    ({"intents": GUILDS | GUILD_MEMBERS}, 4014),  # a privileged intent the app hasn't enabled
    ({"intents": 1 << 30}, 4013),  # no such intent
    ({"intents": GUILDS, "shard": [2, 2]}, 4010),
])
async def test_the_gateway_closes_on_what_discord_closes_on(identify, close_code):
    async with served() as (fake, http):
        async with gateway(fake, identify=False) as socket:
            await socket.send_json({"op": 2, "d": {"token": "fake-token", "properties": {}, **identify}})
            message = await socket.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.CLOSE and message.data == close_code


async def test_without_the_message_content_intent_only_mentions_carry_content():
    async with served() as (fake, http):
        async with gateway(fake, intents=GUILDS | GUILD_MESSAGES) as socket:
            await next_event(socket, "GUILD_CREATE")
            await fake.user_message("not for the bot")
            assert (await next_event(socket, "MESSAGE_CREATE"))["content"] == ""
            await fake.user_message(f"<@{fake.bot_user['id']}> for the bot", mentions_bot=True)
            assert (await next_event(socket, "MESSAGE_CREATE"))["content"].endswith("for the bot")
        async with gateway(fake, intents=GUILDS) as socket:  # no GUILD_MESSAGES: no message events at all
            await next_event(socket, "GUILD_CREATE")
            await fake.user_message("unseen")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(next_event(socket, "MESSAGE_CREATE"), 0.5)
