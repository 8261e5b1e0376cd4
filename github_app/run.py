"""Running the App alone (``firstreply github-app``): the webhook, the workers and a health route.

It asks a remote engine over HTTP when ``FIRSTREPLY_ENGINE_URL`` is set (several App
processes can then share one engine and one PostgreSQL queue), or an engine in this process.
"""

from __future__ import annotations

from aiohttp import web

from engine.config import GitHubSettings
from engine.database import create_engine, migrate
from engine.protocol import Answerer
from github_app.app import GitHubApp
from github_app.config import app_config
from github_app.handlers import Reingest
from github_app.routes import mount
from github_app.store import GitHubStore


def build_standalone(settings: GitHubSettings, database_url: str, answerer: Answerer,
                     reingest: Reingest | None = None) -> web.Application:
    """The App as its own web application, its queue in ``database_url``; raises ConfigError at once if a setting
    is missing or bad. ``reingest``: how pushes re-ingest a knowledge base, when the engine is in this process."""
    github = GitHubApp(app_config(settings), answerer, reingest=reingest)
    app = web.Application()
    mount(app, github, admin=False)  # no API keys are checked here: maintainers use the engine's routes

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)

    async def start(_app: web.Application) -> None:
        database = create_engine(database_url)
        await migrate(database)
        await answerer.start()
        await github.start(GitHubStore(database))

    async def stop(_app: web.Application) -> None:
        await github.close()
        if github.store is not None:
            await github.store.engine.dispose()
        await answerer.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app
