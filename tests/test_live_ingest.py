"""Issue 15 item 3: a running server sees an ingest that another process (`firstreply ingest`) finished, within
a couple of seconds, in the embedded set-up (no Chroma server): new pages are found, moved links followed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from fakes.server import serve

from engine.config import Settings
from firstreply.serve import build_app  # the app `firstreply serve` runs

FIRSTREPLY = str(Path(sys.executable).with_name("firstreply"))
pytestmark = pytest.mark.subprocess


async def test_a_running_server_picks_up_an_ingest_finished_by_another_process(tmp_path, embedder, sample_project):
    from engine.service import Engine

    state = tmp_path / "state"
    settings = Settings(data_dir=state, kb="live", user_salt="pepper-pepper-pepper-pepper-pepper", _env_file=None,
                        database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    engine.ingest(sample_project)
    (sample_project / "docs" / "guide" / "lighting.md").write_text(
        "# Lighting\n\nAdd a spotlight with `scene.add_spotlight(color='amber')`; it casts soft shadows.\n")

    async with serve(build_app(engine)) as url, aiohttp.ClientSession() as http:
        async def paths(query: str) -> list[str]:
            async with http.get(f"{url}/v1/search", params={"q": query, "k": "3"}) as response:
                assert response.status == 200
                return [h["path"] for h in (await response.json())["hits"]]

        assert "docs/guide/lighting.md" not in await paths("amber spotlight soft shadows")
        env = {**os.environ, "FIRSTREPLY_DATA_DIR": str(state), "FIRSTREPLY_KB": "live",
               "FIRSTREPLY_REPO_URL": "", "PYTHONPATH": os.pathsep.join(sys.path)}
        ingest = await asyncio.to_thread(subprocess.run, [FIRSTREPLY, "ingest", str(sample_project), "--kb", "live",
                                                          "--repo-url", "https://github.com/org/tinyviz", "--ref", "v9"],
                                         env=env, capture_output=True, text=True, timeout=300)
        assert ingest.returncode == 0, ingest.stderr
        deadline = time.monotonic() + 30  # a bound for a stuck test, not a timing assert
        while "docs/guide/lighting.md" not in (found := await paths("amber spotlight soft shadows")):
            assert time.monotonic() < deadline, found
            await asyncio.sleep(0.2)
        async with http.get(f"{url}/v1/search", params={"q": "zoom the camera", "k": "1"}) as response:
            [hit] = (await response.json())["hits"]
        assert hit["url"].startswith("https://github.com/org/tinyviz/blob/v9/"), hit["url"]  # the new links
