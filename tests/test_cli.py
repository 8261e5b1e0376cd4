"""The `firstreply` command as a user runs it."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from firstreply.cli import cli

FIRSTREPLY = str(Path(sys.executable).with_name("firstreply"))


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .env, state under tmp_path
    monkeypatch.setenv("FIRSTREPLY_DATA_DIR", str(tmp_path / "state"))
    return {**os.environ, "FIRSTREPLY_DATA_DIR": str(tmp_path / "state")}


def test_the_command_lives_in_the_composition_root(env):
    """Issue 19: the console script and ``python -m firstreply`` both run firstreply.cli, with every group."""
    import tomllib

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"firstreply": "firstreply.cli:main"}
    result = subprocess.run([sys.executable, "-m", "firstreply", "--help"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == {"ask", "discord", "eval", "github", "github-app", "golden", "history", "ingest", "maintainer", "review",
                      "search", "secrets", "serve", "tune"}


def test_a_bad_setting_stops_the_command_with_one_line(env):
    result = subprocess.run([FIRSTREPLY, "search", "x"], env={**env, "FIRSTREPLY_SEARCH_K": "lots"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: bad setting FIRSTREPLY_SEARCH_K: Input should be a valid integer, unable to parse string as an integer"
    ]
    assert "Traceback" not in result.stderr


def test_ingest_search_and_ask_from_the_command_line(env, sample_project):
    runner = CliRunner()
    ingest = runner.invoke(cli, ["ingest", str(sample_project), "--kb", "tiny", "--repo-url", "https://github.com/org/tinyviz", "--ref", "v1"])
    assert ingest.exit_code == 0, ingest.output
    assert "tiny: 10 files: 7 added, 0 updated, 0 removed, 0 unchanged" in ingest.output
    summary = next(line for line in ingest.output.splitlines() if line.startswith("tiny: "))
    assert "chunks: 18 embedded, 0 reused, 0 deleted, 18 in the index" in summary  # one line, however narrow
    assert "unreadable docs/legacy.md: not UTF-8 text" in ingest.output

    again = runner.invoke(cli, ["ingest", str(sample_project), "--kb", "tiny", "--json", "--repo-url", "https://github.com/org/tinyviz", "--ref", "v1"])
    report = json.loads(again.stdout)
    assert report["chunks_embedded"] == 0 and report["unchanged"] == 7

    search = runner.invoke(cli, ["search", "zoom the camera", "--kb", "tiny", "--json", "-k", "2"])
    hits = json.loads(search.stdout)
    assert hits[0]["path"] == "docs/guide/camera.rst"
    assert hits[0]["url"].startswith("https://github.com/org/tinyviz/blob/v1/docs/guide/camera.rst#L")
    assert {"score", "dense", "keyword", "heading_path", "start_line", "end_line", "title"} <= set(hits[0])

    ask = runner.invoke(cli, ["ask", "How do I zoom the camera?", "--kb", "tiny"])
    assert ask.exit_code == 0
    assert "scene.zoom(2)" in ask.output
    assert "Sources:\n  [1] Camera basics" in ask.output


def test_eval_retrieval_reports_recall_and_mrr(env, sample_project, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(json.dumps(q) for q in [
        {"id": "q1", "question": "How do I zoom in on the scene?"},
        {"id": "q2", "question": "make my actor half transparent", "title": "opacity"},
    ]))
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tdoc-path\nq1\tdocs/guide/camera.rst\nq2\tdocs/guide/colors.mdx\n")
    result = CliRunner().invoke(cli, ["eval", "retrieval", "--corpus", str(sample_project), "--queries", str(queries),
                                      "--qrels", str(qrels), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["queries"] == 2
    assert report["recall@10"] == 1.0
    assert 0.5 <= report["mrr@10"] <= 1.0


def test_search_before_any_ingest_says_what_to_do(env):
    result = CliRunner().invoke(cli, ["search", "anything", "--kb", "empty"])
    assert result.exit_code == 0
    assert "firstreply ingest PATH" in result.output


def test_ingest_of_a_missing_folder_is_a_usage_error(env):
    result = CliRunner().invoke(cli, ["ingest", "/no/such/folder"])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_serve_runs_the_api_until_interrupted(env, sample_project):
    import signal
    import socket
    import time
    import urllib.request

    CliRunner().invoke(cli, ["ingest", str(sample_project), "--kb", "served"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([FIRSTREPLY, "serve", "--port", str(port)], env={**env, "FIRSTREPLY_KB": "served"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                ready = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2))
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
                time.sleep(0.3)
        assert ready["status"] == "ready"
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/answer", method="POST",
                                         data=json.dumps({"question": "How do I zoom the camera?"}).encode(),
                                         headers={"Content-Type": "application/json"})
        answer = json.load(urllib.request.urlopen(request, timeout=30))
        assert "scene.zoom(2)" in answer["text"] and answer["citations"]
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0
    assert f"firstreply engine on http://127.0.0.1:{port}" in out
    assert "only clients on this machine" in err


def test_serve_says_the_address_it_really_listens_on_and_starts_quietly(env, sample_project):
    """Issue 15 item 14: `--port 0` picks a free port, and the first line says which; no alembic or
    sentence-transformers INFO chatter on a normal start."""
    import queue
    import signal
    import threading
    import urllib.request

    CliRunner().invoke(cli, ["ingest", str(sample_project), "--kb", "served"])
    server = subprocess.Popen([FIRSTREPLY, "serve", "--port", "0"], env={**env, "FIRSTREPLY_KB": "served"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=120)
        assert first.startswith("firstreply engine on http://127.0.0.1:") and ":0" not in first, first
        url = first.split(" on ", 1)[1].split(",")[0].strip()
        ready = json.load(urllib.request.urlopen(f"{url}/readyz", timeout=30))
        assert ready["status"] == "ready"
        marker = json.loads((Path(env["FIRSTREPLY_DATA_DIR"]) / "serving.json").read_text())
        # `firstreply ask` finds the server here; it checks the instance id (another data folder's server refuses)
        assert marker.keys() == {"url", "pid", "instance"} and (marker["url"], marker["pid"]) == (url, server.pid)
        assert re.fullmatch(r"[0-9a-f]{32}", marker["instance"]), marker
    finally:
        server.send_signal(signal.SIGINT)
        _out, err = server.communicate(timeout=30)
    assert "alembic" not in err and "Loading SentenceTransformer" not in err, err
    assert not (Path(env["FIRSTREPLY_DATA_DIR"]) / "serving.json").exists()


def test_the_github_app_refuses_to_start_half_configured_in_one_line(env):
    result = subprocess.run([FIRSTREPLY, "github-app"], env={**env, "FIRSTREPLY_GITHUB_APP_SLUG": "helper"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: missing setting FIRSTREPLY_GITHUB_APP_ID, FIRSTREPLY_GITHUB_WEBHOOK_SECRET, "
        "FIRSTREPLY_GITHUB_PRIVATE_KEY (or FIRSTREPLY_GITHUB_PRIVATE_KEY_FILE): required to run the GitHub App"
    ]


async def _queue_a_draft_and_a_failed_job(database_url: str) -> int:
    from engine.store.database import create_engine, migrate
    from github_app.store import GitHubStore

    database = create_engine(database_url)
    await migrate(database)
    store = GitHubStore(database)
    await store.save_installation({"id": 5, "account": {"login": "org"}})
    await store.save_repositories(5, [{"id": 77, "full_name": "org/project"}])
    job = await store.enqueue("d-1", "discussion", "created", "discussion_created", {}, key="discussion:D_1")
    claimed = await store.claim("w", 30)
    await store.fail(claimed.id, "w", "GraphQL: Discussion is locked")
    await store.hold_reply("D_1", job, 30, kind="first", discussion_id="D_1", repository="org/project",
                           installation_id=5, discussion_number=3)
    await store.update_reply("D_1", status="draft", body="Use scene.zoom(2) [1].", release=True)
    reply = await store.reply("D_1")
    await database.dispose()
    return reply.id


def test_maintainers_steer_the_github_app_from_the_command_line(env, tmp_path):
    import asyncio

    reply_id = asyncio.run(_queue_a_draft_and_a_failed_job(f"sqlite+aiosqlite:///{tmp_path}/state/firstreply.db"))
    runner = CliRunner()
    jobs = runner.invoke(cli, ["github", "jobs", "--status", "failed"])
    assert jobs.exit_code == 0 and "failed" in jobs.output and "Discussion is locked" in jobs.output
    assert runner.invoke(cli, ["github", "retry", "1"]).exit_code == 0
    assert "queued" in runner.invoke(cli, ["github", "jobs"]).output
    assert runner.invoke(cli, ["github", "retry", "1"]).exit_code == 1  # no longer failed

    drafts = runner.invoke(cli, ["github", "drafts"])
    assert f"[{reply_id}] org/project#3" in drafts.output and "scene.zoom(2)" in drafts.output
    (tmp_path / "fixed.md").write_text("Use scene.zoom(2.5) [1].")
    approve = runner.invoke(cli, ["github", "approve", str(reply_id), "--by", "ada", "--body-file", str(tmp_path / "fixed.md")])
    assert approve.exit_code == 0 and "approved" in approve.output
    assert "no drafts" in runner.invoke(cli, ["github", "drafts"]).output
    assert "post_reply" in runner.invoke(cli, ["github", "jobs"]).output  # queued for a running App to post

    assert "org/project" in runner.invoke(cli, ["github", "repos"]).output
    switched = runner.invoke(cli, ["github", "switch", "org/project", "off", "--by", "ada"])
    assert switched.exit_code == 0 and "replies are off for org/project" in switched.output
    assert " off" in runner.invoke(cli, ["github", "repos"]).output
    missing = runner.invoke(cli, ["github", "switch", "org/other", "off"])
    assert missing.exit_code == 1 and "no repository 'org/other'" in missing.output


def test_maintainers_review_and_golden_records_from_the_command_line(env, sample_project, tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(sample_project)]).exit_code == 0
    assert runner.invoke(cli, ["ask", "How do I zoom the camera in?"]).exit_code == 0
    added = runner.invoke(cli, ["maintainer", "add", "ada"])
    assert added.exit_code == 0 and added.output.strip().splitlines()[-1].startswith("frm_")
    assert "ada" in runner.invoke(cli, ["maintainer", "list"]).output
    assert runner.invoke(cli, ["maintainer", "add", "ada"]).exit_code == 1  # names are unique

    listed = runner.invoke(cli, ["review", "list", "--verdict", "unreviewed"])
    answer_id = listed.output.split()[0]
    assert listed.exit_code == 0 and "How do I zoom the camera in?" in listed.output
    assert "scene.zoom(2)" in runner.invoke(cli, ["review", "show", answer_id]).output
    (tmp_path / "fix.txt").write_text("Call scene.zoom(2.5).")
    corrected = runner.invoke(cli, ["review", "correct", answer_id, "--by", "ada", "--text-file", str(tmp_path / "fix.txt")])
    assert corrected.exit_code == 0 and "golden record #1" in corrected.output
    rejected = runner.invoke(cli, ["review", "reject", answer_id, "--by", "ada", "--reason", ""])
    assert rejected.exit_code == 1 and "say why" in rejected.output

    (tmp_path / "qa.csv").write_text("question,answer\nHow do I install it?,pip install tinyviz\n,\n")
    imported = runner.invoke(cli, ["golden", "import", str(tmp_path / "qa.csv"), "--by", "ada"])
    assert imported.exit_code == 0 and "1 added, 1 skipped" in imported.output
    exported = runner.invoke(cli, ["golden", "export", "--format", "jsonl"])
    assert [json.loads(line)["answer"] for line in exported.output.splitlines()] == ["Call scene.zoom(2.5).",
                                                                                    "pip install tinyviz"]
    assert runner.invoke(cli, ["maintainer", "remove", "ada"]).exit_code == 0


def test_a_full_disk_during_ingest_says_the_disk_is_full(env, sample_project, monkeypatch):
    import shutil
    from collections import namedtuple

    from chromadb.errors import InternalError

    from engine.index.vectors import VectorStore

    def compaction_failed(*_args, **_kwargs):
        raise InternalError("Error in compaction: Error executing plan: No space left on device")  # Chroma's own words

    monkeypatch.setattr(VectorStore, "upsert", compaction_failed)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10**9, 10**9 - 4096, 4096))
    result = CliRunner().invoke(cli, ["ingest", str(sample_project), "--kb", "full"])
    assert result.exit_code == 1
    assert "is full (4 KiB free)" in result.output and "compaction" not in result.output


def test_serve_answers_from_what_was_ingested_and_says_loudly_when_nothing_was(tmp_path):
    """Issue 15 item 2: `serve` answered from an empty "default" knowledge base without a word."""
    from engine.config import Settings
    from firstreply.cli.serve import serving_plan

    settings = Settings(data_dir=tmp_path / "state", _env_file=None)
    same, warning = serving_plan(settings, pinned=False)
    assert same.kb == "default" and "Nothing to answer from" in warning and "firstreply ingest" in warning
    for name in ("payload", "acme"):
        (tmp_path / "state" / "kb" / name).mkdir(parents=True)
        (tmp_path / "state" / "kb" / name / "manifest.json").write_text("{}")
    (tmp_path / "state" / "kb" / "default" / "keywords").mkdir(parents=True)  # golden records only: not ingested
    chosen, warning = serving_plan(settings, pinned=False)
    assert chosen.kb == "acme" and warning is None
    chosen, warning = serving_plan(settings.model_copy(update={"kb": "payload"}), pinned=False)
    assert chosen.kb == "payload" and warning is None
    pinned, warning = serving_plan(settings.model_copy(update={"kb": "docs"}), pinned=True)
    assert pinned.kb == "docs" and "'docs' has not been ingested (ingested: acme, payload)" in warning


async def test_ask_uses_the_server_running_on_the_same_data_folder(make_engine, tmp_path, monkeypatch):
    """Issue 15 item 13: with a server running (it has the model loaded), `firstreply ask` asks it instead of
    loading torch and the model again; a marker left by a dead server is ignored."""
    import asyncio

    from fakes.server import serve

    from firstreply.local_server import MARKER, announce, running_server
    from firstreply.serve import build_app  # the app `firstreply serve` runs

    state = tmp_path / "cli-state"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FIRSTREPLY_DATA_DIR", str(state))
    (state).mkdir()
    (state / MARKER).write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": 2**22 + 12345}))  # no such process
    assert running_server(state) is None

    engine = make_engine()
    async with serve(build_app(engine)) as url:
        announce(state, url)
        before = await engine.store.count_answers()
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["ask", "How do I zoom the camera?", "--kb", "sample"])
        assert result.exit_code == 0, result.output
        assert "scene.zoom(2)" in result.output and "Sources:\n  [1] Camera basics" in result.output
        assert await engine.store.count_answers() == before + 1  # answered (and logged) by the server
    assert not (state / "firstreply.db").exists()  # the CLI opened no database of its own


def test_a_cold_ask_encodes_the_question_without_torch_once_the_graph_is_verified(env, sample_project):
    """Issue 15 item 13: ingest exports and verifies the question graph; `ask` then loads neither torch nor
    sentence-transformers, and answers as before. With the torch encoder configured it does load them."""
    ingest = subprocess.run([FIRSTREPLY, "ingest", str(sample_project), "--kb", "cold"], env=env,
                            capture_output=True, text=True, timeout=600)
    assert ingest.returncode == 0, ingest.stderr
    graphs = sorted(p.name for p in (Path(env["FIRSTREPLY_DATA_DIR"]) / "onnx").iterdir())
    assert any(name.endswith(".onnx.verified") for name in graphs), graphs
    probe = ("import sys\nfrom firstreply.cli import cli\n"
             "try:\n    cli(['ask', 'How do I zoom the camera?', '--kb', 'cold'])\nexcept SystemExit:\n    pass\n"
             "print('torch loaded:', 'torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
             "print('scipy loaded:', 'scipy' in sys.modules)\n")
    cold = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert "scene.zoom(2)" in cold.stdout and "Sources:\n  [1] Camera basics" in cold.stdout, cold.stderr
    assert "torch loaded: False False" in cold.stdout
    assert "scipy loaded: False" in cold.stdout  # bm25s imported without it: scoring needs NumPy only
    warm = subprocess.run([sys.executable, "-c", probe], env={**env, "FIRSTREPLY_QUERY_ENCODER": "torch"},
                          capture_output=True, text=True, timeout=300)
    assert "scene.zoom(2)" in warm.stdout and "torch loaded: True True" in warm.stdout


SERVE_PROBE = ("import atexit, sys\n"
               "atexit.register(lambda: print('torch loaded:', 'torch' in sys.modules,\n"
               "                              'sentence_transformers' in sys.modules, flush=True))\n"
               "from firstreply.cli import cli\n"
               "cli(['serve', '--port', '0'])\n")


def serve_and_ask(env: dict) -> tuple[dict, dict, str]:
    """`firstreply serve` run until interrupted, with an exit hook that says whether torch was imported: its
    /readyz and its answer to one question, and what it printed."""
    import queue
    import signal
    import threading
    import urllib.request

    server = subprocess.Popen([sys.executable, "-c", SERVE_PROBE], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=300)
        url = first.split(" on ", 1)[1].split(",")[0].strip()
        ready = json.load(urllib.request.urlopen(f"{url}/readyz", timeout=60))
        request = urllib.request.Request(f"{url}/v1/answer", method="POST",
                                         data=json.dumps({"question": "How do I zoom the camera?"}).encode(),
                                         headers={"Content-Type": "application/json"})
        answer = json.load(urllib.request.urlopen(request, timeout=60))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    printed = []
    while not lines.empty():
        printed.append(lines.get())
    return ready, answer, "".join(printed)


def test_serve_answers_from_the_verified_graph_without_torch_and_falls_back_to_it(env, sample_project):
    """Issue 15 item 13: once ingest has exported and verified the question graph, `serve` is ready and answers
    without importing torch or sentence-transformers (only embedding documents needs them). Without a verified
    graph it loads the model as before, verifies the graph again, and the next serve is torch-free."""
    env = {**env, "FIRSTREPLY_KB": "served"}
    ingest = subprocess.run([FIRSTREPLY, "ingest", str(sample_project)], env=env, capture_output=True, text=True,
                            timeout=600)
    assert ingest.returncode == 0, ingest.stderr
    onnx = Path(env["FIRSTREPLY_DATA_DIR"]) / "onnx"
    ready, answer, printed = serve_and_ask(env)
    assert ready == {"status": "ready", "checks": {"database": "ok", "vectors": "ok", "model": "ok"}}
    assert "scene.zoom(2)" in answer["text"] and answer["citations"]
    assert "torch loaded: False False" in printed, printed

    markers = sorted(onnx.glob("*.verified"))
    assert markers
    for marker in markers:
        marker.unlink()  # a graph nobody verified is not used
    ready, answer, printed = serve_and_ask(env)
    assert ready["status"] == "ready" and "scene.zoom(2)" in answer["text"]
    assert "torch loaded: True True" in printed, printed
    assert sorted(onnx.glob("*.verified")) == markers  # verified again on the way
