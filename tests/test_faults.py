"""Faults, each with what the user gets: a provider down then back, the Chroma server restarted, the
disk filling up in the middle of an ingest."""

from __future__ import annotations

import asyncio
import errno
import subprocess

import aiohttp
import pytest
from fakes import gemini
from fakes.server import serve
from test_chroma_server import CHROMA, chroma_server, free_port  # noqa: F401 - the fixture

from engine.answer.model import Question
from engine.config import Settings
from engine.index.vectors import VectorStore
from engine.service import Engine
from firstreply.serve import build_app  # the app `firstreply serve` runs

CAMERA = "How do I zoom the camera in?"


async def test_a_provider_failing_and_timing_out_gets_fallback_answers_then_recovers(make_engine, fake_gemini):
    fake_gemini.script = [gemini.Reply(status=500)] * 3 + [gemini.Reply(delay=1.5)] * 3  # down, then hanging
    async with make_engine(providers=["gemini:gemini-2.5-flash"], gemini_api_key=gemini.API_KEY,
                           gemini_base_url=fake_gemini.url, llm_timeout=0.5, llm_retries=1) as engine:
        outage = [await engine.answer(Question(CAMERA, channel="discord")) for _ in range(6)]
        assert all(a.model == "extractive" and not a.abstained and "scene.zoom(2)" in a.text for a in outage)
        assert all(a.fallback_reasons for a in outage)
        reasons = " ".join(r for a in outage for r in a.fallback_reasons)
        assert "HTTP 500" in reasons and "no answer within 0.5 s" in reasons
        recovered = await engine.answer(Question(CAMERA, channel="discord"))
    assert recovered.model == "gemini:gemini-2.5-flash" and not recovered.fallback_reasons


@pytest.mark.chroma_server
async def test_a_restarted_chroma_server_is_a_503_while_down_and_serves_again_after(tmp_path, embedder, sample_project):
    port = free_port()
    path = tmp_path / "chroma-data"

    def start() -> subprocess.Popen:
        return subprocess.Popen([CHROMA, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    async def wait_up(process) -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/api/v2/heartbeat") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    await asyncio.sleep(0.2)
        process.kill()
        raise AssertionError("chroma run did not start")

    server = start()
    await wait_up(server)
    try:
        engine = Engine(Settings(data_dir=tmp_path / "state", kb="faults", chroma_url=f"http://127.0.0.1:{port}",
                                 query_encoder="torch", _env_file=None))
        engine.__dict__["embedder"] = embedder
        engine.ingest(sample_project)
        async with serve(build_app(engine)) as url, aiohttp.ClientSession() as http:
            async def search() -> int:
                async with http.get(f"{url}/v1/search", params={"q": "zoom the camera"}) as response:
                    return response.status

            assert await search() == 200
            server.terminate()
            server.wait(20)
            async with http.get(f"{url}/v1/search", params={"q": "zoom the camera"}) as response:
                assert response.status == 503
                assert "not ready" in (await response.json())["error"]["message"]
            server = start()
            await wait_up(server)
            assert await search() == 200
    finally:
        server.terminate()
        server.wait(20)


def test_a_full_disk_mid_ingest_is_a_clear_error_and_the_index_stays_as_it_was(tmp_path, embedder, sample_project,
                                                                              monkeypatch):
    engine = Engine(Settings(data_dir=tmp_path / "state", kb="disk", _env_file=None))
    engine.__dict__["embedder"] = embedder
    first = engine.ingest(sample_project)
    before = engine.search(CAMERA, k=3)
    (sample_project / "docs" / "guide" / "new-page.md").write_text("# Gimbals\n\nUse `scene.gimbal()` for gimbals.\n")

    real_upsert = VectorStore.upsert

    def full_disk(self, chunks, embeddings, source=None):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(VectorStore, "upsert", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        engine.ingest(sample_project)
    after = Engine(Settings(data_dir=tmp_path / "state", kb="disk", _env_file=None))
    after.__dict__["embedder"] = embedder
    assert [h.chunk.id for h in after.search(CAMERA, k=3)] == [h.chunk.id for h in before]  # the old index answers
    assert after.vectors().count() == first.chunks_total

    monkeypatch.setattr(VectorStore, "upsert", real_upsert)  # space freed: the next run finishes the job
    report = after.ingest(sample_project)
    assert report.added == ["docs/guide/new-page.md"] and after.search("gimbal", k=1)[0].chunk.path == "docs/guide/new-page.md"


async def test_a_database_restart_is_a_503_while_it_is_down_then_answers_resume(make_engine):
    """The engine talks to the real PostgreSQL through a proxy the test takes down (a restart, as the
    engine sees it) and brings back."""
    from urllib.parse import urlsplit

    from conftest import postgres_database
    from fakes.tcp_proxy import TcpProxy

    async with postgres_database() as url:
        parts = urlsplit(url)
        proxy = TcpProxy(parts.hostname, parts.port or 5432)
        await proxy.up()
        through_proxy = url.replace(f"{parts.hostname}:{parts.port or 5432}", f"127.0.0.1:{proxy.port}")
        engine = make_engine(database_url=through_proxy, rate_limit_per_minute=100_000)
        async with serve(build_app(engine)) as api, aiohttp.ClientSession() as http:
            async def ask() -> int:
                async with http.post(f"{api}/v1/answer", json={"question": CAMERA}) as response:
                    await response.read()
                    return response.status

            assert await ask() == 200
            await proxy.down()
            assert {await ask() for _ in range(3)} == {503}
            await proxy.up()
            statuses = [await ask() for _ in range(3)]
            assert statuses[-1] == 200 and set(statuses) <= {200, 503}
            assert await engine.store.count_answers() >= 2  # before and after
        await engine.close()


def test_what_counts_as_a_dependency_being_down():
    """Measured by restarting the real PostgreSQL under load (pg_ctlcluster restart): the errors
    clients saw were these; each must be a 503, and a plain bug a 500."""
    from sqlalchemy.exc import DBAPIError

    from engine.api.errors import dependency_down

    class ShuttingDown(Exception):
        sqlstate = "57P03"  # asyncpg's CannotConnectNowError, as SQLAlchemy's asyncpg dialect wraps it

    assert dependency_down(ConnectionRefusedError(111, "Connect call failed"))
    assert dependency_down(DBAPIError("SELECT 1", {}, ShuttingDown("the database system is shutting down")))
    assert not dependency_down(DBAPIError("SELECT 1", {}, ValueError("invalid input syntax")))

    class RefusingConnections(Exception):
        sqlstate = "55000"  # asyncpg's ObjectNotInPrerequisiteStateError: the database is not accepting connections

    assert dependency_down(DBAPIError(None, None, RefusingConnections("database is not currently accepting connections")))
    assert not dependency_down(DBAPIError("SELECT currval('s')", {}, RefusingConnections("currval is not yet defined")))
    assert not dependency_down(KeyError("a bug"))


async def test_postgresql_restarted_under_load_costs_some_503s_and_loses_no_answer(make_engine, own_postgres):
    """Four clients ask without pause while the real PostgreSQL server restarts (``pg_ctl restart -m fast``):
    no client sees a 500, answers resume once it is back, and every answer a client got is in the log
    once (the log holds exactly the 200s)."""
    import time
    from collections import Counter

    engine = make_engine(database_url=own_postgres.url, rate_limit_per_minute=100_000)
    before = own_postgres.postmaster_pid()
    outcomes: list[tuple[float, int]] = []
    stop = asyncio.Event()
    async with serve(build_app(engine)) as api, aiohttp.ClientSession() as http:
        async def client() -> None:
            while not stop.is_set():
                async with http.post(f"{api}/v1/answer", json={"question": CAMERA}) as response:
                    body = await response.json()
                    assert response.status in (200, 503), (response.status, body)
                    outcomes.append((time.monotonic(), response.status))

        clients = [asyncio.create_task(client()) for _ in range(4)]
        await asyncio.sleep(1.5)
        down = time.monotonic()
        await asyncio.to_thread(own_postgres.restart)
        up = time.monotonic()
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*clients)
        logged = await engine.store.count_answers()
    assert own_postgres.postmaster_pid() != before  # it really went down and came back
    counts = Counter(status for _, status in outcomes)
    assert set(counts) <= {200, 503}
    assert any(at < down for at, status in outcomes if status == 200)
    assert any(down <= at for at, _ in outcomes)  # requests were in flight across the restart
    after = [status for at, status in outcomes if at > up + 1.0]
    assert after and set(after) == {200}  # a second after the server is back, everything answers
    assert logged == counts[200], counts
    await engine.close()
