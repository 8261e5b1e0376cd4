"""Everything in one process: the engine's API and pages, and beside them the GitHub App (its webhook, its
maintainer routes, its workers) and the Discord bot, when each is configured; and the App's part of the
review pages (its drafts and figures) always, since its tables are in the engine's database.

The engine builds its own application (:func:`engine.api.app.build_app`) and knows neither frontend; this
module mounts them on it and starts them in a cleanup context, so they start after the engine has started
and stop before it closes.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from engine.api.app import build_app as build_engine_app
from engine.api.keys import ENGINE, OPENAPI
from engine.api.openapi import document

GITHUB = web.AppKey("firstreply_github_app", object)  # github_app.app.GitHubApp, when configured
DISCORD_BOT = web.AppKey("firstreply_discord_bot", tuple)  # (the bot, its connection task)


def build_app(engine) -> web.Application:
    """The engine's application with the GitHub App and the Discord bot added where they are configured
    (a missing or bad App setting raises ConfigError here; a refused Discord token, at start-up)."""
    app = build_engine_app(engine)
    github = _mount_github_app(app, engine)
    if github is not None:
        app[OPENAPI] = document(with_github=True)
    app.cleanup_ctx.append(_frontends_running)
    return app


def _mount_github_app(app: web.Application, engine):
    """Mount the GitHub App when it is configured (a missing or bad App setting raises ConfigError here)."""
    from github_app.config import configured

    if not configured(engine.settings.github):
        return None
    from github_app.app import GitHubApp
    from github_app.config import app_config
    from github_app.routes import mount

    github = GitHubApp(app_config(engine.settings.github), engine, reingest=reingest_with(engine))
    mount(app, github)
    app[GITHUB] = github
    return github


def reingest_with(engine):
    """The GitHub App's re-ingest after a push (``FIRSTREPLY_GITHUB_SOURCES``), done by the engine in this process:
    the repository's clone in the data folder fetched and reset (cloned the first time), then ingested
    incrementally; servers on this data folder pick the new index up as after any ``firstreply ingest``."""
    from engine.ingest.remote import BadGitUrl, GitFailed
    from github_app.api import PermanentError, TransientError

    async def reingest(update) -> str:
        try:
            checkout = await asyncio.to_thread(engine.sync_remote, update.url, ref=update.ref)
        except BadGitUrl as error:
            raise PermanentError(f"{update.repository}: {error}") from None
        except GitFailed as error:  # unreachable, or too slow: the worker tries again later
            raise TransientError(str(error)) from None
        report = await engine.aingest(checkout.path, ref=update.ref, kb=update.kb)
        return f"{update.kb} at {checkout.commit[:12]}: {report.summary()}"

    return reingest


async def _frontends_running(app: web.Application):
    engine = app[ENGINE]
    settings = engine.settings
    github = app.get(GITHUB)
    try:
        from github_app.review import GitHubReview
        from github_app.store import GitHubStore

        github_store = GitHubStore(engine.database)  # the GitHub App's tables are in the engine's database
        if github is not None:  # and its workers run in this process when it is configured
            await github.start(github_store)
        # Its drafts and figures on the review pages, even when its workers run elsewhere (`firstreply github-app`).
        engine.register_review_extension(github.review_extension() if github is not None else GitHubReview(github_store))

        if settings.discord.token is not None:  # the Discord bot runs in this process too
            from bot.run import start_bot

            bot = await start_bot(settings.discord, engine)
            app[DISCORD_BOT] = (bot, asyncio.create_task(bot.connect(), name="discord-bot"))
        yield
    finally:
        if DISCORD_BOT in app:
            bot, task = app[DISCORD_BOT]
            await bot.close()
            task.cancel()
        if github is not None:
            await github.close()
