"""The same ingest and search against a real `chroma run` server through HttpClient."""

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engine.config import Settings
from engine.index.vectors import VectorStoreError, open_client
from engine.service import Engine

pytestmark = pytest.mark.chroma_server

CHROMA = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ChromaProcess:
    """A real `chroma run` server on a free loopback port, its data in ``path``."""

    def __init__(self, path: Path, log: Path) -> None:
        if not Path(CHROMA).exists():
            pytest.skip("the `chroma` command (from the chromadb package) is not installed")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log
        self.process = subprocess.Popen(
            [CHROMA, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=log.open("w"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    pytest.fail(f"chroma run did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGCONT)  # a test may have paused it
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)


@pytest.fixture
def chroma_process(tmp_path):
    server = ChromaProcess(tmp_path / "chroma-server", tmp_path / "chroma.log")
    yield server
    server.stop()


@pytest.fixture
def chroma_server(chroma_process):
    return chroma_process.url


def test_ingest_and_search_through_a_chroma_server(chroma_server, tmp_path, embedder, sample_project):
    settings = Settings(data_dir=tmp_path / "state", kb="served", chroma_url=chroma_server, _env_file=None)
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    report = engine.ingest(sample_project)
    assert report.chunks_total > 7
    assert not (tmp_path / "state" / "chroma").exists()  # nothing went to an embedded store
    hits = engine.search("how do I zoom the camera?", k=2)
    assert hits[0].chunk.path == "docs/guide/camera.rst"
    assert hits[0].dense is not None

    # A second engine process (a replica) sees the same vectors.
    replica = Engine(settings)
    replica.__dict__["embedder"] = embedder
    assert replica.vectors().count() == report.chunks_total
    assert replica.ingest(sample_project).chunks_embedded == 0


def test_an_unreachable_chroma_server_is_a_clear_error():
    with pytest.raises(VectorStoreError, match="can't open Chroma at http://127.0.0.1:"):
        open_client(url=f"http://127.0.0.1:{free_port()}")


async def test_replicas_sharing_a_chroma_server_keep_their_keyword_indexes_in_step(chroma_server, tmp_path, embedder,
                                                                                   sample_project):
    """Each replica has its own data folder; an ingest on one reaches the other's BM25 index too."""

    def replica(name: str) -> Engine:
        engine = Engine(Settings(data_dir=tmp_path / name, kb="shared", chroma_url=chroma_server,
                                 keyword_refresh_seconds=0, _env_file=None))
        engine.__dict__["embedder"] = embedder
        return engine

    writer, reader = replica("writer"), replica("reader")
    writer.ingest(sample_project)
    hits = await reader.asearch("zoom the camera", k=3)  # never ingested here: built from the server's vectors
    assert hits[0].chunk.path == "docs/guide/camera.rst" and hits[0].keyword is not None
    revision = reader.retriever("shared").keywords.revision
    assert revision and revision == writer.retriever("shared").keywords.revision

    (sample_project / "docs" / "guide" / "quaternions.md").write_text(
        "# Quaternion gimbals\n\nTurn on quaternion gimbals with `scene.gimbal('quaternion')` to avoid gimbal lock.\n")
    writer.ingest(sample_project)
    hits = await reader.asearch("quaternion gimbal lock", k=3)
    assert hits[0].chunk.path == "docs/guide/quaternions.md" and hits[0].keyword is not None
    assert reader.retriever("shared").keywords.revision != revision
