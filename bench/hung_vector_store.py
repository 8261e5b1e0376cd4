"""What clients see while the Chroma server hangs: how long /healthz, /readyz and answers take.

    python -m bench.hung_vector_store [--timeout 10] [--answers 20]

A real `chroma run` and a real `firstreply serve` (its own process, FIRSTREPLY_CHROMA_URL pointing at
that server, FIRSTREPLY_CHROMA_TIMEOUT_SECONDS=--timeout, question encoder torch) over an index of this
repository's docs/. The Chroma process is stopped with SIGSTOP (it accepts connections, answers nothing),
and then: /healthz, /readyz, then --answers questions one after another; printed are each one's status
and latency. After SIGCONT: how long until /readyz says ready again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_for(url: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


async def timed(http: aiohttp.ClientSession, method: str, url: str, **kwargs) -> tuple[int | str, float]:
    started = time.perf_counter()
    try:
        async with http.request(method, url, **kwargs) as response:
            await response.read()
            status: int | str = response.status
    except asyncio.TimeoutError:
        status = "no answer"
    return status, time.perf_counter() - started


async def main(timeout: float, answers: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="firstreply-hung-"))
    chroma_port, engine_port = free_port(), free_port()
    env = {**os.environ, "FIRSTREPLY_DATA_DIR": str(work / "state"), "FIRSTREPLY_CHROMA_URL": f"http://127.0.0.1:{chroma_port}",
           "FIRSTREPLY_CHROMA_TIMEOUT_SECONDS": str(timeout), "FIRSTREPLY_QUERY_ENCODER": "torch",
           "FIRSTREPLY_PORT": str(engine_port), "FIRSTREPLY_RATE_LIMIT_PER_MINUTE": "100000"}
    chroma = subprocess.Popen([str(BIN / "chroma"), "run", "--path", str(work / "chroma"), "--host", "127.0.0.1",
                               "--port", str(chroma_port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    engine = None
    try:
        await wait_for(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat")
        subprocess.run([str(BIN / "firstreply"), "ingest", str(ROOT / "docs")], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        engine = subprocess.Popen([str(BIN / "firstreply"), "serve"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{engine_port}"
        await wait_for(f"{base}/readyz")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            print(f"before: answer {await timed(http, 'POST', f'{base}/v1/answer', json={'question': 'How do I ingest?'})}")
            chroma.send_signal(signal.SIGSTOP)
            print(f"Chroma stopped (SIGSTOP); FIRSTREPLY_CHROMA_TIMEOUT_SECONDS={timeout:g}")
            for name in ("healthz", "readyz"):
                status, seconds = await timed(http, "GET", f"{base}/{name}")
                print(f"  /{name}: {status} in {seconds * 1000:.0f} ms")
            latencies = []
            for index in range(answers):
                status, seconds = await timed(http, "POST", f"{base}/v1/answer", json={"question": "How do I ingest?"})
                latencies.append(seconds)
                if index < 3 or index == answers - 1:
                    print(f"  answer {index + 1}: {status} in {seconds * 1000:.0f} ms")
            ordered = sorted(latencies)
            print(f"  {answers} answers: p50 {ordered[len(ordered) // 2] * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms")
            status, seconds = await timed(http, "GET", f"{base}/healthz")
            print(f"  /healthz again: {status} in {seconds * 1000:.0f} ms")
            chroma.send_signal(signal.SIGCONT)
            resumed = time.perf_counter()
            while (await timed(http, "GET", f"{base}/readyz"))[0] != 200:
                await asyncio.sleep(0.2)
            print(f"Chroma resumed (SIGCONT): /readyz ready again after {time.perf_counter() - resumed:.1f} s")
    finally:
        chroma.send_signal(signal.SIGCONT)
        for process in (engine, chroma):
            if process is not None:
                process.terminate()
                process.wait(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=10.0, help="FIRSTREPLY_CHROMA_TIMEOUT_SECONDS")
    parser.add_argument("--answers", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.timeout, arguments.answers))
