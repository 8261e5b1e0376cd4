"""Engine overhead under load: what the engine adds on top of a model that takes a fixed 300 ms.

    python -m bench.engine_overhead [--clients 32] [--seconds 30] [--latency 0.3]

A fake OpenAI-compatible provider, in a process of its own, answers every call after exactly
``--latency`` seconds.
``firstreply serve`` runs as its own process over an index of this repository's docs/, with
that provider configured; ``--clients`` concurrent clients post questions to /v1/answer for
``--seconds``. Printed: throughput against the ideal (clients / latency), and the p50/p99
latency the engine added on top of the provider's (targets: p50 <= 30 ms, p99 <= 150 ms,
throughput >= 0.9 of ideal).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from engine.config import IndexSettings

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "How do I index my project's documentation?",
    "Which settings does firstreply have?",
    "How does hybrid retrieval rank passages?",
    "How do I measure retrieval quality?",
    "What happens when nothing relevant is found?",
    "Can I use a Chroma server instead of the embedded store?",
    "How are links to the sources built?",
    "What does incremental ingestion do when a file changes?",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PROVIDER = """
import asyncio, sys
from aiohttp import web

async def complete(request):
    body = await request.json()
    await asyncio.sleep(float(sys.argv[2]))
    return web.json_response({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "From the docs: see [1]."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": len(body["messages"][1]["content"]) // 4, "completion_tokens": 6},
    })

app = web.Application()
app.router.add_post("/v1/chat/completions", complete)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


async def fixed_latency_provider(latency: float) -> tuple[subprocess.Popen, str]:
    """The provider in a process of its own, so the load generator's event loop can't delay its replies."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", PROVIDER, str(port), str(latency)])
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                                     json={"messages": [{}, {"content": ""}]}):
                    break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    return process, f"http://127.0.0.1:{port}/v1"


def engine_side(database: Path, newest: int) -> list[float]:
    """The engine's own answer times (retrieval to logging, provider included) for the last answers."""
    import sqlite3

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return [row[0] for row in db.execute("SELECT latency_ms FROM answers ORDER BY created_at DESC LIMIT ?", (newest,))]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


async def load(url: str, clients: int, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def client(number: int, http: aiohttp.ClientSession) -> None:
        nonlocal failures
        index = number
        while time.perf_counter() < deadline:
            body = {"question": QUESTIONS[index % len(QUESTIONS)], "user_id": f"bench-{number}"}
            index += 1
            started = time.perf_counter()
            async with http.post(f"{url}/v1/answer", json=body) as response:
                await response.read()
                if response.status != 200:
                    failures += 1
                    continue
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": "Bearer bench"}) as http:
        await asyncio.gather(*(client(n, http) for n in range(clients)))
    return latencies, failures


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    runner, provider_url = await fixed_latency_provider(args.latency)
    with tempfile.TemporaryDirectory() as state:
        port = free_port()
        env = {**os.environ, "FIRSTREPLY_DATA_DIR": state, "FIRSTREPLY_KB": "bench",
               "FIRSTREPLY_PROVIDERS": json.dumps(["openai:fixed-latency"]), "FIRSTREPLY_OPENAI_BASE_URL": provider_url,
               "FIRSTREPLY_API_KEYS": json.dumps(["bench"]), "FIRSTREPLY_RATE_LIMIT_PER_MINUTE": "1000000",
               "FIRSTREPLY_ABSTAIN_THRESHOLDS": json.dumps({"api": 0.0}), "FIRSTREPLY_LLM_RETRIES": "1"}
        firstreply = str(Path(sys.executable).with_name("firstreply"))
        subprocess.run([firstreply, "ingest", str(ROOT / "docs")], env=env, check=True, capture_output=True)
        server = subprocess.Popen([firstreply, "serve", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    try:
                        async with http.get(f"{url}/readyz") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.2)
            await load(url, args.clients, 3)  # warm up
            latencies, failures = await load(url, args.clients, args.seconds)
            inside = engine_side(Path(state) / "firstreply.db", len(latencies))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
            runner.terminate()
            runner.wait(timeout=10)
    throughput = len(latencies) / args.seconds
    ideal = args.clients / args.latency
    added = [1000 * (x - args.latency) for x in latencies]
    print(f"load              {args.clients} clients for {args.seconds:g} s, provider latency {1000 * args.latency:.0f} ms, "
          f"questions encoded by {os.environ.get('FIRSTREPLY_QUERY_ENCODER', IndexSettings.default('query_encoder'))} (FIRSTREPLY_QUERY_ENCODER)")
    print(f"answers           {len(latencies)} ok, {failures} failed")
    print(f"throughput        {throughput:7.1f} answers/s   ideal {ideal:.1f}/s   ratio {throughput / ideal:.3f} (target >= 0.9)")
    print(f"added latency     p50 {percentile(added, 0.5):7.1f} ms (target <= 30)   p99 {percentile(added, 0.99):7.1f} ms (target <= 150)")
    within = [ms - 1000 * args.latency for ms in inside]
    print(f"  of which inside the pipeline (retrieval, prompt, citations; provider time taken off): "
          f"p50 {percentile(within, 0.5):7.1f} ms   p99 {percentile(within, 0.99):7.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
