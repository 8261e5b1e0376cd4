"""Scaling out as docs/deployment.md describes it: replicas sharing one PostgreSQL and one `chroma run` server,
each with its own data folder, and a one-off `firstreply ingest` beside them.

What must hold: replicas agree on the secrets a user meets on both (the user-id salt, the session signing
secret); a hung Chroma server costs quick 503s, never a frozen replica; ingest rebuilds whatever the store
lost and whatever a crash left half-done; replacing a collection never leaves a window where it is gone;
a database that refuses connections is the same 503 everywhere.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading

import aiohttp
import pytest
from fakes.server import serve
from test_chroma_server import chroma_process, chroma_server  # noqa: F401 - the fixtures

from engine.answer.model import Question
from engine.answer.pipeline import pseudonym
from engine.config import ConfigError, Settings
from engine.service import Engine
from firstreply.serve import build_app  # the app `firstreply serve` runs

CAMERA = "How do I zoom the camera in?"
HANG_GUARD = aiohttp.ClientTimeout(total=30)  # a request that hangs fails the test instead of stalling it


def replica(tmp_path, name: str, embedder, **overrides) -> Engine:
    """An engine process as a replica runs it: its own data folder, the shared services from ``overrides``."""
    engine = Engine(Settings(data_dir=tmp_path / name, query_encoder="torch", _env_file=None, **overrides))
    engine.__dict__["embedder"] = embedder
    return engine


# -- 1 and 2: secrets every replica must share -------------------------------------------------------


@pytest.mark.parametrize("name", ["FIRSTREPLY_SESSION_SECRET", "FIRSTREPLY_USER_SALT"])
@pytest.mark.parametrize("value", ["", "   ", "short", "x" * 31, " " + "x" * 40])
def test_an_empty_or_short_configured_shared_secret_stops_start_up_with_one_line(monkeypatch, name, value):
    from engine.config import load_settings

    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings(_env_file=None)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"bad setting {name}: must be at least 32")
    assert not value.strip() or value.strip() not in message  # never echoed
    monkeypatch.setenv(name, "x" * 32)
    assert getattr(load_settings(_env_file=None), name.removeprefix("FIRSTREPLY_").lower()).get_secret_value() == "x" * 32


async def test_replicas_on_one_database_count_one_changeable_vote_per_user(postgres_url, tmp_path, embedder):
    a, b = (replica(tmp_path, name, embedder, database_url=postgres_url) for name in ("a", "b"))
    await asyncio.gather(a.start(), b.start())  # starting together: one salt wins, both use it
    try:
        answer = await a.answer(Question(CAMERA, channel="discord", user_id="80351110224678912"))
        assert await b.feedback(answer.id, "80351110224678912", 1) is True
        assert await a.feedback(answer.id, "80351110224678912", -1) is False  # a change of mind, not a second vote
        assert await a.store.votes(answer.id) == {"up": 0, "down": 1}
        record = await b.store.answer(answer.id)
        assert (record.up_votes, record.down_votes) == (0, 1)
    finally:
        await a.close()
        await b.close()


async def test_a_browser_session_made_on_one_replica_works_on_another(postgres_url, tmp_path, embedder):
    """Behind a load balancer without sticky sessions: the Ask page's token and a maintainer's sign-in hold on both."""
    a, b = (replica(tmp_path, name, embedder, database_url=postgres_url) for name in ("a", "b"))
    jar = aiohttp.DummyCookieJar()  # the test carries the cookie itself, to whichever replica it likes
    async with serve(build_app(a)) as url_a, serve(build_app(b)) as url_b, \
            aiohttp.ClientSession(cookie_jar=jar, timeout=HANG_GUARD) as http:
        async with http.get(f"{url_a}/ask") as page:
            assert page.status == 200
            cookie = page.cookies["firstreply_session"].value
            csrf = re.search(r'data-csrf="([^"]+)"', await page.text()).group(1)
        # asked on the page (a visitor votes only on answers in their own conversations)
        async with http.post(f"{url_a}/ask/answer", json={"question": CAMERA},
                             headers={"Cookie": f"firstreply_session={cookie}", "X-CSRF-Token": csrf}) as response:
            assert response.status == 200, await response.text()
            answer_id = re.search(r'"id": ?"([0-9a-f-]{36})"', await response.text()).group(1)
        created = []
        for url in (url_b, url_a):  # the same visitor through either replica: one vote
            async with http.post(f"{url}/ask/feedback", json={"answer_id": answer_id, "vote": "up"},
                                 headers={"Cookie": f"firstreply_session={cookie}", "X-CSRF-Token": csrf}) as response:
                assert response.status == 200, await response.text()
                created.append((await response.json())["created"])
        assert created == [True, False]

        token = await a.review_service.add_maintainer("ada")
        async with http.post(f"{url_b}/review/login", data={"token": token, "csrf_token": csrf, "next": "/review/answers"},
                             headers={"Cookie": f"firstreply_session={cookie}"}, allow_redirects=False) as signed_in:
            assert signed_in.status == 303, await signed_in.text()
            cookie = signed_in.cookies["firstreply_session"].value
        async with http.get(f"{url_a}/review/answers", headers={"Cookie": f"firstreply_session={cookie}"},
                            allow_redirects=False) as page:
            assert page.status == 200  # not sent to sign in again


async def test_a_replica_whose_secret_disagrees_refuses_to_start_with_one_line(postgres_url, tmp_path, embedder):
    import asyncpg

    first = replica(tmp_path, "a", embedder, database_url=postgres_url, user_salt="salt-of-replica-a-0123456789abcdef",
                    session_secret="session-secret-of-replica-a-0123456789")
    await first.start()
    await first.close()

    same = replica(tmp_path, "b", embedder, database_url=postgres_url, user_salt="salt-of-replica-a-0123456789abcdef",
                   session_secret="session-secret-of-replica-a-0123456789")
    await same.start()
    await same.close()

    for name, overrides, setting in [
        ("c", {"user_salt": "another-salt-entirely-0123456789ab", "session_secret": "session-secret-of-replica-a-0123456789"},
         "FIRSTREPLY_USER_SALT"),
        ("d", {"user_salt": "salt-of-replica-a-0123456789abcdef", "session_secret": "another-session-secret-0123456789"},
         "FIRSTREPLY_SESSION_SECRET"),
        ("e", {}, "FIRSTREPLY_USER_SALT"),  # the others set it: a replica with nothing set can't guess it
    ]:
        other = replica(tmp_path, name, embedder, database_url=postgres_url, **overrides)
        with pytest.raises(ConfigError) as refused:
            await other.start()
        message = str(refused.value)
        assert setting in message and "\n" not in message
        for secret in ("salt-of-replica-a", "another-salt", "session-secret-of-replica-a", "another-session"):
            assert secret not in message
        assert other.store is None  # nothing left open

    connection = await asyncpg.connect(postgres_url)
    try:
        stored = str([tuple(row) for row in await connection.fetch("SELECT * FROM shared_secrets")])
    finally:
        await connection.close()
    assert "salt-of-replica-a" not in stored and "session-secret-of-replica-a" not in stored  # configured: never stored


async def test_an_existing_installs_salt_becomes_the_one_every_replica_shares(postgres_url, tmp_path, embedder):
    """Upgrading a single machine: its votes keep their pseudonyms, and a new replica uses the same salt."""
    old_salt = "5e1b0a7c9d3f4e2a8b6c0d1e2f3a4b5c"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "user-salt").write_text(old_salt + "\n")
    a = replica(tmp_path, "a", embedder, database_url=postgres_url)
    await a.start()
    b = replica(tmp_path, "b", embedder, database_url=postgres_url)
    await b.start()
    try:
        answer = await a.answer(Question(CAMERA, channel="discord", user_id="42"))
        assert await b.feedback(answer.id, "42", 1) is True
        from sqlalchemy import select

        from engine.store.models import Feedback

        async with b.store.session() as session:
            hashes = list((await session.execute(select(Feedback.user_hash))).scalars())
        assert hashes == [pseudonym("42", old_salt)]
        stray = replica(tmp_path, "c", embedder, database_url=postgres_url, user_salt="a-salt-set-later-0123456789abcdefgh")
        with pytest.raises(ConfigError, match="unset FIRSTREPLY_USER_SALT here") as refused:
            await stray.start()
        assert old_salt not in str(refused.value) and "a-salt-set-later-0123456789abcdefgh" not in str(refused.value)
    finally:
        await a.close()
        await b.close()


# -- 3: a hung Chroma server ----------------------------------------------------------------------------


@pytest.mark.chroma_server
def test_opening_a_hung_chroma_server_gives_up_after_the_timeout():
    """chromadb's HttpClient makes a request while it is being built; a server that accepts and never answers
    (a stopped process's listening socket) must not keep the opening thread, and the lock it holds, for ever."""
    import socket

    from engine.index.vectors import VectorStoreError, open_client

    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # the kernel accepts connections; nothing ever reads or answers
        outcome: list = []

        def opening() -> None:
            try:
                outcome.append(open_client(url=f"http://127.0.0.1:{hung.getsockname()[1]}", timeout=0.5))
            except Exception as error:
                outcome.append(error)

        thread = threading.Thread(target=opening, daemon=True)
        thread.start()
        thread.join(60)  # a guard against a hang, not a timing check
        assert not thread.is_alive(), "opening a hung Chroma server never gave up"
    assert len(outcome) == 1 and isinstance(outcome[0], VectorStoreError), outcome


async def test_a_hung_chroma_server_is_a_quick_503_while_healthz_answers(chroma_process, tmp_path, embedder,  # noqa: F811 - the fixture imported above
                                                                        sample_project):
    settings = dict(kb="hung", chroma_url=chroma_process.url, chroma_timeout_seconds=2, keyword_refresh_seconds=0)
    engine = replica(tmp_path, "served", embedder, **settings)
    engine.ingest(sample_project)
    fresh = replica(tmp_path, "fresh", embedder, **settings)  # its first call to Chroma comes while Chroma hangs
    # If the event loop itself blocks on Chroma, no client timeout can fire: resume Chroma after a while so
    # the test ends (and fails) instead of hanging forever.
    watchdog = threading.Timer(60, chroma_process.process.send_signal, (signal.SIGCONT,))
    async with serve(build_app(engine)) as url, serve(build_app(fresh)) as fresh_url, \
            aiohttp.ClientSession(timeout=HANG_GUARD) as http:
        async with http.get(f"{url}/v1/search", params={"q": "zoom the camera"}) as response:
            assert response.status == 200
        chroma_process.process.send_signal(signal.SIGSTOP)
        watchdog.start()
        try:
            for base in (url, fresh_url):
                async with http.get(f"{base}/healthz") as response:
                    assert response.status == 200
                async with http.get(f"{base}/readyz") as response:
                    body = await response.json()
                    assert response.status == 503, body
                    assert body["checks"]["vectors"].startswith("failing") and body["checks"]["database"] == "ok"
                for _ in range(3):
                    async with http.post(f"{base}/v1/answer", json={"question": CAMERA}) as response:
                        body = await response.json()
                        assert response.status == 503, body
                        assert "not ready" in body["error"]["message"]
                async with http.get(f"{base}/v1/search", params={"q": "zoom the camera"}) as response:
                    assert response.status == 503
        finally:
            chroma_process.process.send_signal(signal.SIGCONT)
            watchdog.cancel()
        for base in (url, fresh_url):  # Chroma answers again: so do the replicas
            for _ in range(60):
                async with http.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.5)
            async with http.get(f"{base}/v1/search", params={"q": "zoom the camera"}) as response:
                assert response.status == 200
                assert (await response.json())["hits"][0]["path"] == "docs/guide/camera.rst"


# -- 4 (and issue 13, item 8): ingest repairs what the store lost or a crash left -----------------------


@pytest.mark.chroma_server
def test_pages_and_golden_records_come_back_after_the_chroma_server_lost_its_data(chroma_process, tmp_path, embedder,  # noqa: F811 - the fixture imported above
                                                                                   sample_project, monkeypatch):
    import chromadb
    from click.testing import CliRunner

    from firstreply.cli import cli

    settings = dict(kb="lost", chroma_url=chroma_process.url, keyword_refresh_seconds=0)
    purple = "How do I paint the sky purple?"

    async def index_a_golden_record() -> None:
        async with replica(tmp_path, "state", embedder, **settings) as engine:
            await asyncio.to_thread(engine.ingest, sample_project)
            await engine.review_service.add_golden_record(purple, "Call `scene.sky('purple')` before rendering.", "ada")
            await engine.sync_golden()
            assert engine.search(purple, k=1)[0].chunk.source_type == "golden"

    asyncio.run(index_a_golden_record())

    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_process.port,
                                 settings=chromadb.Settings(anonymized_telemetry=False))

    def lose_the_servers_data() -> None:
        for collection in client.list_collections():
            client.delete_collection(collection.name)

    lose_the_servers_data()
    monkeypatch.setattr(Engine, "embedder", property(lambda _self: embedder))  # the CLI's engine shares the loaded model
    monkeypatch.setenv("FIRSTREPLY_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FIRSTREPLY_CHROMA_URL", chroma_process.url)
    monkeypatch.setenv("FIRSTREPLY_KB", "lost")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["ingest", str(sample_project)])
    assert result.exit_code == 0, result.output
    assert "7 repaired" in result.output
    after = replica(tmp_path, "state", embedder, **settings)
    assert after.search("zoom the camera", k=1)[0].chunk.path == "docs/guide/camera.rst"
    assert after.search(purple, k=1)[0].chunk.source_type == "golden"
    assert after.vectors().count() == len(after.retriever().keywords.chunks)

    lose_the_servers_data()

    async def served_search(question: str) -> list[dict]:
        engine = replica(tmp_path, "state", embedder, **settings)
        async with serve(build_app(engine)) as url, aiohttp.ClientSession(timeout=HANG_GUARD) as http:
            for _ in range(40):  # the replica puts the golden records back when it starts
                async with http.get(f"{url}/v1/search", params={"q": question, "k": 3}) as response:
                    hits = (await response.json()).get("hits", [])
                if hits:
                    return hits
                await asyncio.sleep(0.5)
            return []

    hits = asyncio.run(served_search(purple))
    assert hits and hits[0]["source_type"] == "golden"


class Killed(BaseException):
    """The process dies here: nothing after this point runs, no handler sees it."""


def _crash_after(cls, name):
    real = getattr(cls, name)

    def crash(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise Killed(f"killed after {cls.__name__}.{name}")

    return crash


def _crash_before(cls, name):
    def crash(self, *args, **kwargs):
        raise Killed(f"killed before {cls.__name__}.{name}")

    return crash


@pytest.mark.parametrize("where", ["after upserting vectors", "after deleting vectors", "after saving the manifest",
                                   "before saving the keyword index"])
def test_an_ingest_killed_at_any_point_is_repaired_by_the_next_run(where, tmp_path, embedder, sample_project, monkeypatch):
    from engine.index.build import Manifest
    from engine.index.keywords import KeywordIndex
    from engine.index.vectors import VectorStore

    crash = {"after upserting vectors": (VectorStore, "upsert", _crash_after),
             "after deleting vectors": (VectorStore, "delete", _crash_after),
             "after saving the manifest": (Manifest, "save", _crash_after),
             "before saving the keyword index": (KeywordIndex, "save", _crash_before)}[where]
    replica(tmp_path, "state", embedder, kb="crash").ingest(sample_project)
    (sample_project / "docs" / "CHANGELOG.txt").unlink()
    (sample_project / "docs" / "guide" / "gimbals.md").write_text(
        "# Quaternion gimbals\n\nTurn on quaternion gimbals with `scene.gimbal('quaternion')` to avoid gimbal lock.\n")

    cls, name, make = crash
    with monkeypatch.context() as patched:
        patched.setattr(cls, name, make(cls, name))
        with pytest.raises(Killed):
            replica(tmp_path, "state", embedder, kb="crash").ingest(sample_project)

    restarted = replica(tmp_path, "state", embedder, kb="crash")
    restarted.ingest(sample_project)
    assert restarted.search("quaternion gimbal lock", k=1)[0].chunk.path == "docs/guide/gimbals.md"
    assert "docs/CHANGELOG.txt" not in {h.chunk.path for h in restarted.search("changelog release first spheres cubes", k=10)}
    keywords = restarted.retriever().keywords.chunks
    assert "docs/CHANGELOG.txt" not in {c.path for c in keywords}
    assert restarted.vectors().count() == len(keywords)


# -- 5: replacing a collection while replicas serve from it ---------------------------------------------


class AnotherModel:
    """The same weights under another name: what an ingest sees when the embedding model changed."""

    def __init__(self, embedder) -> None:
        self._embedder = embedder

    fingerprint = "another-embedding-model"

    def __getattr__(self, name):
        return getattr(self._embedder, name)


@pytest.mark.chroma_server
async def test_a_serving_replica_keeps_answering_while_an_ingest_replaces_the_collection(chroma_server, tmp_path,  # noqa: F811 - the fixture imported above
                                                                                         embedder, sample_project):
    settings = dict(kb="swap", chroma_url=chroma_server)
    replica(tmp_path, "first-ingest", embedder, **settings).ingest(sample_project)
    reader = replica(tmp_path, "reader", embedder, keyword_refresh_seconds=3600,  # no help from a refresh
                     rate_limit_per_minute=100_000, **settings)
    seen: list[tuple[int, dict]] = []
    async with serve(build_app(reader)) as url, aiohttp.ClientSession(timeout=HANG_GUARD) as http:
        stop = asyncio.Event()

        async def keep_searching() -> None:
            while not stop.is_set():
                async with http.get(f"{url}/v1/search", params={"q": "zoom the camera"}) as response:
                    seen.append((response.status, await response.json()))
                await asyncio.sleep(0.02)

        searching = asyncio.create_task(keep_searching())
        await asyncio.sleep(0.5)
        fresh_folder = replica(tmp_path, "one-off", embedder, **settings)
        await asyncio.to_thread(fresh_folder.ingest, sample_project)
        new_model = replica(tmp_path, "new-model", embedder, **settings)
        new_model.__dict__["embedder"] = AnotherModel(embedder)
        report = await asyncio.to_thread(new_model.ingest, sample_project)
        assert report.chunks_embedded == report.chunks_total  # the collection really was rebuilt
        await asyncio.sleep(0.5)
        stop.set()
        await searching
    failures = [body for status, body in seen if status != 200]
    assert not failures, failures[:3]
    assert len(seen) > 10
    assert seen[-1][1]["hits"][0]["path"] == "docs/guide/camera.rst"


@pytest.mark.chroma_server
def test_readers_never_see_a_collection_being_dropped(chroma_server, tmp_path):  # noqa: F811 - the fixture imported above
    """Readers query without pause, following the pointer as replicas do, while the collection is replaced again
    and again. Measured: a collection dropped in the middle of a call fails with "not found" or "Missing metadata
    segment", or answers empty; no reader may see any of that."""
    import numpy as np

    from engine.index.vectors import Chroma, VectorStore
    from engine.ingest.chunking import Chunk

    chroma = Chroma(tmp_path / "unused", chroma_server, timeout=30)
    writer, reader = VectorStore(chroma, "churn"), VectorStore(chroma, "churn")
    chunks = [Chunk(id=f"c{i}", path="docs/a.md", title="A", heading_path=(), text=f"text {i}", start_line=i,
                    end_line=i, source_type="docs", url="docs/a.md") for i in range(100)]
    vectors = np.random.default_rng(7).random((100, 16), dtype=np.float32)
    writer.prepare_for("kind-0").upsert(chunks, vectors)
    errors: list[str] = []
    reads = 0
    stop = threading.Event()

    def keep_reading() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                reader.revision()  # a replica looks at the pointer every FIRSTREPLY_KEYWORD_REFRESH_SECONDS
                assert len(reader.query_many(vectors[:2], 5)[0]) == 5
                assert len(reader.all_chunks()) == 100
                reads += 1
            except Exception as error:  # noqa: BLE001 - every failure is what the test counts
                errors.append(f"{type(error).__name__}: {error}")

    readers = [threading.Thread(target=keep_reading) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        for generation in range(1, 9):
            replacement = writer.prepare_for(f"kind-{generation}")
            assert replacement is not writer
            replacement.upsert(chunks, vectors)
            writer.replace_with(replacement)
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert not errors, errors[:3]
    assert reads > 8


# -- 6: a database that refuses connections ---------------------------------------------------------------


async def test_a_database_refusing_connections_is_the_same_503_on_answers_as_on_readyz(make_engine):
    """PostgreSQL refuses new connections to a database with SQLSTATE 55000 (ALLOW_CONNECTIONS false)."""
    from conftest import _admin, postgres_database

    async with postgres_database() as url:
        name = url.rsplit("/", 1)[1]
        engine = make_engine(database_url=url, rate_limit_per_minute=100_000)
        async with serve(build_app(engine)) as api, aiohttp.ClientSession(timeout=HANG_GUARD) as http:
            async def ask() -> tuple[int, dict]:
                async with http.post(f"{api}/v1/answer", json={"question": CAMERA}) as response:
                    return response.status, await response.json()

            status, answer = await ask()
            assert status == 200
            await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            try:
                for _ in range(3):
                    status, body = await ask()
                    assert status == 503, body
                    assert "not ready" in body["error"]["message"]
                async with http.post(f"{api}/v1/feedback", json={"answer_id": answer["id"], "user_id": "7",
                                                                 "vote": "up"}) as response:
                    assert response.status == 503
                async with http.get(f"{api}/readyz") as response:
                    assert response.status == 503
            finally:
                await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            assert (await ask())[0] == 200
        await engine.close()


# -- /readyz looks at everything at once (break-it review F9) ----------------------------------------------------------------


async def test_readyz_runs_its_checks_at_the_same_time(make_engine, monkeypatch):
    """Each probe here answers only once the other has started: checks made one after another never both pass
    (the first waits out its deadline), checks made together do. So a hung database and a hung store cost one
    deadline, not one each."""
    engine = make_engine()
    async with serve(build_app(engine)) as api, aiohttp.ClientSession(timeout=HANG_GUARD) as http:
        loop = asyncio.get_running_loop()
        store_started, database_started = asyncio.Event(), threading.Event()

        async def ping() -> None:
            database_started.set()
            await store_started.wait()

        class Vectors:
            def count(self) -> int:
                loop.call_soon_threadsafe(store_started.set)
                if not database_started.wait(30):
                    raise TimeoutError("the database check never started")
                return 1

        monkeypatch.setattr(engine.store, "ping", ping)
        monkeypatch.setattr(engine, "vectors", lambda kb=None: Vectors())
        async with http.get(f"{api}/readyz") as response:
            body = await response.json()
            assert response.status == 200 and body["checks"] == {"database": "ok", "vectors": "ok", "model": "ok"}, body


# -- rotating a shared secret (break-it review F6) ---------------------------------------------------------------------------


async def test_firstreply_secrets_forget_rotates_a_shared_secret_after_asking(postgres_url, tmp_path, embedder, monkeypatch):
    from click.testing import CliRunner

    from firstreply.cli import cli

    old, new = "old-session-secret-0123456789abcdef", "new-session-secret-0123456789abcdef"
    first = replica(tmp_path, "a", embedder, database_url=postgres_url, session_secret=old)
    await first.start()
    salt = first._user_salt()
    await first.close()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "user-salt").write_text(salt)  # an old copy in a replica's data folder must not come back

    def forget(name: str, answer: str | None, **env: str):
        monkeypatch.chdir(tmp_path)
        for key in ("FIRSTREPLY_SESSION_SECRET", "FIRSTREPLY_USER_SALT"):
            monkeypatch.delenv(key, raising=False)
        for key, value in {"FIRSTREPLY_DATABASE_URL": postgres_url, "FIRSTREPLY_DATA_DIR": str(tmp_path / "cli"), **env}.items():
            monkeypatch.setenv(key, value)
        args = ["secrets", "forget", name] + (["--yes"] if answer is None else [])
        return CliRunner().invoke(cli, args, input=answer)

    async def refused(**secrets) -> str:
        engine = replica(tmp_path, "b", embedder, database_url=postgres_url, **secrets)
        with pytest.raises(ConfigError) as error:
            await engine.start()
        return str(error.value)

    assert "FIRSTREPLY_SESSION_SECRET" in await refused(session_secret=new)
    said_no = await asyncio.to_thread(forget, "session-secret", "n\n", FIRSTREPLY_SESSION_SECRET=new)
    assert said_no.exit_code == 1 and "Stop every engine" in said_no.output and "Aborted" in said_no.output
    assert "FIRSTREPLY_SESSION_SECRET" in await refused(session_secret=new)  # nothing changed
    said_yes = await asyncio.to_thread(forget, "session-secret", "y\n", FIRSTREPLY_SESSION_SECRET=new)
    assert said_yes.exit_code == 0, said_yes.output
    assert new not in said_yes.output and "the same FIRSTREPLY_SESSION_SECRET" in said_yes.output
    rotated = replica(tmp_path, "b", embedder, database_url=postgres_url, session_secret=new)
    await rotated.start()
    assert rotated.session_secret() == new
    await rotated.close()
    assert "FIRSTREPLY_SESSION_SECRET" in await refused(session_secret=old)

    done = await asyncio.to_thread(forget, "user-salt", None)
    assert done.exit_code == 0, done.output
    fresh = replica(tmp_path, "b", embedder, database_url=postgres_url, session_secret=new)
    await fresh.start()
    assert fresh._user_salt() != salt and len(fresh._user_salt()) >= 32
    await fresh.close()
    assert (await asyncio.to_thread(forget, "api-key", None)).exit_code == 2  # only the shared secrets
