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


class AnswererDouble:
    """The admin half of the protocol for test answerers that only script answers."""

    async def feedback(self, *args):
        return True

    async def status(self):
        return {"kb": "none", "index_chunks": 0, "model": "double", "providers": ["double"], "answers": 0}

    async def channel_settings(self, platform):
        return {}

    async def set_channel_settings(self, platform, channel_id, changes, by=None):
        return changes


@contextlib.asynccontextmanager
async def running(answerer, config: BotConfig | None = None, bot_class=FirstReplyBot, *, fake: FakeDiscord | None = None,
                  **options):
    """The bot connected to a fake Discord (a new one, or ``fake``: Discord keeps its state while the bot restarts)."""
    fake = fake or FakeDiscord()
    async with serve(fake.app()) as url:
        fake.url = url
        base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = f"{url}/api/v10"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url.replace("http://", "ws://") + "/gateway")
        bot = bot_class(answerer, config or BotConfig(), metrics=getattr(answerer, "metrics", None), **options)
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
        answer_id = custom_ids[0].rsplit(":", 1)[1]
        record = await engine.store.answer(answer_id)  # reviewers can jump to the question
        assert record.link == f"https://discord.com/channels/{fake.guild_id}/{fake.text_channel}/{question['id']}"
        assert 'firstreply_discord_events_total{event="message_answered"} 1.0' in engine.metrics.render().decode()


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


async def ask_and_get_reply(fake):
    await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
    await fake.wait_for(lambda: any("**Sources**" in (r.json or {}).get("content", "") for r in fake.requests))
    reply = next(r for r in fake.requests if "**Sources**" in (r.json or {}).get("content", ""))
    thread_id = reply.path.split("/")[2]
    message = next(m for m in fake.bot_messages(thread_id) if m["components"])
    ids = [c["custom_id"] for row in message["components"] for c in row["components"]]
    return thread_id, message, ids


async def test_thumbs_up_then_down_by_one_user_leaves_one_vote_and_buttons_survive_a_restart(make_engine):
    async with make_engine() as engine:
        async with running(engine) as (fake, bot):
            thread_id, message, (up, down, _) = await ask_and_get_reply(fake)
            answer_id = up.rsplit(":", 1)[1]
            first = await fake.click(up, message=message, user_id="111")
            await fake.wait_for(lambda: fake.callbacks(first))
            second = await fake.click(down, message=message, user_id="111")
            await fake.wait_for(lambda: fake.callbacks(second))
            reply = fake.callbacks(second)[0].json
            assert reply["type"] == 4 and reply["data"]["flags"] & 64 and "Thanks" in reply["data"]["content"]
        assert await engine.store.votes(answer_id) == {"up": 0, "down": 1}

        async with running(engine, fake=fake) as (fake, bot):  # a new process: nothing in memory but the custom id
            later = await fake.click(up, message=message, user_id="222")
            await fake.wait_for(lambda: fake.callbacks(later))
        assert await engine.store.votes(answer_id) == {"up": 1, "down": 1}


async def test_ask_a_maintainer_pings_the_role_once_per_thread(make_engine):
    role = 900000000000000005
    async with make_engine() as engine, running(engine, BotConfig(maintainer_role=role)) as (fake, bot):
        thread_id, message, (_, _, escalate) = await ask_and_get_reply(fake)
        first = await fake.click(escalate, message=message)
        await fake.wait_for(lambda: fake.callbacks(first))
        again = await fake.click(escalate, message=message, user_id="333")
        await fake.wait_for(lambda: fake.callbacks(again))
    ping = fake.callbacks(first)[0].json["data"]
    assert ping["content"].startswith(f"<@&{role}>")
    assert ping["allowed_mentions"]["parse"] == []  # no @everyone, no users
    assert [int(r) for r in ping["allowed_mentions"]["roles"]] == [role]  # only the maintainer role
    repeat = fake.callbacks(again)[0].json["data"]
    assert "already" in repeat["content"] and repeat["flags"] & 64 and "<@&" not in repeat["content"]


async def test_follow_ups_in_the_bot_s_thread_need_no_mention_and_keep_the_conversation(make_engine):
    async with make_engine() as engine, running(engine) as (fake, bot):
        thread_id, _, _ = await ask_and_get_reply(fake)
        await fake.user_message("and how do I zoom out again?", channel_id=thread_id)
        await fake.wait_for(lambda: len([r for r in posts_to(fake, thread_id) if "**Sources**" in r.json["content"]]) == 2)
        assert not fake.sent("POST", f"/channels/{thread_id}/messages/")  # no second thread
        assert [t.role for t in await engine.store.history(thread_id)] == ["user", "assistant"] * 2


async def test_a_new_forum_post_gets_a_first_reply_in_its_thread(make_engine):
    async with make_engine() as engine:
        config = BotConfig(forum_channels=frozenset({int(FakeDiscord().forum_channel)}))
        async with running(engine, config) as (fake, bot):
            thread = await fake.forum_post("Zooming the camera", "It only shows a small part of my scene, how can I zoom?")
            await fake.wait_for(lambda: posts_to(fake, thread["id"]))
        [reply] = posts_to(fake, thread["id"])
        assert "scene.zoom" in reply.json["content"] and not fake.sent("POST", "/threads")
        history = await engine.store.history(thread["id"])
        assert history[0].text == "It only shows a small part of my scene, how can I zoom?"


async def test_a_5000_character_answer_arrives_in_several_messages_with_buttons_on_the_last(make_engine):
    from engine.answer.model import Answer, Citation

    class Wordy(AnswererDouble):
        async def answer(self, question):
            code = "```python\n" + "\n".join(f"scene.zoom({i})  # step {i}" for i in range(80)) + "\n```"
            text = "\n\n".join(["A long explanation of zooming. " * 25, code, "More words about cameras. " * 40, code])
            return Answer(text=text, id="a-long-one", citations=[Citation(1, "Camera", "https://x.test/c", "c.rst")])

    async with running(Wordy()) as (fake, bot):
        await fake.user_message(f"<@{fake.bot_user['id']}> explain zoom at length", mentions_bot=True)
        await fake.wait_for(lambda: any("**Sources**" in (r.json or {}).get("content", "") for r in fake.requests))
        thread_id = next(r.path.split("/")[2] for r in fake.requests if r.path.endswith("/typing"))
        replies = [r.json for r in posts_to(fake, thread_id)]
    assert len(replies) >= 3 and all(len(r["content"]) <= 2000 for r in replies)
    assert all(r["allowed_mentions"] == {"parse": []} for r in replies)
    assert [bool(r.get("components")) for r in replies] == [False] * (len(replies) - 1) + [True]
    for reply in replies:
        assert reply["content"].count("```") % 2 == 0


async def test_firstreply_discord_runs_the_bot_and_a_bad_token_is_one_line(indexed_sample, tmp_path):
    import json
    import os
    import sys
    from pathlib import Path

    firstreply = str(Path(sys.executable).with_name("firstreply"))
    fake = FakeDiscord(token="good-token")
    async with serve(fake.app()) as url:
        fake.url = url
        env = {**os.environ, "FIRSTREPLY_DATA_DIR": str(indexed_sample), "FIRSTREPLY_KB": "sample",
               "FIRSTREPLY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
               "FIRSTREPLY_DISCORD_API_BASE": f"{url}/api/v10",
               "FIRSTREPLY_DISCORD_GATEWAY_URL": url.replace("http://", "ws://") + "/gateway",
               "FIRSTREPLY_DISCORD_HELP_CHANNELS": json.dumps([int(fake.text_channel)])}
        bad = await asyncio.create_subprocess_exec(firstreply, "discord", env={**env, "FIRSTREPLY_DISCORD_TOKEN": "stolen"},
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
        _, err = await asyncio.wait_for(bad.communicate(), 120)
        assert bad.returncode == 1
        assert err.decode().strip().splitlines()[-1] == "Error: bad setting FIRSTREPLY_DISCORD_TOKEN: Discord refused the token"
        assert "stolen" not in err.decode()

        good = await asyncio.create_subprocess_exec(firstreply, "discord", env={**env, "FIRSTREPLY_DISCORD_TOKEN": "good-token"},
                                                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, cwd=tmp_path)
        try:
            await asyncio.wait_for(fake.identified.wait(), 120)
            await fake.user_message(QUESTION)
            await fake.wait_for(lambda: any("scene.zoom" in (r.json or {}).get("content", "") for r in fake.requests), 60)
        finally:
            good.terminate()
            await asyncio.wait_for(good.wait(), 30)


async def test_serve_starts_the_bot_when_a_token_is_set_and_refuses_a_bad_one(make_engine):
    from engine.api.app import build_app
    from engine.config import ConfigError

    fake = FakeDiscord(token="good-token")
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        async with serve(fake.app()) as url:
            fake.url = url
            where = dict(discord_api_base=f"{url}/api/v10", discord_gateway_url=url.replace("http://", "ws://") + "/gateway")
            with pytest.raises(ConfigError, match="FIRSTREPLY_DISCORD_TOKEN: Discord refused the token"):
                async with serve(build_app(make_engine(discord_token="wrong", **where))):
                    pass
            engine = make_engine(discord_token="good-token", **where)
            async with serve(build_app(engine)):
                await asyncio.wait_for(fake.identified.wait(), 30)
                await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
                await fake.wait_for(lambda: any("scene.zoom" in (r.json or {}).get("content", "") for r in fake.requests))
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


async def test_slash_ask_is_deferred_at_once_then_answered_privately_when_asked(make_engine):
    async with make_engine() as engine, running(engine) as (fake, bot):
        public = await fake.slash("ask", {"question": QUESTION})
        private = await fake.slash("ask", {"question": QUESTION, "private": True}, user_id="444")
        await fake.wait_for(lambda: fake.followups(public) and fake.followups(private))
    for interaction, ephemeral in ((public, False), (private, True)):
        [defer] = fake.callbacks(interaction)
        assert defer.json["type"] == 5  # deferred: "the bot is thinking"
        assert bool((defer.json.get("data") or {}).get("flags", 0) & 64) is ephemeral
        [answer] = fake.followups(interaction)
        assert "scene.zoom" in answer.json["content"] and answer.json["allowed_mentions"] == {"parse": []}
        assert bool(answer.json["flags"] & 64) is ephemeral
        assert fake.requests.index(defer) < fake.requests.index(answer)


async def test_a_user_asking_too_fast_gets_a_polite_notice(make_engine):
    async with make_engine() as engine:
        config = BotConfig(help_channels=frozenset({int(FakeDiscord().text_channel)}), user_questions_per_minute=1)
        async with running(engine, config) as (fake, bot):
            await fake.user_message(QUESTION)
            await fake.wait_for(lambda: any("**Sources**" in (r.json or {}).get("content", "") for r in fake.requests))
            await fake.user_message("How do I zoom out?")
            await fake.wait_for(lambda: any("faster than I can keep up" in (r.json or {}).get("content", "") for r in fake.requests))
        assert await engine.store.count_answers() == 1


async def test_a_model_writing_everyone_pings_nobody(make_engine):
    from engine.answer.model import Answer

    class Mischief(AnswererDouble):
        async def answer(self, question):
            return Answer(text="@everyone @here <@&900000000000000005> <@900000000000000002> look at this", id="m-1")

    async with running(Mischief()) as (fake, bot):
        await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        await fake.wait_for(lambda: any("look at this" in (r.json or {}).get("content", "") for r in fake.requests))
    [reply] = [r.json for r in fake.requests if "look at this" in (r.json or {}).get("content", "")]
    assert reply["allowed_mentions"] == {"parse": []}  # Discord resolves no mention in this message
    assert "roles" not in reply["allowed_mentions"] and "users" not in reply["allowed_mentions"]


async def test_admins_see_status_and_turn_a_help_channel_on_for_good(make_engine):
    async with make_engine() as engine:
        async with running(engine) as (fake, bot):
            definition = next(c for c in bot.tree.get_commands() if c.name == "firstreply").to_dict(bot.tree)
            assert int(definition["default_member_permissions"]) == discord.Permissions(manage_guild=True).value

            refused = await fake.slash("firstreply", {}, subcommand="status", permissions="0")
            await fake.wait_for(lambda: fake.callbacks(refused))
            assert "manage this server" in fake.callbacks(refused)[0].json["data"]["content"]

            status = await fake.slash("firstreply", {}, subcommand="status")
            await fake.wait_for(lambda: fake.followups(status))
            text = fake.followups(status)[0].json["content"]
            assert "`sample`" in text and "passages" in text and "extractive" in text and "0 answering, 0 waiting" in text

            await fake.user_message(QUESTION)  # not a help channel yet: ignored
            switch = await fake.slash("firstreply", {"help_channel": True, "thread_mode": False}, subcommand="channel")
            await fake.wait_for(lambda: fake.followups(switch))
            assert "help channel **on**" in fake.followups(switch)[0].json["content"]
        assert await engine.channel_settings("discord") == {fake.text_channel: {"help_channel": True, "thread_mode": False}}
        assert await engine.store.count_answers() == 0

        async with running(engine) as (fake, bot):  # restarted: the setting came from the engine's database
            asked = await fake.user_message(QUESTION)
            await fake.wait_for(lambda: any("scene.zoom" in (r.json or {}).get("content", "") for r in fake.requests))
            assert not fake.sent("POST", "/threads")  # thread mode off: answered in the channel,
            [answer] = [r for r in posts_to(fake, fake.text_channel) if "scene.zoom" in r.json["content"]]
            assert str(answer.json["message_reference"]["message_id"]) == asked["id"]  # as a reply to the question


async def test_the_sharded_bot_answers_the_same_way(make_engine):
    """FIRSTREPLY_DISCORD_SHARD_COUNT makes the bot an AutoShardedClient; the gateway sees the shard in IDENTIFY."""
    from bot.client import ShardedFirstReplyBot

    async with make_engine() as engine, running(engine, bot_class=ShardedFirstReplyBot, shard_count=1) as (fake, bot):
        assert isinstance(bot, discord.AutoShardedClient) and bot.shard_count == 1
        assert fake.identify_payloads[0]["shard"] == [0, 1]
        await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        await fake.wait_for(lambda: any("**Sources**" in (r.json or {}).get("content", "") for r in fake.requests))
