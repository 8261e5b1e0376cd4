"""Logging for every firstreply process: text or JSON lines, each record carrying the request or
delivery it belongs to, and no secret ever written out.

The id lives in a context variable: the HTTP middleware sets it from ``X-Request-Id`` (the
Discord bot and the GitHub App send theirs along), the GitHub workers set the delivery id,
so one question can be followed from the frontend through the engine to the provider.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TextIO

from pydantic import BaseModel, SecretStr

if TYPE_CHECKING:
    from engine.config import Settings

CORRELATION: contextvars.ContextVar[str | None] = contextvars.ContextVar("firstreply_correlation_id", default=None)
REDACTED = "[redacted]"
QUIET_UNLESS_DEBUGGING = ("httpx", "alembic", "sentence_transformers")


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value the settings hold (keys, tokens, the webhook secret, the private key)."""
    values: list[str] = []

    def collect(value: object) -> None:
        if isinstance(value, SecretStr):
            if value.get_secret_value():
                values.append(value.get_secret_value())
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)
        elif isinstance(value, BaseModel):  # e.g. an API key with its roles
            for name in type(value).model_fields:
                collect(getattr(value, name))

    collect(settings)
    return sorted(set(values), key=len, reverse=True)  # longest first, so no secret is half-replaced


class Redactor:
    """Replaces known secret values in text: for log lines, and for anything else an upstream's words
    reach (a provider's error becomes an answer's fallback reason, stored and shown to clients)."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


class ContextFilter(logging.Filter):
    """Adds ``correlation_id`` to every record and replaces secrets in its message (and traceback)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.redact = Redactor(secrets).redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__["correlation_id"] = CORRELATION.get()  # an extra attribute, as logging's `extra=` sets
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.redact(message), ()
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        correlation = getattr(record, "correlation_id", None)
        if correlation:
            entry["id"] = correlation
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        correlation = getattr(record, "correlation_id", None)
        return f"{line} [{correlation}]" if correlation else line


def configure(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's records through one handler; returns it (tests read what it wrote)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter(secrets_of(settings)))
    handler.setFormatter(JsonFormatter() if settings.core.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.core.log_level.upper())
    # One line per HTTP call to the Chroma server (every readiness probe, every search) is noise
    # above DEBUG; their failures still reach the log as ours.
    # So is what every start says: alembic's "Context impl SQLiteImpl", sentence-transformers' "Loading …".
    quiet = logging.WARNING if root.level > logging.DEBUG else logging.NOTSET
    for name in QUIET_UNLESS_DEBUGGING:
        logging.getLogger(name).setLevel(quiet)
    return handler
