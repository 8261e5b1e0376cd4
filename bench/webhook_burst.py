"""A burst of GitHub deliveries against the running engine: every discussion answered exactly once?

    python -m bench.webhook_burst [--deliveries 500] [--duplicates 0.1] [--senders 32] [--stores sqlite,postgresql]
                                  [--postgres URL]

The engine (`build_app`, GitHub App configured, this repository's docs/ indexed) runs on
127.0.0.1 against the loopback fake GitHub from tests/fakes (JWT checked, every GraphQL
document validated against GitHub's schema). ``--deliveries`` signed `discussion created`
deliveries are sent as fast as ``--senders`` connections allow; a ``--duplicates`` share of
them are redeliveries of an earlier delivery id. Printed: acknowledgement latency p50/p99,
the time until the queue drained, and the check that matters: one reply per discussion,
none missing. Each store in ``--stores`` is measured in turn (both by default): SQLite in a
temporary file, PostgreSQL in a scratch database on ``--postgres`` (the local test server by default).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the loopback fake GitHub lives with the tests

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from fakes.github import FakeGitHub  # noqa: E402
from fakes.server import serve  # noqa: E402

from engine.config import Settings  # noqa: E402
from engine.service import Engine  # noqa: E402
from firstreply.serve import build_app  # noqa: E402
from github_app.store import GitHubStore  # noqa: E402

SECRET, SLUG, APP_ID, REPO = "bench-secret", "bench-app", 4242, "org/project"
QUESTIONS = ["How do I index my project's documentation?", "Which settings does firstreply have?",
             "How does hybrid retrieval rank passages?", "How do I run the GitHub App on its own?",
             "How do I review answers?", "How do I fine-tune a model on golden records?"]


def payload(n: int) -> dict:
    return {"action": "created", "installation": {"id": 1}, "sender": {"login": "octocat", "type": "User"},
            "repository": {"id": 1, "full_name": REPO, "name": "project", "owner": {"login": "org"}},
            "discussion": {"node_id": f"D_{n}", "number": n, "title": QUESTIONS[n % len(QUESTIONS)], "body": "Thanks!",
                           "html_url": f"https://github.com/{REPO}/discussions/{n}", "locked": False,
                           "category": {"slug": "q-a", "name": "Q&A"}, "user": {"login": "octocat", "type": "User"}}}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--duplicates", type=float, default=0.1)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--postgres", default=os.environ.get("FIRSTREPLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
                        help="a server to create a scratch database on")
    args = parser.parse_args()
    for store in [s.strip() for s in args.stores.split(",") if s.strip()]:
        if store not in ("sqlite", "postgresql"):
            parser.error(f"unknown store {store!r}: sqlite or postgresql")
        await run(args, args.postgres if store == "postgresql" else None)


async def run(args, postgres: str | None) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    github = FakeGitHub(APP_ID, public, SLUG)
    if hasattr(github, "add_installation"):  # a fake that checks installations (not main's before issue 16.8)
        github.add_installation(1, "org", [REPO])
    unique = args.deliveries - round(args.deliveries * args.duplicates)
    plan = [(f"delivery-{n}", n) for n in range(unique)]
    rng = random.Random(7)
    plan += [rng.choice(plan[:unique]) for _ in range(args.deliveries - unique)]  # redeliveries: same id again
    rng.shuffle(plan)
    scratch = admin = None
    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite+aiosqlite:///{folder}/bench.db"
        if postgres:
            import asyncpg

            scratch = f"firstreply_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(postgres)
            await admin.execute(f'CREATE DATABASE "{scratch}"')
            database = f"{postgres.rpartition('/')[0]}/{scratch}"
        (Path(folder) / "app.pem").write_bytes(private)
        async with serve(github.app()) as github_url:
            for n in range(unique):
                github.add_discussion_from_payload(payload(n))
            engine = Engine(Settings(data_dir=Path(folder) / "state", kb="docs", database_url=database,
                                     github_app_id=APP_ID, github_private_key_file=Path(folder) / "app.pem",
                                     github_webhook_secret=SECRET, github_app_slug=SLUG, github_api_url=github_url,
                                     github_workers=args.workers, github_poll_seconds=0.2, github_retry_base_seconds=0.2,
                                     rate_limit_per_minute=1_000_000, _env_file=None))
            engine.ingest(ROOT / "docs")
            async with serve(build_app(engine)) as url, aiohttp.ClientSession() as session:
                queue: asyncio.Queue = asyncio.Queue()
                for item in plan:
                    queue.put_nowait(item)
                latencies, statuses, first_round = [], [], []

                async def sender() -> None:
                    while not queue.empty():
                        delivery, n = queue.get_nowait()
                        body = json.dumps(payload(n)).encode()
                        headers = {"Content-Type": "application/json", "X-GitHub-Event": "discussion",
                                   "X-GitHub-Delivery": delivery,
                                   "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
                        started = time.perf_counter()
                        async with session.post(f"{url}/github/webhook", data=body, headers=headers) as response:
                            await response.read()
                        latencies.append(time.perf_counter() - started)
                        first_round.append(len(latencies) <= args.senders)
                        statuses.append(response.status)

                started = time.perf_counter()
                await asyncio.gather(*(sender() for _ in range(args.senders)))
                sent = time.perf_counter() - started
                store = GitHubStore(engine.store.engine)
                while (counts := await store.count_by_status())["queued"] + counts["running"]:
                    await asyncio.sleep(0.1)
                drained = time.perf_counter() - started
                jobs = await store.jobs(limit=args.deliveries * 2)
                outcomes: dict[str, int] = {}
                settled = set()
                for job in jobs:
                    kind = job.status if job.status != "done" else (job.outcome or "").split(":")[0].split(" ")[0]
                    outcomes[kind] = outcomes.get(kind, 0) + 1
                    if job.status == "done":
                        settled.add(job.payload["discussion"]["node_id"])
        per_discussion: dict[str, int] = {}
        for comment in github.bot_comments():
            per_discussion[comment["discussion"]["id"]] = per_discussion.get(comment["discussion"]["id"], 0) + 1
        if scratch:
            await admin.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')
            await admin.close()
    ordered = sorted(latencies)
    print(f"{args.deliveries} deliveries ({unique} discussions, {args.deliveries - unique} redeliveries), "
          f"{args.senders} senders, {args.workers} workers, {'PostgreSQL' if postgres else 'SQLite'}")
    print(f"  acknowledged: {statuses.count(202)} queued, {statuses.count(200)} duplicate, "
          f"{len(statuses) - statuses.count(202) - statuses.count(200)} other")
    print(f"  ack latency p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {ordered[int(0.99 * (len(ordered) - 1))] * 1000:.1f} ms, "
          f"max {ordered[-1] * 1000:.1f} ms")
    later = sorted(latency for latency, first in zip(latencies, first_round, strict=True) if not first)
    if later:  # the first round pays for connections being opened and caches being filled
        print(f"  after the first {args.senders} acknowledgements: p50 {statistics.median(later) * 1000:.1f} ms, "
              f"p99 {later[int(0.99 * (len(later) - 1))] * 1000:.1f} ms")
    print(f"  all sent in {sent:.1f} s; queue drained {drained:.1f} s after the first delivery "
          f"({unique / drained:.1f} replies/s)")
    print(f"  jobs: {', '.join(f'{n} {kind}' for kind, n in sorted(outcomes.items()))}")
    print(f"  discussions replied to once: {sum(1 for v in per_discussion.values() if v == 1)} of {unique}; "
          f"twice or more: {sum(1 for v in per_discussion.values() if v > 1)}; "
          f"without a finished job (lost): {unique - len(settled)}")


if __name__ == "__main__":
    asyncio.run(main())
