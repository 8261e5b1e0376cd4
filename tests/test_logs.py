"""Logs: JSON lines when asked, the request's id on every line it caused, and no secret written out."""

from __future__ import annotations

import io
import json
import logging

import aiohttp
import pytest
from fakes import gemini
from fakes.server import serve

from engine.config import Settings
from engine.logs import CORRELATION, REDACTED, configure
from firstreply.serve import build_app  # the app `firstreply serve` runs


@pytest.fixture
def captured():
    """Route logging through firstreply's handler into a buffer for the test, then put pytest's back."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    buffer = io.StringIO()

    def start(settings: Settings) -> io.StringIO:
        configure(settings, buffer)
        return buffer

    yield start
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_id_and_never_a_secret(captured):
    settings = Settings(log_format="json", api_keys=["sk-live-abcdef"], github_webhook_secret="whsec-0123456789",
                        gemini_api_key="AIzaSyFAKE-KEY", _env_file=None)
    out = captured(settings)
    log = logging.getLogger("firstreply.test")
    token = CORRELATION.set("req-42")
    try:
        log.warning("calling with key %s and secret whsec-0123456789", "AIzaSyFAKE-KEY")
        try:
            raise RuntimeError("the provider said: bad key sk-live-abcdef")
        except RuntimeError:
            log.exception("provider failed")
    finally:
        CORRELATION.reset(token)
    log.info("no request here")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {**lines[0], "level": "warning", "logger": "firstreply.test", "id": "req-42",
                        "message": f"calling with key {REDACTED} and secret {REDACTED}"}
    assert lines[1]["id"] == "req-42" and "sk-live-abcdef" not in lines[1]["exception"] and REDACTED in lines[1]["exception"]
    assert "id" not in lines[2]
    assert all(secret not in out.getvalue() for secret in ("sk-live-abcdef", "whsec-0123456789", "AIzaSyFAKE-KEY"))


async def test_a_request_id_follows_the_question_into_the_engine_logs(captured, make_engine):
    fake = gemini.FakeGemini(default=gemini.Reply(status=500))
    async with serve(fake.app()) as gemini_url:
        engine = make_engine(providers=["gemini:gemini-2.5-flash"], gemini_api_key=gemini.API_KEY,
                             gemini_base_url=gemini_url, llm_retries=1, log_format="json")
        out = captured(engine.settings)
        async with serve(build_app(engine)) as url, aiohttp.ClientSession() as http:
            async with http.post(f"{url}/v1/answer", json={"question": "How do I zoom the camera in?"},
                                 headers={"X-Request-Id": "discord-1234"}) as response:
                assert (await response.json())["model"] == "extractive"
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    fallback = [line for line in lines if "came from extractive" in line["message"]]
    assert fallback and all(line["id"] == "discord-1234" for line in fallback)
    assert gemini.API_KEY not in out.getvalue()


def test_per_request_http_client_lines_are_left_out_unless_debugging(captured):
    """Every search against a Chroma server is an httpx request; at INFO each would be a line."""
    out = captured(Settings(log_level="info", _env_file=None))
    logging.getLogger("httpx").info("HTTP Request: POST http://chroma:8000/api/v2/... 200 OK")
    logging.getLogger("httpx").warning("connection pool is full")
    assert "HTTP Request" not in out.getvalue() and "connection pool is full" in out.getvalue()
    out = captured(Settings(log_level="debug", _env_file=None))
    logging.getLogger("httpx").info("HTTP Request: GET http://chroma:8000/api/v2/heartbeat 200 OK")
    assert "HTTP Request" in out.getvalue()


def test_start_up_chatter_from_alembic_and_sentence_transformers_is_left_out_unless_debugging(captured):
    """Issue 15 item 14: every start said "INFO alembic… Context impl SQLiteImpl" and "Loading SentenceTransformer"."""
    out = captured(Settings(log_level="info", _env_file=None))
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    logging.getLogger("sentence_transformers.base.model").info("Loading SentenceTransformer model from x")
    logging.getLogger("alembic.runtime.migration").warning("a migration went wrong")
    assert "Context impl" not in out.getvalue() and "Loading SentenceTransformer" not in out.getvalue()
    assert "a migration went wrong" in out.getvalue()
    out = captured(Settings(log_level="debug", _env_file=None))
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    assert "Context impl" in out.getvalue()
