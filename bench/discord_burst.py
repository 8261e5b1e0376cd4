"""A burst of Discord questions through the fake gateway: limits applied, no crash, every accepted one answered?

    python -m bench.discord_burst [--questions 200] [--users 50] [--channel-limit 20]

The real bot (discord.py) connects to the loopback fake of Discord's gateway and REST API
built from ../shared's captured frames, with the engine in process over this repository's
docs/. ``--questions`` mentions from ``--users`` users arrive as fast as the gateway sends
them, in one channel. Printed: how many were answered, how many got the polite rate-limit
notice, how many got neither (must be 0), and the time until the last answer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import discord
import yarl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake Discord lives with the tests

from fakes.discord import FakeDiscord  # noqa: E402
from fakes.server import serve  # noqa: E402

from bot.client import BotConfig, FirstReplyBot  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.service import Engine  # noqa: E402

QUESTIONS = ["How do I index my project's documentation?", "Which settings does firstreply have?",
             "How do I run the Discord bot?", "How do I review answers?"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--channel-limit", type=int, default=20, help="questions per channel per minute")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = Engine(Settings(data_dir=Path(folder) / "state", kb="docs", _env_file=None))
        engine.ingest(ROOT / "docs")
        fake = FakeDiscord()
        async with engine, serve(fake.app()) as url:
            discord.http.Route.BASE = f"{url}/api/v10"
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url.replace("http://", "ws://") + "/gateway")
            config = BotConfig(thread_mode=False, channel_questions_per_minute=args.channel_limit)
            bot = FirstReplyBot(engine, config, metrics=engine.metrics)
            task = asyncio.create_task(bot.start("fake-token"))
            await asyncio.wait_for(bot.wait_until_ready(), 60)
            started = time.perf_counter()
            sent = [await fake.user_message(f"<@{fake.bot_user['id']}> {QUESTIONS[n % len(QUESTIONS)]} ({n})",
                                            mentions_bot=True, author_id=str(910000000000000000 + n % args.users))
                    for n in range(args.questions)]
            ids = {m["id"] for m in sent}

            def replies() -> tuple[set[str], set[str]]:
                answered, limited = set(), set()
                for request in fake.sent("POST", "/messages"):
                    body = request.body
                    ref = str((body.get("message_reference") or {}).get("message_id"))
                    if ref in ids:  # answers carry the vote buttons; notices don't
                        (answered if body.get("components") else limited).add(ref)
                return answered, limited - answered  # a long answer's first parts have no buttons

            for _ in range(1200):
                answered, limited = replies()
                if len(answered | limited) >= len(ids):
                    break
                await asyncio.sleep(0.1)
            elapsed = time.perf_counter() - started
            crashed = task.done() and task.exception() is not None
            await bot.close()
    neither = len(ids) - len(answered | limited)
    print(f"{args.questions} questions from {args.users} users in one channel (limit {args.channel_limit}/min, "
          f"5/min per user)")
    print(f"  answered {len(answered)}, rate-limit notices {len(limited)}, neither {neither}; bot crashed: {crashed}")
    print(f"  last reply {elapsed:.1f} s after the first question")


if __name__ == "__main__":
    asyncio.run(main())
