"""Search latency at 10,000 chunks: p50 and p99, and their ratio to encoding the query alone.

    python -m bench.retrieval_latency [--chunks 10000] [--queries 200]

The index is built from real text: the Payload and FURY corpora in ../shared (or this
repository's docs/), copied under numbered prefixes until it holds the requested number of
chunks, with real embeddings. Queries are real questions (Payload's Discord threads) or, without
../shared, the docs' headings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from engine.config import Settings
from engine.service import Engine

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "eval"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def build_corpus(target: Path, engine: Engine, chunks_wanted: int) -> int:
    sources = [p for p in (SHARED / "payload" / "corpus" / "docs", SHARED / "fury" / "corpus" / "docs") if p.is_dir()]
    sources = sources or [ROOT / "docs"]
    copy = 0
    total = 0
    while total < chunks_wanted:
        for source in sources:
            shutil.copytree(source, target / f"copy{copy:03d}" / source.parent.parent.name)
        copy += 1
        total = engine.ingest(target).chunks_total
        print(f"  index holds {total} chunks", flush=True)
    return total


def questions(limit: int) -> list[str]:
    path = SHARED / "payload" / "queries.jsonl"
    if path.exists():
        return [json.loads(line)["question"] for line in path.read_text().splitlines()[:limit]]
    return [line.lstrip("# ") for p in (ROOT / "docs").rglob("*.md") for line in p.read_text().splitlines() if line.startswith("#")][:limit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        engine = Engine(Settings(data_dir=Path(state) / "state", kb="bench", _env_file=None))
        total = build_corpus(Path(state) / "corpus", engine, args.chunks)
        asked = questions(args.queries)
        engine.search(asked[0])  # load the retriever
        search_ms, encode_ms = [], []
        for question in asked:
            started = time.perf_counter()
            engine.search(question, k=5)
            search_ms.append(1000 * (time.perf_counter() - started))
            started = time.perf_counter()
            engine.embedder.encode([question])
            encode_ms.append(1000 * (time.perf_counter() - started))
    p50, p99 = percentile(search_ms, 0.5), percentile(search_ms, 0.99)
    e50, e99 = percentile(encode_ms, 0.5), percentile(encode_ms, 0.99)
    print(f"index             {total} chunks, {len(asked)} queries")
    print(f"search            p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   mean {statistics.mean(search_ms):7.1f} ms")
    print(f"encode query only p50 {e50:7.1f} ms   p99 {e99:7.1f} ms")
    print(f"ratio             p50 {p50 / e50:5.2f}x     p99 {p99 / e99:5.2f}x  (search / encoding the query alone)")


if __name__ == "__main__":
    main()
