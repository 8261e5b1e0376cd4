"""What a command runs with: settings loaded from the environment (a bad one is a one-line error) and the
engine built from them."""

from __future__ import annotations

import click

from engine.config import ConfigError, Settings, load_settings
from firstreply.cli.console import _failures_as_messages


def _settings(**overrides) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def _engine(settings: Settings):
    from engine.service import Engine

    return Engine(settings)


def _with_engine(work, *, unknown: str | None = None, missing: str | None = None):
    """Run ``work(engine)`` with the engine started (database open), then close it, and return what it returned.

    A refusal (``ReviewError``, ``TuningError``) ends the command with its message; so does a ``LookupError`` with ``unknown`` (what
    the command names doesn't exist: "no tuning job X"), and a result of None with ``missing``."""
    import asyncio

    from engine.review.errors import ReviewError
    from engine.tuning.errors import TuningError

    settings = _settings()

    async def main():
        async with _engine(settings) as engine:
            return await work(engine)

    with _failures_as_messages():
        try:
            result = asyncio.run(main())
        except LookupError as error:  # ReviewNotFound and TuningNotFound are LookupErrors too
            if unknown is not None:
                raise click.ClickException(unknown) from None
            if isinstance(error, (ReviewError, TuningError)):
                raise click.ClickException(str(error)) from None
            raise
        except (ReviewError, TuningError) as error:
            raise click.ClickException(str(error)) from None
    if result is None and missing is not None:
        raise click.ClickException(missing)
    return result
