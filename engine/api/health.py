"""What operators and orchestrators poll: ``GET /healthz`` (the process is up), ``GET /readyz`` (the
database and the vector store answer, and questions can be encoded) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from aiohttp import web

from engine.api.keys import ENGINE, METRICS


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


READY_SECONDS = 5.0  # the longest /readyz waits for its checks, which run together


async def readyz(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    checks: dict[str, str] = {}

    async def check(name: str, probe: Callable[[], Awaitable[object]]) -> None:
        try:
            await asyncio.wait_for(probe(), READY_SECONDS)
            checks[name] = "ok"
        except Exception as error:  # readiness reports every failure, whatever it is
            checks[name] = f"failing: {type(error).__name__}"

    async def database() -> None:
        if engine.store is None:
            raise RuntimeError("the engine has not started")
        await engine.store.ping()

    # All at once: a hung database and a hung store cost one deadline (READY_SECONDS), not one each.
    await asyncio.gather(check("database", database),
                         check("vectors", lambda: asyncio.to_thread(engine.vectors().count)),
                         check("model", lambda: asyncio.to_thread(engine.embedder.ensure_query_encoder)))
    checks = {name: checks[name] for name in ("database", "vectors", "model")}  # in the same order every time
    ready = all(v == "ok" for v in checks.values())
    return web.json_response({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)


async def metrics_route(request: web.Request) -> web.Response:
    """Counters as they are, and the queue gauges read from the database at scrape time."""
    metrics, engine = request.app[METRICS], request.app[ENGINE]
    for status, count in (await engine.tuning_service.count_by_status()).items():
        metrics.tuning_jobs.labels(status).set(count)
    await metrics.refresh()  # gauges frontends read at scrape time (the GitHub App's queue)
    return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")


def mount_health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_route)
