"""How long a first-time user waits on the command line (issue 15 item 13), on this machine.

Prints, for a cold ``firstreply ask`` (a fresh process each run): as before issue 15 (the question encoded by
torch and the model: ``FIRSTREPLY_QUERY_ENCODER=torch``), with the verified ONNX graph (no torch), and through a
``firstreply serve`` running on the same data folder; and for ``firstreply serve``: start to first answer. Run: ``python -m bench.cli_cold --runs 2``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

FIRSTREPLY = str(Path(sys.executable).with_name("firstreply"))
SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "sample_project"
QUESTION = "How do I zoom the camera in?"


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or "zoom" not in result.stdout:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return time.perf_counter() - started


def start_server(env: dict) -> tuple[subprocess.Popen, str, float]:
    started = time.perf_counter()
    server = subprocess.Popen([FIRSTREPLY, "serve", "--port", "0"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline()
    url = line.split(" on ", 1)[1].split(",")[0].strip()
    request = urllib.request.Request(f"{url}/v1/answer", method="POST", data=json.dumps({"question": QUESTION}).encode(),
                                     headers={"Content-Type": "application/json"})
    json.load(urllib.request.urlopen(request, timeout=300))
    return server, url, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    folder = Path(tempfile.mkdtemp(prefix="cli-cold-"))
    env = {**os.environ, "FIRSTREPLY_DATA_DIR": str(folder / "state"), "FIRSTREPLY_KB": "bench"}
    try:
        subprocess.run([FIRSTREPLY, "ingest", str(SAMPLE)], env=env, check=True, capture_output=True, timeout=600)
        ask = [FIRSTREPLY, "ask", QUESTION]
        torch = [timed(ask, {**env, "FIRSTREPLY_QUERY_ENCODER": "torch"}) for _ in range(runs)]
        local = [timed(ask, env) for _ in range(runs)]
        starts, served = [], []
        for _ in range(runs):
            server, _url, start = start_server(env)
            starts.append(start)
            try:
                served.append(timed(ask, env))
            finally:
                server.send_signal(signal.SIGINT)
                server.wait(timeout=60)
        print(f"cores: {os.cpu_count()}, runs: {runs}")
        print(f"firstreply ask, cold, torch (before):    median {statistics.median(torch):.2f} s  {[round(t, 2) for t in torch]}")
        print(f"firstreply ask, cold, ONNX, no torch:    median {statistics.median(local):.2f} s  {[round(t, 2) for t in local]}")
        print(f"firstreply ask, cold, via running serve: median {statistics.median(served):.2f} s  {[round(t, 2) for t in served]}")
        print(f"firstreply serve, start to first answer: median {statistics.median(starts):.2f} s  {[round(t, 2) for t in starts]}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
