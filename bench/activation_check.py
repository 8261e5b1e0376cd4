"""What looking for an activation made by another process costs an engine, per look.

    python -m bench.activation_check [--looks 2000] [--database-url URL]

Each engine looks at the activations in force before a question, at most every
``FIRSTREPLY_ACTIVATION_CHECK_SECONDS`` (5 by default): one small query, and a chain rebuild
only when they changed. Printed: the mean time of one look (the query, no change) on the
given database (a fresh SQLite file by default).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from engine.config import Settings
from engine.service import Engine


async def measure(looks: int, database_url: str | None) -> float:
    engine = Engine(Settings(data_dir=tempfile.mkdtemp(), kb="bench", user_salt="bench-salt-bench-salt-bench-salt-00", database_url=database_url,
                             _env_file=None))
    await engine.start()
    try:
        await engine.tuning_service.store.activate("openai:ft:gpt-4o-mini:org:bench:1", "openai:gpt-4o", None, {}, "bench")
        await engine.reload_chain()
        started = time.perf_counter()
        for _ in range(looks):
            await engine.reload_chain()  # a forced look: the query every look makes, and no rebuild
        return (time.perf_counter() - started) / looks
    finally:
        await engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--looks", type=int, default=2000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    per_look = asyncio.run(measure(args.looks, args.database_url))
    where = args.database_url.split("://")[0] if args.database_url else "sqlite (a fresh file)"
    print(f"one look at the activations in force: {per_look * 1e3:.2f} ms mean over {args.looks} looks on {where}")


if __name__ == "__main__":
    main()
