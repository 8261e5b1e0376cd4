"""Issue 15 item 13: `firstreply ask` from a cold start. With a `firstreply serve` running on the data folder it
asks that server with one plain HTTP request and imports no engine; when the server does not answer (too slow,
an error status, another data folder's server, a reply that is not an answer) it answers by itself, and the
output is the same either way."""

import asyncio
import json
import shutil
import subprocess
import sys

import pytest
from aiohttp import web
from click.testing import CliRunner
from fakes.server import serve

from firstreply import local_server
from firstreply.cli import cli

QUESTION = "How do I zoom the camera?"


@pytest.fixture
def folder(indexed_sample, embedder, tmp_path, monkeypatch):
    """A data folder of its own holding the sample index (the CLI writes its database and the marker there),
    answered in process with the session's embedder (loading the model again would only cost time)."""
    from engine.service import Engine

    state = tmp_path / "state"
    shutil.copytree(indexed_sample, state, ignore=shutil.ignore_patterns("*.db*", local_server.MARKER))
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("FIRSTREPLY_DATA_DIR", str(state))
    monkeypatch.setenv("FIRSTREPLY_KB", "sample")
    monkeypatch.setattr(Engine, "embedder", embedder)
    return state


async def invoke(*args: str):
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


def guarded(engine) -> tuple[web.Application, str]:
    """The app `firstreply serve` runs, with the instance check it installs."""
    from firstreply.serve import build_app

    app = build_app(engine)
    return app, local_server.guard(app)


async def test_a_served_ask_imports_no_engine_and_is_logged_by_the_server(folder, make_engine):
    engine = make_engine()
    app, instance = guarded(engine)
    probe = ("import sys\nfrom firstreply.cli import cli\n"
             f"try:\n    cli(['ask', {QUESTION!r}])\nexcept SystemExit:\n    pass\n"
             "heavy = ['engine.service', 'engine.client', 'engine.index.retriever', 'chromadb', 'sqlalchemy', 'numpy',\n"
             "         'aiohttp', 'onnxruntime', 'torch', 'sentence_transformers', 'bm25s']\n"
             "print('loaded:', [m for m in heavy if m in sys.modules])\n")
    async with serve(app) as url:
        local_server.announce(folder, url, instance)
        before = await engine.store.count_answers()
        child = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", probe], capture_output=True, text=True,
                                        timeout=300)
        assert "scene.zoom(2)" in child.stdout and "Sources:\n  [1] Camera basics" in child.stdout, child.stderr
        assert "loaded: []" in child.stdout, child.stdout
        assert child.stderr == ""  # no "didn't answer" notice
        assert await engine.store.count_answers() == before + 1  # the server answered, and logged it
    assert not (folder / "firstreply.db").exists()  # the CLI opened no database of its own


@pytest.mark.parametrize("question", [QUESTION, "What is the airspeed velocity of an unladen swallow?"])
async def test_a_served_answer_prints_exactly_as_one_answered_in_process(folder, make_engine, question):
    """Text, citations and the abstention alike (the second question is not in the docs), with exit status 0."""
    here = await invoke("ask", question)
    here_json = await invoke("ask", question, "--json")
    assert (folder / "firstreply.db").exists()  # answered in process
    app, instance = guarded(make_engine())
    async with serve(app) as url:
        local_server.announce(folder, url, instance)
        served = await invoke("ask", question)
        served_json = await invoke("ask", question, "--json")
    assert here.exit_code == served.exit_code == here_json.exit_code == served_json.exit_code == 0, served.output
    assert served.stdout == here.stdout and served.stderr == here.stderr == ""
    first, second = json.loads(here_json.stdout), json.loads(served_json.stdout)
    assert list(first) == list(second)  # the same fields in the same order
    for changing in ("id", "conversation_id", "latency_ms"):
        first.pop(changing), second.pop(changing)
    assert first == second
    assert (first["abstained"], bool(first["citations"])) == ((False, True) if question == QUESTION else (True, False))


def failing_server(behaviour: str, seen: list[dict]) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        seen.append({"method": request.method, "path": request.path, "body": await request.json(),
                     "instance": request.headers.get(local_server.INSTANCE_HEADER)})
        if behaviour == "slow":
            await asyncio.sleep(3)
        if behaviour == "503":
            return web.json_response({"error": {"status": 503, "code": "unavailable", "message": "not ready"}}, status=503)
        if behaviour == "500 in HTML":
            return web.Response(status=500, text="<h1>oops</h1>", content_type="text/html")
        if behaviour == "not an answer":
            return web.json_response({"status": "ok"})
        return web.Response(text="{\"text\": ", content_type="application/json")  # cut short

    app = web.Application()
    app.router.add_post("/v1/answer", answer)
    return app


@pytest.mark.parametrize("behaviour, why", [
    ("slow", "no answer within 0.5 s"),
    ("503", "it answered 503: not ready"),
    ("500 in HTML", "it answered 500: Internal Server Error"),
    ("not an answer", "its reply is not an answer"),
    ("not JSON", "its reply is not JSON"),
])
async def test_a_server_that_does_not_answer_is_left_and_the_cli_answers(folder, monkeypatch, behaviour, why):
    monkeypatch.setattr(local_server, "ASK_TIMEOUT_SECONDS", 0.5)
    seen: list[dict] = []
    async with serve(failing_server(behaviour, seen)) as url:
        local_server.announce(folder, url, "the-instance")
        result = await invoke("ask", QUESTION)
    assert seen == [{"method": "POST", "path": "/v1/answer", "instance": "the-instance",
                     "body": {"question": QUESTION, "channel": "api", "kb": "sample"}}]
    assert result.exit_code == 0, result.output
    assert "scene.zoom(2)" in result.stdout and "Sources:\n  [1] Camera basics" in result.stdout
    assert result.stderr.startswith(f"the server at {url} didn't answer ({why}") and "answering here" in result.stderr


async def test_a_server_of_another_data_folder_refuses_and_logs_nothing(folder, make_engine):
    """The marker names an instance; whatever listens at its address now is another server: 409, nothing
    answered or logged there, and the CLI answers from its own data folder."""
    engine = make_engine()
    app, _instance = guarded(engine)
    async with serve(app) as url:
        local_server.announce(folder, url, "an-instance-that-has-gone")
        before = await engine.store.count_answers()
        result = await invoke("ask", QUESTION)
        assert await engine.store.count_answers() == before
    assert result.exit_code == 0, result.output
    assert "scene.zoom(2)" in result.stdout
    assert "(it answered 409: this server serves another data folder)" in result.stderr
    assert (folder / "firstreply.db").exists()


async def test_nothing_listening_any_more_falls_back_quietly_enough(folder):
    async with serve(web.Application()) as url:
        pass  # the port is closed again
    local_server.announce(folder, url, "gone")
    result = await invoke("ask", QUESTION)
    assert result.exit_code == 0 and "scene.zoom(2)" in result.stdout
    assert "can't reach it" in result.stderr


def test_a_marker_is_read_strictly(tmp_path):
    marker = tmp_path / local_server.MARKER
    for bad in ("not json", "[]", '{"url": "http://x"}', '{"url": "ftp://x", "pid": 1}',
                '{"url": "http://x", "pid": "me"}', '{"url": "http://x", "pid": 1, "instance": 7}',
                '{"url": "http://x", "pid": 99999999999999999999}'):
        marker.write_text(bad)
        assert local_server.find(tmp_path) is None, bad
    local_server.announce(tmp_path, "http://127.0.0.1:1", "abc")
    assert local_server.find(tmp_path) == local_server.RunningServer("http://127.0.0.1:1", "abc")
    local_server.withdraw(tmp_path)
    assert not marker.exists()


async def test_a_question_refused_by_the_server_ends_as_it_does_in_process(folder, make_engine):
    """A question the engine refuses (a control character) ends with the same one-line error and exit status,
    whether a server is running or not (the server's 400 sends the CLI to answer by itself, which refuses it too)."""
    bad = "How do I zoom\x00 the camera?"
    here = await invoke("ask", bad)
    app, instance = guarded(make_engine())
    async with serve(app) as url:
        local_server.announce(folder, url, instance)
        served = await invoke("ask", bad)
    assert here.exit_code == served.exit_code == 1, (here.output, served.output)
    assert here.stdout == served.stdout == ""
    error = here.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("Error: ") and "Traceback" not in here.output, here.output
    assert served.stderr.strip().splitlines()[-1] == error[0]
    assert "didn't answer (it answered 400: " in served.stderr


def test_bm25s_imported_without_scipy_ranks_and_builds_as_with_it(indexed_sample):
    """A cold in-process ask imports bm25s without SciPy (firstreply.cli.knowledge): the saved index it loads
    scores questions as it does with SciPy imported, and so does an index built there (the keyword index builds
    with bm25s's default NumPy backend either way, never SciPy's)."""
    from engine.index.keywords import KeywordIndex, keyword_terms

    keywords = indexed_sample / "kb" / "sample" / "keywords"
    questions = ["How do I zoom the camera?", "useFormFields TypeError", "install plugin colour"]
    probe = ("import json, sys\nfrom pathlib import Path\n"
             "from firstreply.cli.knowledge import _import_bm25s_without_scipy\n"
             "_import_bm25s_without_scipy()\n"
             "import bm25s\n"
             "from engine.index.keywords import KeywordIndex, keyword_terms\n"
             f"loaded = KeywordIndex.load(Path({str(keywords)!r}))\n"
             "built = KeywordIndex.build(loaded.chunks)\n"
             f"questions = {questions!r}\n"
             "print(json.dumps({'scipy': 'scipy' in sys.modules, 'available': bm25s.SCIPY_AVAILABLE,\n"
             "    'loaded': [loaded.model.get_scores(keyword_terms(q)).tolist() for q in questions],\n"
             "    'built': [built.model.get_scores(keyword_terms(q)).tolist() for q in questions]}))\n")
    child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False)
    assert child.returncode == 0, child.stderr
    seen = json.loads(child.stdout)
    assert seen["scipy"] is False and seen["available"] is False
    import bm25s

    assert bm25s.SCIPY_AVAILABLE  # this process imported it with SciPy
    here = KeywordIndex.load(keywords)
    with_scipy = KeywordIndex.build(here.chunks)
    assert with_scipy.model.csc_backend == "numpy"
    expected = [here.model.get_scores(keyword_terms(q)).tolist() for q in questions]
    assert any(max(scores) > 0 for scores in expected)
    assert seen["loaded"] == expected
    assert seen["built"] == [with_scipy.model.get_scores(keyword_terms(q)).tolist() for q in questions]
