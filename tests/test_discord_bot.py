"""The real discord.py client against a loopback fake Discord, answering from the real engine."""

import asyncio
import contextlib

import discord
import pytest
import yarl
from fakes.discord import FRAMES, FakeDiscord
from fakes.server import serve

from bot.client import APOLOGY, BotConfig, FirstReplyBot
from engine.client import EngineClient

pytestmark = pytest.mark.skipif(not FRAMES.is_dir(), reason="../shared/fixtures/discord is absent")

QUESTION = "How do I zoom the camera in?"


class AnswererDouble:
    """The admin half of the protocol for test answerers that only script answers (thread state kept in memory)."""

    def __init__(self):
        self.answered_threads, self.escalated_threads = set(), set()

    async def feedback(self, *args):
        return True

    async def discord_thread(self, thread_id):
        return {"answered": thread_id in self.answered_threads, "escalated": thread_id in self.escalated_threads}

    async def mark_discord_thread_answered(self, thread_id):
        self.answered_threads.add(thread_id)

    async def escalate_discord_thread(self, thread_id):
        first = thread_id not in self.escalated_threads
        self.escalated_threads.add(thread_id)
        return first

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
    async with make_engine() as engine, running(engine, BotConfig(maintainer_role=900000000000000005)) as (fake, bot):
        assert fake.identify_payloads[0]["token"] == "fake-token"
        assert all(session.deflate is not None for session in fake.sessions)  # discord.py asked for zlib-stream
        intents = fake.identify_payloads[0]["intents"]
        assert intents & (1 << 15) and intents & (1 << 9)  # message content, guild messages
        question = await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        await fake.wait_for(lambda: any("**Sources**" in r.body.get("content", "") for r in fake.requests))
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
            await fake.wait_for(lambda: any("scene.zoom" in r.body.get("content", "") for r in fake.requests))
        assert await engine.store.count_answers() == 1


async def test_the_bot_apologises_and_keeps_running_when_the_engine_is_down():
    async with EngineClient("http://127.0.0.1:9", timeout=2) as unreachable, running(unreachable) as (fake, bot):
        await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        await fake.wait_for(lambda: any(r.body.get("content") == APOLOGY for r in fake.requests))
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
    await fake.wait_for(lambda: any("**Sources**" in r.body.get("content", "") for r in fake.requests))
    reply = next(r for r in fake.requests if "**Sources**" in r.body.get("content", ""))
    thread_id = reply.path.split("/")[2]
    message = next(m for m in fake.bot_messages(thread_id) if m["components"])
    ids = [c["custom_id"] for row in message["components"] for c in row["components"]]
    return thread_id, message, ids


async def test_thumbs_up_then_down_by_one_user_leaves_one_vote_and_buttons_survive_a_restart(make_engine):
    async with make_engine() as engine:
        async with running(engine) as (fake, bot):
            thread_id, message, (up, down) = await ask_and_get_reply(fake)  # no maintainer role: no escalation
            answer_id = up.rsplit(":", 1)[1]
            first = await fake.click(up, message=message, user_id="111")
            await fake.wait_for(lambda: fake.replies(first))
            second = await fake.click(down, message=message, user_id="111")
            await fake.wait_for(lambda: fake.replies(second))
            [reply] = fake.replies(second)
            assert reply["flags"] & 64 and "Thanks" in reply["content"]  # only the voter sees it
        assert await engine.store.votes(answer_id) == {"up": 0, "down": 1}

        async with running(engine, fake=fake) as (fake, bot):  # a new process: nothing in memory but the custom id
            later = await fake.click(up, message=message, user_id="222")
            await fake.wait_for(lambda: fake.replies(later))
        assert await engine.store.votes(answer_id) == {"up": 1, "down": 1}


async def test_thumbs_down_offers_a_comment_modal_and_the_comment_reaches_the_review(make_engine):
    async with make_engine() as engine:
        async with running(engine) as (fake, bot):
            _, message, (up, down, *_) = await ask_and_get_reply(fake)  # no maintainer role: no third button
            answer_id = down.rsplit(":", 1)[1]
            thumbs_up = await fake.click(up, message=message, user_id="111")
            await fake.wait_for(lambda: fake.replies(thumbs_up))
            assert not fake.replies(thumbs_up)[0].get("components")  # a 👍 asks nothing more
            vote = await fake.click(down, message=message, user_id="111")
            await fake.wait_for(lambda: fake.replies(vote))
            [thanks] = fake.replies(vote)
            assert thanks["flags"] & 64 and thanks["content"] == "Thanks for the feedback!"
            [[button]] = [row["components"] for row in thanks["components"]]
            assert (button["label"], button["custom_id"]) == ("Say what was wrong", f"fr:comment:{answer_id}")

            opened = await fake.click(button["custom_id"], message=thanks, user_id="111")
            await fake.wait_for(lambda: fake.modal(opened))
            modal = fake.modal(opened)
            assert modal["title"] == "What was wrong?" and modal["custom_id"] == f"fr:commentform:{answer_id}"
            with pytest.raises(ValueError):  # Discord's client sends no empty required field, nor one too long
                await fake.submit_modal(opened, {"What was wrong or missing?": "x" * 2001}, user_id="111")
            sent = await fake.submit_modal(opened, {"What was wrong or missing?": "It should say scene.magnify."},
                                           user_id="111")
            await fake.wait_for(lambda: fake.replies(sent) and "Thanks" in fake.replies(sent)[-1]["content"])
            assert fake.replies(sent)[-1]["flags"] & 64
        assert await engine.store.votes(answer_id) == {"up": 0, "down": 1}  # the same one vote, now with its comment
        detail = await engine.review_service.detail(answer_id)
        assert [(v.vote, v.comment) for v in detail["votes"]] == [(-1, "It should say scene.magnify.")]


async def test_ask_a_maintainer_pings_the_role_once_per_thread(make_engine):
    role = 900000000000000005
    async with make_engine() as engine, running(engine, BotConfig(maintainer_role=role)) as (fake, bot):
        thread_id, message, (_, _, escalate) = await ask_and_get_reply(fake)
        first = await fake.click(escalate, message=message)
        await fake.wait_for(lambda: fake.replies(first))
        again = await fake.click(escalate, message=message, user_id="333")
        await fake.wait_for(lambda: fake.replies(again))
    [ping] = fake.replies(first)
    assert ping["content"].startswith(f"<@&{role}>") and not ping["flags"] & 64
    [sent] = fake.followups(first)
    assert sent.json["allowed_mentions"]["parse"] == []  # no @everyone, no users
    assert [int(r) for r in sent.json["allowed_mentions"]["roles"]] == [role]  # only the maintainer role
    [repeat] = fake.replies(again)
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
        await fake.wait_for(lambda: any("**Sources**" in r.body.get("content", "") for r in fake.requests))
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
            await fake.wait_for(lambda: any("scene.zoom" in r.body.get("content", "") for r in fake.requests), 60)
        finally:
            good.terminate()
            await asyncio.wait_for(good.wait(), 30)


async def test_serve_starts_the_bot_when_a_token_is_set_and_refuses_a_bad_one(make_engine):
    from engine.config import ConfigError
    from firstreply.serve import build_app

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
                await fake.wait_for(lambda: any("scene.zoom" in r.body.get("content", "") for r in fake.requests))
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
            await fake.wait_for(lambda: any("**Sources**" in r.body.get("content", "") for r in fake.requests))
            await fake.user_message("How do I zoom out?")
            await fake.wait_for(lambda: any("faster than I can keep up" in r.body.get("content", "") for r in fake.requests))
        assert await engine.store.count_answers() == 1


async def test_a_model_writing_everyone_pings_nobody(make_engine):
    from engine.answer.model import Answer

    class Mischief(AnswererDouble):
        async def answer(self, question):
            return Answer(text="@everyone @here <@&900000000000000005> <@900000000000000002> look at this", id="m-1")

    async with running(Mischief()) as (fake, bot):
        await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        await fake.wait_for(lambda: any("look at this" in r.body.get("content", "") for r in fake.requests))
    [reply] = [r.json for r in fake.requests if "look at this" in r.body.get("content", "")]
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
            await fake.wait_for(lambda: any("scene.zoom" in r.body.get("content", "") for r in fake.requests))
            assert not fake.sent("POST", "/threads")  # thread mode off: answered in the channel,
            [answer] = [r for r in posts_to(fake, fake.text_channel) if "scene.zoom" in r.json["content"]]
            assert str(answer.json["message_reference"]["message_id"]) == asked["id"]  # as a reply to the question


async def test_the_sharded_bot_answers_the_same_way(make_engine):
    """FIRSTREPLY_DISCORD_SHARD_COUNT makes the bot an AutoShardedClient; the gateway sees the shard in IDENTIFY."""
    from fakes.discord import shard_of

    from bot.client import ShardedFirstReplyBot

    async with make_engine() as engine, running(engine, bot_class=ShardedFirstReplyBot, shard_count=2) as (fake, bot):
        assert isinstance(bot, discord.AutoShardedClient) and bot.shard_count == 2
        assert sorted(p["shard"] for p in fake.identify_payloads) == [[0, 2], [1, 2]]
        assert bot.get_guild(int(fake.guild_id)).shard_id == shard_of(fake.guild_id, 2)  # the fake routed it there
        await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        await fake.wait_for(lambda: any("**Sources**" in r.body.get("content", "") for r in fake.requests))


# -- what the real Discord refuses (issue 14): each of these failed against the strict fake before the fix ------------

from fakes.discord import EPHEMERAL  # noqa: E402

from engine.answer.model import Answer, Citation  # noqa: E402
from engine.client import EngineError, EngineUnavailable  # noqa: E402


class Scripted(AnswererDouble):
    """Answers every question the same way, with an answer id (so the buttons come with it)."""

    def __init__(self, fail_first: BaseException | None = None):
        super().__init__()
        self.fail_first, self.asked = fail_first, 0

    async def answer(self, question):
        self.asked += 1
        if self.fail_first is not None and self.asked == 1:
            raise self.fail_first
        return Answer(text=f"Use `scene.zoom(2)` [1]. (answer {self.asked})", id=f"a-{self.asked}",
                      citations=[Citation(1, "Camera", "https://x.test/camera", "docs/camera.rst")])


def public(replies):
    return [m for m in replies if not m["flags"] & EPHEMERAL]


def private(replies):
    return [m for m in replies if m["flags"] & EPHEMERAL]


async def answered_message(fake, channel_id):
    """The bot's answer (the message with the buttons) in a channel, once it is there."""
    await fake.wait_for(lambda: any(m["components"] for m in fake.bot_messages(channel_id)))
    return next(m for m in fake.bot_messages(channel_id) if m["components"])


# 1. slash commands are registered -----------------------------------------------------------------------------

async def test_slash_commands_are_registered_globally_at_start_and_again_only_when_they_changed(caplog):
    fake = FakeDiscord()
    with caplog.at_level("INFO", logger="bot"):
        async with running(Scripted(), fake=fake):
            pass
    assert sorted(c["name"] for c in fake.commands[None]) == ["ask", "firstreply"]
    assert len(fake.sent("PUT", f"/applications/{fake.application_id}/commands")) == 1
    [line] = [r.getMessage() for r in caplog.records if "slash commands" in r.getMessage()]
    assert "/ask" in line and "/firstreply" in line and "globally" in line

    async with running(Scripted(), fake=fake):  # restarted, nothing changed: compared, not overwritten
        pass
    assert len(fake.sent("PUT", f"/applications/{fake.application_id}/commands")) == 1
    assert len(fake.sent("GET", f"/applications/{fake.application_id}/commands")) == 2

    fake.commands[None][0]["description"] = "an older description"  # what an older release registered
    async with running(Scripted(), fake=fake) as (_, bot):
        asked = await fake.slash("ask", {"question": QUESTION})
        await fake.wait_for(lambda: fake.followups(asked))
    assert len(fake.sent("PUT", f"/applications/{fake.application_id}/commands")) == 2
    assert next(c for c in fake.commands[None] if c["name"] == "ask")["description"] == "Ask a question about the project"


async def test_with_guild_ids_the_commands_are_registered_in_those_guilds_only():
    fake = FakeDiscord()
    async with running(Scripted(), BotConfig(command_guilds=frozenset({int(fake.guild_id)})), fake=fake):
        asked = await fake.slash("ask", {"question": QUESTION})
        await fake.wait_for(lambda: fake.followups(asked))
    assert sorted(c["name"] for c in fake.commands[fake.guild_id]) == ["ask", "firstreply"]
    assert fake.commands[None] == [] and not fake.sent("PUT", f"/applications/{fake.application_id}/commands")


async def test_a_guild_without_the_applications_commands_scope_is_one_clear_error_and_the_bot_runs_on(caplog):
    fake = FakeDiscord()
    fake.guilds_without_commands_scope.add(fake.guild_id)
    with caplog.at_level("INFO", logger="bot"):
        async with running(Scripted(), BotConfig(command_guilds=frozenset({int(fake.guild_id)})), fake=fake):
            await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
            await fake.wait_for(lambda: any("scene.zoom" in m["content"] for c in list(fake.channels)
                                            for m in fake.bot_messages(c)))
    [error] = [r for r in caplog.records if r.levelname == "ERROR"]
    message = error.getMessage()
    assert "\n" not in message and error.exc_info is None
    assert "applications.commands" in message and fake.guild_id in message
    assert f"https://discord.com/oauth2/authorize?client_id={fake.application_id}" in message
    assert "scope=bot+applications.commands" in message


# 2. any failure while answering: one kind apology, a log line, the bot runs on ------------------------------

async def test_any_error_while_answering_a_message_gets_an_apology_and_the_bot_answers_the_next(caplog):
    import sqlite3

    answerer = Scripted(fail_first=sqlite3.OperationalError("database is locked"))
    with caplog.at_level("INFO", logger="bot"):
        async with running(answerer) as (fake, bot):
            first = await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
            await fake.wait_for(lambda: any(m["content"] == APOLOGY for m in fake.bot_messages(first["id"])))
            second = await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
            await answered_message(fake, second["id"])
    assert "database is locked" not in APOLOGY and len(APOLOGY) < 120
    logged = [r for r in caplog.records if f"discord-{first['id']}" in r.getMessage()]
    assert logged and logged[-1].levelname == "ERROR" and logged[-1].exc_info  # the detail goes to the log


async def test_any_error_in_a_slash_command_gets_a_private_apology_without_detail():
    class Broken(Scripted):
        async def status(self):
            raise RuntimeError("secret detail: connection string postgres://user:pw@db")

    async with running(Broken(fail_first=KeyError("boom"))) as (fake, bot):
        asked = await fake.slash("ask", {"question": QUESTION, "private": True})
        status = await fake.slash("firstreply", {}, subcommand="status")
        await fake.wait_for(lambda: any(APOLOGY in m["content"] for m in fake.replies(asked))
                            and any(APOLOGY in m["content"] for m in fake.replies(status)))
        assert not bot.is_closed()
    for interaction in (asked, status):
        replies = fake.replies(interaction)
        assert public(replies) == [] and [m["content"] for m in replies] == [APOLOGY]


# 3. buttons acknowledge first, then record, then follow up ------------------------------------------------------

async def test_a_vote_with_a_slow_engine_is_acknowledged_within_discord_s_deadline():
    class Slow(Scripted):
        async def feedback(self, *args):
            await asyncio.sleep(2.5)
            return True

    fake = FakeDiscord(callback_deadline=1.5)  # Discord's 3 s, shortened: the engine takes longer than the deadline
    async with running(Slow(), fake=fake):
        question = await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        message = await answered_message(fake, question["id"])
        click = await fake.click(message["components"][0]["components"][0]["custom_id"], message=message)
        await fake.wait_for(lambda: fake.replies(click), 30)
    assert [c.status for c in fake.callbacks(click)] == [200]  # acknowledged in time, once
    assert [m["content"] for m in fake.replies(click)] == ["Thanks for the feedback!"]
    assert private(fake.replies(click))


async def test_a_vote_the_engine_fails_to_store_still_gets_a_response():
    class Failing(Scripted):
        async def feedback(self, *args):
            raise EngineError(500, "something went wrong on our side")

    async with running(Failing()) as (fake, bot):
        question = await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        message = await answered_message(fake, question["id"])
        click = await fake.click(message["components"][0]["components"][1]["custom_id"], message=message)
        await fake.wait_for(lambda: fake.replies(click))
    assert [(m["content"], bool(m["flags"] & EPHEMERAL)) for m in fake.replies(click)] == [(APOLOGY, True)]


async def test_a_comment_the_engine_fails_to_store_gets_a_private_apology():
    class FailingComments(Scripted):
        async def feedback(self, answer_id, user_id, vote, comment=None):
            if comment is not None:
                raise EngineError(500, "something went wrong on our side")
            return True

    async with running(FailingComments()) as (fake, bot):
        question = await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        message = await answered_message(fake, question["id"])
        vote = await fake.click(message["components"][0]["components"][1]["custom_id"], message=message, user_id="111")
        await fake.wait_for(lambda: fake.replies(vote))
        [[button]] = [row["components"] for row in fake.replies(vote)[0]["components"]]
        opened = await fake.click(button["custom_id"], message=fake.replies(vote)[0], user_id="111")
        await fake.wait_for(lambda: fake.modal(opened))
        sent = await fake.submit_modal(opened, {"What was wrong or missing?": "Wrong method."}, user_id="111")
        await fake.wait_for(lambda: fake.replies(sent))
    assert [(m["content"], bool(m["flags"] & EPHEMERAL)) for m in fake.replies(sent)] == [(APOLOGY, True)]


# 4. what is meant to be private stays private --------------------------------------------------------------------

async def test_an_apology_after_a_public_ask_is_shown_only_to_the_asker():
    async with running(Scripted(fail_first=EngineUnavailable("can't reach the engine"))) as (fake, bot):
        asked = await fake.slash("ask", {"question": QUESTION})
        await fake.wait_for(lambda: any(m["content"] == APOLOGY for m in fake.replies(asked)))
    replies = fake.replies(asked)
    assert not any("Sorry" in m["content"] or "can't" in m["content"] for m in public(replies))
    assert [m["content"] for m in private(replies)] == [APOLOGY]
    assert all(not m["flags"] & 128 for m in replies)  # nobody is left looking at "thinking…"


async def test_the_rate_limit_notice_for_ask_is_shown_only_to_the_asker():
    async with running(Scripted(), BotConfig(user_questions_per_minute=1)) as (fake, bot):
        first = await fake.slash("ask", {"question": QUESTION})
        await fake.wait_for(lambda: fake.followups(first))
        second = await fake.slash("ask", {"question": QUESTION})
        await fake.wait_for(lambda: fake.replies(second) and not fake.replies(second)[0]["flags"] & 128)
    [notice] = fake.replies(second)
    assert "faster than I can keep up" in notice["content"] and notice["flags"] & EPHEMERAL


# 5. an answer to a question deleted meanwhile is still posted ----------------------------------------------------

async def test_an_answer_to_a_deleted_question_is_posted_anyway():
    class Gated(Scripted):
        def __init__(self):
            super().__init__()
            self.asked_event, self.go = asyncio.Event(), asyncio.Event()

        async def answer(self, question):
            self.asked_event.set()
            await self.go.wait()
            return await super().answer(question)

    answerer = Gated()
    config = BotConfig(thread_mode=False)
    async with running(answerer, config) as (fake, bot):
        question = await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        await asyncio.wait_for(answerer.asked_event.wait(), 20)
        await fake.delete_message(question["id"])  # the asker deleted the question while the bot was thinking
        answerer.go.set()
        message = await answered_message(fake, fake.text_channel)
    assert "scene.zoom" in message["content"] and "message_reference" not in message


# 6. answered threads and escalations are kept in the engine's database ---------------------------------------------

async def test_answered_threads_and_escalations_survive_a_restart(make_engine):
    role = 900000000000000005
    fake = FakeDiscord()
    config = BotConfig(maintainer_role=role, forum_channels=frozenset({int(fake.forum_channel)}))
    async with make_engine() as engine:
        async with running(engine, config, fake=fake):
            thread = await fake.forum_post("Zooming the camera", "It only shows a small part of my scene, how can I zoom?")
            message = await answered_message(fake, thread["id"])
            escalate = message["components"][0]["components"][2]["custom_id"]
            first = await fake.click(escalate, message=message)
            await fake.wait_for(lambda: fake.replies(first))
        [ping] = fake.replies(first)
        assert ping["content"].startswith(f"<@&{role}>") and not ping["flags"] & EPHEMERAL

        async with running(engine, config, fake=fake):  # a new process: nothing in memory
            await fake.user_message("and how do I zoom out again?", channel_id=thread["id"])  # no mention
            await fake.wait_for(lambda: len([m for m in fake.bot_messages(thread["id"]) if m["components"]]) == 2)
            again = await fake.click(escalate, message=message, user_id="333")
            await fake.wait_for(lambda: fake.replies(again))
        [repeat] = fake.replies(again)
        assert "already" in repeat["content"] and repeat["flags"] & EPHEMERAL and "<@&" not in repeat["content"]
        assert await engine.discord_thread(thread["id"]) == {"answered": True, "escalated": True}


async def test_a_global_429_and_a_tight_bucket_are_waited_out_and_the_answer_arrives():
    class Wordy(Scripted):
        async def answer(self, question):
            return Answer(text="\n\n".join(["Zooming, explained at length. " * 60] * 4), id="a-long",
                          citations=[Citation(1, "Camera", "https://x.test/camera", "docs/camera.rst")])

    fake = FakeDiscord(route_limit=2, route_window=1.0)  # two posts a second per channel
    async with running(Wordy(), BotConfig(thread_mode=False), fake=fake):
        fake.global_rate_limit_next = 1
        await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTION}", mentions_bot=True)
        await answered_message(fake, fake.text_channel)
    posts = [r for r in fake.sent("POST", f"/channels/{fake.text_channel}/messages") if r.body.get("content")]
    delivered = [r for r in posts if r.status == 200]
    assert len(delivered) >= 4 and "**Sources**" in delivered[-1].body["content"]
    assert [r.status for r in fake.requests].count(429) == 1  # only the forced global one: the bot read the buckets
    assert all(r.status == 200 for r in posts)
