"""The real discord.py client against a loopback fake Discord, answering from the real engine."""

import asyncio
import contextlib

import discord
import pytest
import yarl

from bot.client import APOLOGY, BotConfig, FirstReplyBot
from engine.client import EngineClient
from fakes.discord import FRAMES, FakeDiscord
from fakes.server import serve

pytestmark = pytest.mark.skipif(not FRAMES.is_dir(), reason="../shared/fixtures/discord is absent")

QUESTION = "How do I zoom the camera in?"


@contextlib.asynccontextmanager
async def running(answerer, config: BotConfig | None = None):
    fake = FakeDiscord()
    async with serve(fake.app()) as url:
        fake.url = url
        base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = f"{url}/api/v10"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url.replace("http://", "ws://") + "/gateway")
        bot = FirstReplyBot(answerer, config or BotConfig())
        task = asyncio.create_task(bot.start("fake-token"))
        try:
            await asyncio.wait_for(bot.wait_until_ready(), 30)
            yield fake, bot
        finally:
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


def posts_to(fake, channel_id):
    return [r for r in fake.sent("POST", f"/channels/{channel_id}/messages") if r.json and "content" in r.json]


async def test_a_mention_gets_a_thread_and_a_cited_reply_that_pings_nobody(make_engine):
    async with make_engine() as engine, running(engine) as (fake, bot):
        assert fake.identify_payloads[0]["token"] == "fake-token"
        question = await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        await fake.wait_for(lambda: any("**Sources**" in (r.json or {}).get("content", "") for r in fake.requests))
        [thread_call] = fake.sent("POST", f"/channels/{fake.text_channel}/messages/{question['id']}/threads")
        assert thread_call.json["name"] == QUESTION
        thread_id = next(r.path.split("/")[2] for r in fake.requests if r.path.endswith("/typing"))
        [reply] = posts_to(fake, thread_id)
        body = reply.json
        assert "scene.zoom(2)" in body["content"] and "**Sources**" in body["content"]
        assert "(<https://github.com/org/tinyviz/blob/v0.3.0/docs/guide/camera.rst#L" in body["content"]
        assert body["allowed_mentions"] == {"parse": []}
        assert body["flags"] & 4  # SUPPRESS_EMBEDS: no link previews
        custom_ids = [c["custom_id"] for row in body["components"] for c in row["components"]]
        assert [cid.rsplit(":", 1)[0] for cid in custom_ids] == ["fr:vote:up", "fr:vote:down", "fr:escalate"]


async def test_messages_not_for_the_bot_are_ignored(make_engine):
    async with make_engine() as engine, running(engine) as (fake, bot):
        await fake.user_message(QUESTION)  # not a help channel, no mention
        await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True, bot_author=True)
        await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True, author_id=fake.bot_user["id"])
        await asyncio.sleep(1.0)
        assert not fake.sent("POST", "/messages")
        assert await engine.store.count_answers() == 0


async def test_help_channel_messages_are_answered_without_a_mention(make_engine):
    async with make_engine() as engine:
        config = BotConfig(help_channels=frozenset({int(FakeDiscord().text_channel)}))
        async with running(engine, config) as (fake, bot):
            await fake.user_message(QUESTION)
            await fake.wait_for(lambda: any("scene.zoom" in (r.json or {}).get("content", "") for r in fake.requests))
        assert await engine.store.count_answers() == 1


async def test_the_bot_apologises_and_keeps_running_when_the_engine_is_down():
    async with EngineClient("http://127.0.0.1:9", timeout=2) as unreachable, running(unreachable) as (fake, bot):
        await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        await fake.wait_for(lambda: any((r.json or {}).get("content") == APOLOGY for r in fake.requests))
        assert not bot.is_closed()


async def test_a_discord_429_is_waited_out_and_the_reply_still_arrives(make_engine):
    async with make_engine() as engine, running(engine) as (fake, bot):
        fake.rate_limit_next = 1
        await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        def replies():
            return [r for r in fake.requests if r.method == "POST" and r.path.endswith("/messages") and r.json]

        await fake.wait_for(lambda: len(replies()) == 2)
        first, second = replies()
        assert "scene.zoom" in second.json["content"]
        assert {**first.json, "nonce": None} == {**second.json, "nonce": None}  # the same message, sent again after retry_after
