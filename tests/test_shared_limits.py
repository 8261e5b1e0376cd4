"""The limits and names the engine and its frontends must agree on are defined once (engine.protocol), and every
place that states them says the same: the routes, the OpenAPI document, the store, the GitHub App, the bot."""

import pytest
from sqlalchemy import inspect

from engine.api.openapi import document
from engine.client import EngineClient
from engine.protocol import CHANNEL_SETTINGS, MAX_COMMENT_CHARS, MAX_QUESTION_CHARS, check_channel_settings
from engine.store.models import ChannelSettings
from github_app.config import ReplyPolicy
from github_app.sansio import question_text, strip_mention


def test_the_channel_settings_are_the_stores_columns():
    columns = {c.key for c in inspect(ChannelSettings).columns} - {"platform", "channel_id", "updated_by", "updated_at"}
    assert set(CHANNEL_SETTINGS) == columns


def test_an_unknown_channel_setting_is_refused_by_name():
    check_channel_settings(dict.fromkeys(CHANNEL_SETTINGS, None))
    with pytest.raises(ValueError, match="unknown channel settings: colour"):
        check_channel_settings({"colour": True, "thread_mode": False})


async def test_the_http_client_refuses_unknown_channel_settings_before_sending():
    client = EngineClient("http://127.0.0.1:9", None)  # nothing listens there: a request would fail differently
    with pytest.raises(ValueError, match="unknown channel settings: colour"):
        await client.set_channel_settings("discord", "1", {"colour": True})


def test_the_openapi_document_states_the_protocols_limits():
    doc = document()
    schemas = doc["components"]["schemas"]
    assert schemas["Question"]["properties"]["question"]["maxLength"] == MAX_QUESTION_CHARS
    assert schemas["Feedback"]["properties"]["comment"]["maxLength"] == MAX_COMMENT_CHARS
    search = next(p for p in doc["paths"]["/v1/search"]["get"]["parameters"] if p["name"] == "q")
    assert search["schema"]["maxLength"] == MAX_QUESTION_CHARS
    channel = doc["paths"]["/v1/channels/{platform}/{channel}"]["put"]["requestBody"]["content"]["application/json"]
    assert set(channel["schema"]["properties"]) - {"by"} == set(CHANNEL_SETTINGS)


def test_the_github_app_cuts_questions_to_what_the_engine_takes():
    long = "word " * MAX_QUESTION_CHARS
    assert len(question_text("Title", long, ReplyPolicy())) == MAX_QUESTION_CHARS
    assert len(strip_mention(f"@firstreply {long}", "firstreply")) == MAX_QUESTION_CHARS


def test_the_bots_feedback_box_holds_what_the_engine_takes():
    from bot.views import CommentModal

    assert CommentModal.comment.max_length == MAX_COMMENT_CHARS


def test_the_frontends_defaults_are_their_settings_defaults():
    from bot.client import BotConfig
    from engine.config import DiscordSettings, GitHubSettings
    from github_app.config import AppConfig

    assert BotConfig.of(DiscordSettings(_env_file=None)) == BotConfig()
    github = GitHubSettings(_env_file=None)
    assert ReplyPolicy.of(github) == ReplyPolicy()
    defaults = AppConfig(app_id=1, private_key="", webhook_secret="", slug="", api_url="", graphql_url="", policy=ReplyPolicy())
    assert (defaults.workers, defaults.max_attempts, defaults.secondary_limit_seconds, defaults.max_payload_bytes) == (
        github.workers, github.max_attempts, github.secondary_limit_seconds, github.max_payload_bytes)


def test_a_maintainers_answer_text_has_one_limit_that_fits_a_github_comment():
    from engine.protocol import MAX_ANSWER_CHARS
    from github_app import sansio

    doc = document()
    for review in doc["components"]["schemas"]["Review"]["anyOf"]:
        assert review["properties"]["text"]["maxLength"] == MAX_ANSWER_CHARS
    approve = doc["paths"]["/api/v1/github/replies/{id}/approve"]["post"]["requestBody"]["content"]["application/json"]
    assert approve["schema"]["properties"]["body"]["maxLength"] == MAX_ANSWER_CHARS
    assert MAX_ANSWER_CHARS < sansio.MAX_COMMENT_CHARS
