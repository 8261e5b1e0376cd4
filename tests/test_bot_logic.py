"""The Discord frontend's pure protocol logic: splitting, sources, mentions, when to answer."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.messages import DISCORD_LIMIT, answer_messages, split_message
from bot.triggers import Incoming, TriggerConfig, decide, strip_mention
from engine.answer.model import Answer, Citation

BOT = 900000000000000018
FENCE_LINE = re.compile(r"^\s*(`{3,}|~{3,})")


def content(text: str) -> str:
    """Everything but whitespace and fence lines: what splitting must neither lose nor invent."""
    return "".join("".join(line.split()) for line in text.split("\n") if not FENCE_LINE.match(line))


def test_a_5000_character_answer_with_code_arrives_split_with_code_blocks_intact():
    prose = "This paragraph explains the next step in some detail. " * 6
    code = "```python\n" + "\n".join(f"scene.add(actor_{i})  # step {i}" for i in range(60)) + "\n```"
    text = "\n\n".join([prose, code, prose, prose, code, prose])
    assert len(text) > 5000
    messages = split_message(text)
    assert len(messages) >= 3 and all(len(m) <= DISCORD_LIMIT for m in messages)
    for message in messages:
        assert len([line for line in message.split("\n") if FENCE_LINE.match(line)]) % 2 == 0
    # code blocks that fit a message are never cut
    whole = [m for m in messages if "scene.add(actor_0)" in m]
    assert all("scene.add(actor_59)" in m for m in whole)
    assert content("\n".join(messages)) == content(text)


def test_a_code_block_longer_than_a_message_is_reopened_with_its_language():
    code = "```ts\n" + "\n".join(f"const value{i} = compute({i});" for i in range(200)) + "\n```"
    messages = split_message(code, limit=500)
    assert len(messages) > 5
    assert all(m.startswith("```ts\n") and m.endswith("\n```") and len(m) <= 500 for m in messages)
    assert content("\n".join(messages)) == content(code)


def test_an_unclosed_fence_is_closed():
    assert split_message("look:\n\n```py\nprint(1)") == ["look:\n\n```py\nprint(1)\n```"]


paragraph = st.lists(st.text(alphabet="abcdefghij .,!?", min_size=1, max_size=30), min_size=1, max_size=40).map(" ".join)
code_block = st.tuples(st.sampled_from(["", "py", "ts"]), st.lists(st.text(alphabet="xyz(){}=; ", max_size=120), max_size=40)).map(
    lambda pair: f"```{pair[0]}\n" + "\n".join(pair[1]) + "\n```")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(paragraph, code_block), min_size=1, max_size=12), st.integers(min_value=80, max_value=2000))
def test_splitting_never_exceeds_the_limit_never_breaks_fences_and_loses_nothing(blocks, limit):
    text = "\n\n".join(blocks)
    messages = split_message(text, limit)
    assert all(0 < len(m) <= limit for m in messages)
    for message in messages:
        assert len([line for line in message.split("\n") if FENCE_LINE.match(line)]) % 2 == 0
    assert content("\n".join(messages)) == content(text)


def answer(**fields) -> Answer:
    base = dict(text="Use `scene.zoom(2)` [1].", citations=[
        Citation(1, "Camera basics", "https://github.com/org/p/blob/v1/docs/camera.rst#L3-L9", "docs/camera.rst", "Zooming")])
    return Answer(**(base | fields))


def test_sources_are_links_without_previews():
    [message] = answer_messages(answer())
    assert message == ("Use `scene.zoom(2)` [1].\n\n**Sources**\n"
                       "[1] [Camera basics › Zooming](<https://github.com/org/p/blob/v1/docs/camera.rst#L3-L9>)")


def test_an_abstained_answer_says_what_to_do_instead():
    [message] = answer_messages(answer(text="I couldn't find this.", abstained=True, citations=[],
                                       escalation="Press “Ask a maintainer”."))
    assert message == "I couldn't find this.\n\nPress “Ask a maintainer”."


def test_strip_mention():
    assert strip_mention(f"<@{BOT}> how do I zoom?", BOT) == "how do I zoom?"
    assert strip_mention(f"hey <@!{BOT}>, how do I zoom? <@123>", BOT) == "hey , how do I zoom? <@123>"


CONFIG = TriggerConfig(bot_id=BOT, help_channels=frozenset({10}), forum_channels=frozenset({20}))


def message(**fields) -> Incoming:
    return Incoming(**({"content": "how do I zoom?", "author_id": 1, "channel_id": 99} | fields))


def test_when_the_bot_answers():
    assert decide(message(mentions_bot=True, content=f"<@{BOT}> how do I zoom?"), CONFIG) == \
        decide(message(mentions_bot=True), CONFIG)
    assert decide(message(mentions_bot=True, content=f"<@{BOT}> how do I zoom?"), CONFIG).question == "how do I zoom?"
    assert decide(message(channel_id=10), CONFIG).reason == "help channel"
    assert decide(message(is_forum_post=True, in_thread=True, parent_id=20), CONFIG).reason == "new forum post"
    assert decide(message(in_thread=True, thread_owned_by_bot=True, parent_id=99), CONFIG).reason == "follow-up in the bot's thread"


def test_when_the_bot_stays_quiet():
    assert decide(message(author_id=BOT, mentions_bot=True), CONFIG).reason == "own message"
    assert decide(message(author_is_bot=True, mentions_bot=True), CONFIG).reason == "from a bot"
    assert decide(message(is_webhook=True, channel_id=10), CONFIG).reason == "from a webhook"
    assert decide(message(is_dm=True), CONFIG).reason == "direct messages are off"
    assert decide(message(is_dm=True), TriggerConfig(bot_id=BOT, answer_dms=True)).answer
    assert decide(message(), CONFIG).reason == "not addressed to the bot"
    assert decide(message(in_thread=True, parent_id=10), CONFIG).reason == "not addressed to the bot"  # others' threads
    assert decide(message(mentions_bot=True, content=f"<@{BOT}>"), CONFIG).reason == "nothing to answer"
    assert decide(message(is_forum_post=True, in_thread=True, parent_id=21), CONFIG).answer is False


def test_sliding_windows_limit_users_and_channels_separately():
    from bot.limits import QuestionLimits, SlidingWindow

    now = [0.0]
    limits = QuestionLimits(SlidingWindow(2, 60, clock=lambda: now[0]), SlidingWindow(3, 60, clock=lambda: now[0]))
    assert [limits.check(1, 100), limits.check(1, 100)] == [0, 0]
    assert limits.check(1, 100) == 60  # the user's third question in a minute
    assert limits.check(2, 100) == 0  # another user in the same channel
    assert limits.check(3, 100) == 60  # the channel's fourth
    assert limits.check(3, 200) == 0  # not counted against user 3 when the channel refused
    now[0] = 61
    assert limits.check(1, 100) == 0
