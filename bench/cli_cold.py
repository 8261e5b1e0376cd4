"""How long a first-time user waits on the command line (issue 15 item 13), on this machine.

Prints, for a cold ``firstreply ask`` (a fresh process each run): as before issue 15 (the question encoded by
torch and the model: ``FIRSTREPLY_QUERY_ENCODER=torch``), with the verified ONNX graph (no torch, but the
engine, Chroma and the database in process), and through a ``firstreply serve`` running on the same data folder
(one plain HTTP request: no engine imported at all); and for ``firstreply serve``: start to first answer. Each
line gives the median wall time, the runs, and the median CPU time of the ``ask`` process (user + system), which
moves less than wall time when other work shares the machine; the load average is printed before and after.

Run: ``python -m bench.cli_cold --runs 3`` (``--no-torch`` skips the slow torch line).

Measured on the shared 2-core development machine, main's code (before) and this one (after) alternating, load
average 7-10 from other work, medians of 3 (wall; CPU of the ``ask`` process):

- via a running serve: before 4.56 and 3.52 s (CPU 1.34 and 1.29 s), after 0.79 and 1.38 s (CPU 0.37 and 0.43 s):
  the served path no longer imports the engine, aiohttp, numpy or SQLAlchemy;
- ONNX, in process: CPU 2.83 and 2.45 s before, 2.67 and 2.57 s after (paired single runs, 6 each: 2.27 against
  2.12 s); what is left is the third-party imports an in-process answer needs (Chroma ~0.6-0.9 s, SQLAlchemy,
  pydantic, bm25s and SciPy, NumPy, ONNX Runtime);
- at load ~1-4, before: torch 14.3 s, ONNX 3.44 s, via serve 1.05 s, serve start to first answer 9.7 s.

Second round (``serve`` encodes questions with the verified graph and loads torch only to embed documents; a
cold ask imports bm25s without SciPy): ``--runs 3 --no-torch``, this code and main's alternating, load average
2.4-4.4 at the start of each (it rose to ~10 during main's last run):

- serve, start to first answer: after 3.98 and 2.87 s, before 18.32 and 49.51 s (``--runs 2``, load 3.7-8.5:
  after 14.21 and 2.60 s, before 17.15 and 11.34 s);
- ONNX ask in process, CPU: after 2.30 and 2.03 s, before 2.46 and 2.47 s (``--runs 2``: 2.67 and 1.93 s
  against 2.34 and 2.15 s); paired runs, 6 each at load ~10: CPU median 3.03 s after, 3.21 s before.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(command: list[str], env: dict, cpu: list[float] | None = None) -> float:
    """Wall seconds of one run of ``command``; its CPU seconds are appended to ``cpu``."""
    spent = _children_cpu()
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or "zoom" not in result.stdout or "didn't answer" in result.stderr:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    wall = time.perf_counter() - started
    if cpu is not None:
        cpu.append(_children_cpu() - spent)
    return wall


def line(name: str, walls: list[float], cpu: list[float] | None = None) -> str:
    spent = f"  CPU median {statistics.median(cpu):.2f} s" if cpu else ""
    return f"{name:<41} median {statistics.median(walls):.2f} s{spent}  {[round(t, 2) for t in walls]}"


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
    parser.add_argument("--no-torch", action="store_true", help="skip the cold ask with the torch encoder (slow)")
    options = parser.parse_args()
    runs = options.runs
    folder = Path(tempfile.mkdtemp(prefix="cli-cold-"))
    env = {**os.environ, "FIRSTREPLY_DATA_DIR": str(folder / "state"), "FIRSTREPLY_KB": "bench"}
    print(f"cores: {os.cpu_count()}, runs: {runs}, load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        subprocess.run([FIRSTREPLY, "ingest", str(SAMPLE)], env=env, check=True, capture_output=True, timeout=600)
        ask = [FIRSTREPLY, "ask", QUESTION]
        torch_cpu: list[float] = []
        torch = [] if options.no_torch else [timed(ask, {**env, "FIRSTREPLY_QUERY_ENCODER": "torch"}, torch_cpu)
                                              for _ in range(runs)]
        local_cpu: list[float] = []
        local = [timed(ask, env, local_cpu) for _ in range(runs)]
        starts, served, served_cpu = [], [], []
        for _ in range(runs):
            server, _url, start = start_server(env)
            starts.append(start)
            try:
                served.append(timed(ask, env, served_cpu))
            finally:
                server.send_signal(signal.SIGINT)
                server.wait(timeout=60)
        if torch:
            print(line("firstreply ask, cold, torch (before):", torch, torch_cpu))
        print(line("firstreply ask, cold, ONNX, no torch:", local, local_cpu))
        print(line("firstreply ask, cold, via running serve:", served, served_cpu))
        print(line("firstreply serve, start to first answer:", starts))
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
