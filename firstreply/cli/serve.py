"""The serving commands: ``serve`` (the engine, with the GitHub App and the Discord bot when they are
configured), and ``discord`` and ``github-app`` (each frontend alone)."""

from __future__ import annotations

import click

from engine.config import ConfigError, Settings
from engine.logs import configure as configure_logging
from firstreply.cli.console import _failures_as_messages, err, out
from firstreply.cli.context import _engine, _settings


def _bound(message: str, settings: Settings) -> str:
    """The address the server really listens on (``--port 0`` picks one), from aiohttp's "Running on …" line."""
    import re

    found = re.findall(r"https?://\S+?(?=[\s)]|$)", message)
    return ", ".join(found) if found else f"http://{settings.web.host}:{settings.web.port}"


def serving_plan(settings: Settings, pinned: bool) -> tuple[Settings, str | None]:
    """Which knowledge base answers by default, and the warning to shout when there is nothing to answer from.

    Unpinned, every ingested base is served; the default is FIRSTREPLY_KB when it was ingested, else the first
    ingested one (not an empty "default" that abstains on everything)."""
    from engine.service import ingested_kbs

    found = ingested_kbs(settings)
    if pinned:
        if settings.core.kb in found:
            return settings, None
        hint = f" (ingested: {', '.join(found)})" if found else ""
        return settings, (f"Nothing to answer from: knowledge base {settings.core.kb!r} has not been ingested{hint}. "
                          f"Run `firstreply ingest PATH --kb {settings.core.kb}`; until then every answer abstains.")
    if not found:
        return settings, (f"Nothing to answer from: no knowledge base has been ingested in {settings.core.data_dir}. "
                          "Run `firstreply ingest PATH --kb NAME`; until then every answer abstains.")
    if settings.core.kb not in found:
        settings = settings.replace(kb=found[0])
    return settings, None


@click.command()
@click.option("--host", help="Address to listen on (default: FIRSTREPLY_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: FIRSTREPLY_PORT, 8080).")
@click.option("--kb", help="Serve only this knowledge base (default: every ingested one).")
def serve(host: str | None, port: int | None, kb: str | None) -> None:
    """Run the engine's HTTP API and pages, answering from every ingested knowledge base (or only --kb)."""

    from aiohttp import web

    from engine.service import Engine
    from firstreply.local_server import announce, guard, withdraw
    from firstreply.serve import build_app

    settings, nothing = serving_plan(_settings(host=host, port=port, kb=kb), pinned=kb is not None)
    if nothing:
        err.print(f"[bold red]{nothing}[/]", soft_wrap=True)
    if settings.index.embedding_threads is None:
        settings = settings.replace(embedding_threads=1)
    configure_logging(settings)
    if not settings.web.api_keys:
        err.print("[yellow]No FIRSTREPLY_API_KEYS set: only clients on this machine will be served.[/]")
    with _failures_as_messages():
        try:
            app = build_app(Engine(settings, pinned_kb=kb is not None))  # a missing GitHub App setting stops here
            instance = guard(app)  # refuses an `ask` meant for another data folder's server

            def listening(message: str) -> None:
                bound = _bound(message, settings)
                announce(settings.core.data_dir, bound.split(", ")[0], instance)  # `firstreply ask` uses this server now
                out.print(f"firstreply engine on {bound}", soft_wrap=True)

            try:
                web.run_app(app, host=settings.web.host, port=settings.web.port, access_log=None, print=listening)
            finally:
                withdraw(settings.core.data_dir)
        except ConfigError as error:  # e.g. the Discord token, checked at start-up
            raise click.ClickException(str(error)) from None


@click.command(name="discord")
def discord_command() -> None:
    """Run the Discord bot alone: against FIRSTREPLY_ENGINE_URL, or with the engine in this process."""
    import asyncio

    from bot.run import run_bot
    from engine.client import EngineClient

    settings = _settings()
    configure_logging(settings)

    async def main() -> None:
        if settings.core.engine_url:
            key = settings.core.engine_api_key.get_secret_value() if settings.core.engine_api_key else None
            async with EngineClient(str(settings.core.engine_url), key) as client:
                await run_bot(settings.discord, client)
        else:
            async with _engine(settings) as engine:
                await run_bot(settings.discord, engine)

    with _failures_as_messages():
        try:
            asyncio.run(main())
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
        except KeyboardInterrupt:
            pass


@click.command(name="github-app")
@click.option("--host", help="Address to listen on (default: FIRSTREPLY_HOST).")
@click.option("--port", type=int, help="Port (default: FIRSTREPLY_PORT).")
def github_app_command(host: str | None, port: int | None) -> None:
    """Run the GitHub App alone: the webhook and its workers, against FIRSTREPLY_ENGINE_URL or an engine in process."""

    from aiohttp import web

    from engine.client import EngineClient
    from github_app.run import build_standalone

    settings = _settings(host=host, port=port)
    configure_logging(settings)
    reingest = None
    if settings.core.engine_url:
        key = settings.core.engine_api_key.get_secret_value() if settings.core.engine_api_key else None
        answerer = EngineClient(str(settings.core.engine_url), key)
    else:
        from firstreply.serve import reingest_with

        answerer = _engine(settings)
        reingest = reingest_with(answerer)  # pushes re-ingest with the engine in this process
    with _failures_as_messages():
        try:
            app = build_standalone(settings.github, settings.database, answerer, reingest)
            web.run_app(app, host=settings.web.host, port=settings.web.port, access_log=None,
                        print=lambda _: out.print(f"firstreply GitHub App on http://{settings.web.host}:{settings.web.port}/github/webhook"))
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
