"""How fast the GitHub webhook acknowledges a delivery (GitHub gives up after 10 seconds).

    python -m bench.webhook_ack [--deliveries 400] [--clients 16] [--postgres URL]

Signed copies of the fixture-shaped `discussion created` payload are posted to
``/github/webhook``; each acknowledgement means the signature was checked, the payload parsed
and the job committed to the queue. The baseline is the same aiohttp server answering 202
after reading the body and nothing else, measured in the same run. Workers are not started,
so only the acknowledgement path is measured. Printed: p50/p99 latency of both and their
ratio, for SQLite (and PostgreSQL when ``--postgres`` names a server: a scratch database is
created there and dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web

from engine.metrics import Metrics
from engine.store.database import create_engine, migrate
from github_app.app import GitHubApp
from github_app.config import AppConfig, ReplyPolicy
from github_app.routes import mount
from github_app.store import GitHubStore

SECRET = "bench-secret"


def payload(n: int) -> bytes:
    return json.dumps({
        "action": "created",
        "discussion": {"node_id": f"D_{n}", "number": n, "title": "How do I zoom?", "body": "Question " * 200,
                       "category": {"slug": "q-a", "name": "Q&A"}, "user": {"login": "octocat", "type": "User"},
                       "html_url": f"https://github.com/o/r/discussions/{n}"},
        "repository": {"id": 1, "full_name": "o/r", "name": "r", "owner": {"login": "o"}},
        "installation": {"id": 1}, "sender": {"login": "octocat", "type": "User"},
    }).encode()


async def run_server(app: web.Application, deliveries: int, clients: int) -> list[float]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/github/webhook"  # type: ignore[union-attr]
    bodies = [payload(n) for n in range(deliveries)]
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(deliveries):
        queue.put_nowait(n)

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = bodies[queue.get_nowait()]
            headers = {"Content-Type": "application/json", "X-GitHub-Event": "discussion",
                       "X-GitHub-Delivery": str(uuid.uuid4()),
                       "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                assert response.status == 202, response.status
            latencies.append(time.perf_counter() - started)

    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(client(session) for _ in range(clients)))
    finally:
        await runner.cleanup()
    return latencies


def baseline_app() -> web.Application:
    async def ack(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "queued"}, status=202)

    app = web.Application()
    app.router.add_post("/github/webhook", ack)
    return app


async def webhook_app(database_url: str) -> tuple[web.Application, GitHubApp]:
    config = AppConfig(app_id=1, private_key="unused", webhook_secret=SECRET, slug="bench", api_url="http://127.0.0.1:9",
                       graphql_url="http://127.0.0.1:9/graphql", policy=ReplyPolicy())
    database = create_engine(database_url)
    await migrate(database)
    github = GitHubApp(config, answerer=None, metrics=Metrics())  # no answers: the webhook only queues
    await github.start(GitHubStore(database), workers=False)
    app = web.Application()
    mount(app, github, admin=False)
    return app, github


def summary(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered) * 1000, ordered[int(0.99 * (len(ordered) - 1))] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--postgres", help="a server to create a scratch database on, e.g. postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        databases = {"sqlite": f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"}
        scratch = None
        if args.postgres:
            import asyncpg

            scratch = f"firstreply_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(args.postgres)
            await admin.execute(f'CREATE DATABASE "{scratch}"')
            databases["postgresql"] = f"{args.postgres.rpartition('/')[0]}/{scratch}"
        await run_server(baseline_app(), 50, args.clients)  # warm up the client and the loop
        base = summary(await run_server(baseline_app(), args.deliveries, args.clients))
        print(f"{args.deliveries} deliveries, {args.clients} concurrent senders")
        print(f"  baseline (read body, answer 202)   p50 {base[0]:7.2f} ms   p99 {base[1]:7.2f} ms")
        for name, url in databases.items():
            app, github = await webhook_app(url)
            try:
                measured = summary(await run_server(app, args.deliveries, args.clients))
                queued = len(await github.store.jobs(limit=args.deliveries + 1))
            finally:
                await github.close()
                if github.store is not None:
                    await github.store.engine.dispose()
            print(f"  webhook on {name:<10} (verify, queue) p50 {measured[0]:7.2f} ms   p99 {measured[1]:7.2f} ms"
                  f"   ({measured[0] / base[0]:.1f}x / {measured[1] / base[1]:.1f}x baseline; {queued} jobs queued)")
        if scratch:
            await admin.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
