"""How fast the review pages' queries are on a large answer log.

    python -m bench.review_queries [--answers 100000] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Fills a fresh database with ``--answers`` synthetic answers (four channels, 5% abstained, some
votes, some reviewed, spread over 60 days), then times each query the Answers and Overview
pages run: median and worst of 5 runs, and each as a multiple of looking up one answer by id
(the baseline, measured in the same run). With ``--postgres`` a scratch database is created on
that server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert

from engine.store.database import create_engine, migrate
from engine.store.models import AnswerRecord
from engine.store.review import AnswerFilter, ReviewStore

CHANNELS = ("discord", "github", "api", "web")
WORDS = "zoom camera export png scene render install colour axis legend window record theme font".split()


def rows(n: int) -> list[dict]:
    now = datetime.now(timezone.utc)
    out = []
    for i in range(n):
        topic = " ".join(WORDS[(i * k) % len(WORDS)] for k in (1, 3, 7))
        out.append(dict(
            id=str(uuid.UUID(int=i + 1)), created_at=now - timedelta(minutes=(i * 60 * 24 * 60) // n),
            channel=CHANNELS[i % 4], kb="bench", question=f"How do I {topic}? ({i})", search_query=topic,
            text=f"Use the {topic} option [1].", abstained=i % 20 == 0, confidence=0.5, model="extractive",
            sources=[{"path": f"docs/{WORDS[i % len(WORDS)]}.md", "score": 0.03}],
            citations=[] if i % 20 == 0 else [{"number": 1, "title": WORDS[i % len(WORDS)], "url": f"https://x/{i % 40}",
                                               "path": "docs/x.md"}],
            fallback_reasons=[], trimmed={}, latency_ms=40, verdict=("approved", "unreviewed", "unreviewed", "rejected")[i % 4],
            up_votes=int(i % 7 == 0), down_votes=int(i % 11 == 0),
        ))
    return out


async def timed(call, repeat: int = 5) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


async def run(url: str, answers: int) -> None:
    database = create_engine(url)
    await migrate(database)
    review = ReviewStore(database)
    started = time.perf_counter()
    data = rows(answers)
    async with review.session.begin() as session:
        for start in range(0, len(data), 5000):
            await session.execute(insert(AnswerRecord), data[start:start + 5000])
    print(f"  {answers} answers written in {time.perf_counter() - started:.1f} s")
    some_id = data[len(data) // 2]["id"]

    async def by_id():
        async with review.session() as session:
            await session.get(AnswerRecord, some_id)

    base = await timed(by_id, 20)
    print(f"  {'baseline: one answer by id':<44} median {base[0]:8.2f} ms  worst {base[1]:8.2f} ms")
    cases = {
        "Answers, default (👎 first), page 1": AnswerFilter(),
        "Answers, newest first, page 1": AnswerFilter(order="newest"),
        "Answers, newest first, page 1000": AnswerFilter(order="newest", page=1000),
        "Answers, channel=github, unreviewed": AnswerFilter(channel="github", verdict="unreviewed"),
        "Answers, has 👎": AnswerFilter(votes="down"),
        "Answers, abstained": AnswerFilter(abstained=True),
        "Answers, text search 'legend window'": AnswerFilter(text="legend window"),
    }
    for name, chosen in cases.items():
        median, worst = await timed(lambda chosen=chosen: review.answers(chosen))
        print(f"  {name:<44} median {median:8.2f} ms  worst {worst:8.2f} ms  ({median / base[0]:.0f}x baseline)")
    median, worst = await timed(lambda: review.overview(30))
    print(f"  {'Overview, 30 days':<44} median {median:8.2f} ms  worst {worst:8.2f} ms  ({median / base[0]:.0f}x baseline)")
    await database.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--postgres", help="a server to create a scratch database on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print("SQLite")
        await run(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}", args.answers)
    if args.postgres:
        import asyncpg

        scratch = f"firstreply_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(args.postgres)
        await admin.execute(f'CREATE DATABASE "{scratch}"')
        try:
            print("PostgreSQL")
            await run(f"{args.postgres.rpartition('/')[0]}/{scratch}", args.answers)
        finally:
            await admin.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
