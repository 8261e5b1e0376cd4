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


def _with_engine(work):
    """Run ``work(engine)`` with the engine started (database open), then close it."""
    import asyncio

    from engine.review.errors import ReviewError
    from engine.tuning.errors import TuningError

    settings = _settings()

    async def main():
        async with _engine(settings) as engine:
            return await work(engine)

    with _failures_as_messages():
        try:
            return asyncio.run(main())
        except (ReviewError, TuningError) as error:
            raise click.ClickException(str(error)) from None
