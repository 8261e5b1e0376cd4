"""Shared fixtures: the real embedding model (loaded once), the sample project, fresh settings."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from engine.config import Settings

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def embedder():
    from engine.index.embedder import Embedder

    model = Embedder()
    model.encode(["warm up"])
    return model


@pytest.fixture
def sample_project(tmp_path: Path) -> Path:
    """A writable copy of tests/data/sample_project, so tests may change it."""
    target = tmp_path / "project"
    shutil.copytree(DATA / "sample_project", target)
    return target


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "state", kb="test", _env_file=None)


def words(text: str) -> int:
    """A token counter for pure chunking tests: one token per whitespace-separated word."""
    return len(text.split())


@pytest.fixture(scope="session")
def indexed_sample(tmp_path_factory, embedder) -> Path:
    """A data folder holding the sample project's index, built once per session (read-only)."""
    from engine.service import Engine

    data = tmp_path_factory.mktemp("indexed")
    project = data / "project"
    shutil.copytree(DATA / "sample_project", project)
    engine = Engine(Settings(data_dir=data / "state", kb="sample", _env_file=None))
    engine.__dict__["embedder"] = embedder
    engine.ingest(project, repo_url="https://github.com/org/tinyviz", ref="v0.3.0")
    return data / "state"


@pytest.fixture
def make_engine(indexed_sample, embedder, tmp_path):
    """Engines over the shared sample index, each with its own database and settings."""
    from engine.service import Engine

    made = []

    def build(**overrides):
        overrides.setdefault("database_url", f"sqlite+aiosqlite:///{tmp_path}/firstreply-{len(made)}.db")
        engine = Engine(Settings(data_dir=indexed_sample, kb="sample", user_salt="pepper-pepper-pepper-pepper-pepper", _env_file=None, **overrides))
        engine.__dict__["embedder"] = embedder
        made.append(engine)
        return engine

    return build


@pytest.fixture
async def fake_gemini():
    """A loopback fake of the Gemini REST API; ``fake.url`` is its base URL."""
    from fakes.gemini import FakeGemini
    from fakes.server import serve

    fake = FakeGemini()
    async with serve(fake.app()) as url:
        fake.url = url
        yield fake


@pytest.fixture(scope="session")
def rsa_key():
    """A GitHub App private key (RSA 2048, PEM) and its public half, made once per session."""
    from types import SimpleNamespace

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return SimpleNamespace(private_pem=private, public_pem=public)


ADMIN_DSN = os.environ.get("FIRSTREPLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@asynccontextmanager
async def postgres_database():
    """A fresh database on the local PostgreSQL server, dropped afterwards; skips the test if there is none."""
    name = f"firstreply_{uuid.uuid4().hex[:12]}"
    try:
        await _admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncio.TimeoutError) as error:
        pytest.skip(f"PostgreSQL is not reachable at {ADMIN_DSN}: {error}")
    base, _, _ = ADMIN_DSN.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def postgres_url():
    async with postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_overrides(request):
    """Run a test once on the default SQLite database and once on PostgreSQL (settings overrides)."""
    if request.param == "sqlite":
        yield {}
        return
    async with postgres_database() as url:
        yield {"database_url": url}


class OwnPostgres:
    """A PostgreSQL server of the test's own: ``initdb`` in a temporary folder, on its own port.

    A test may restart or stop it without touching the shared server every other test uses.
    PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user.
    """

    def __init__(self) -> None:
        import pwd
        import socket
        import tempfile

        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        binaries = found[-1].parent if found else (Path(shutil.which("initdb")).parent if shutil.which("initdb") else None)
        if binaries is None:
            pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
        self.bin = binaries
        self.prefix: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="firstreply-pg-"))
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no postgres user to run a PostgreSQL server as")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.data = self.root / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _pg(self, program: str, *args: str) -> None:
        import subprocess

        done = subprocess.run([*self.prefix, str(self.bin / program), *args], capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}")

    def _options(self) -> str:
        return f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"

    def start(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-o", self._options(), "-l", str(self.root / "log"), "-w", "start")

    def restart(self) -> None:
        """A fast restart: connections are cut, the server goes down, then comes back on the same port."""
        self._pg("pg_ctl", "-D", str(self.data), "-o", self._options(), "-l", str(self.root / "log"), "-m", "fast",
                 "-w", "restart")

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def remove(self) -> None:
        try:
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except RuntimeError:
            pass  # never started, or already down
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def own_postgres():
    server = OwnPostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()
