"""Issue 15 item 1: no citation link 404s. A plain folder's files are served by the engine itself (read-only,
line anchors, rendered Markdown or highlighted code); a checkout still links to its repository."""

from __future__ import annotations

import aiohttp
from fakes.server import serve

from engine.answer.model import Question
from engine.config import Settings
from firstreply.serve import build_app  # the app `firstreply serve` runs


def plain_engine(tmp_path, embedder, **overrides):
    from engine.service import Engine

    engine = Engine(Settings(data_dir=tmp_path / "state", kb="plain", user_salt="pepper-pepper-pepper-pepper-pepper", _env_file=None,
                             database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite", **overrides))
    engine.__dict__["embedder"] = embedder
    return engine


async def test_citations_of_a_plain_folder_open_the_engines_own_copy(tmp_path, embedder, sample_project):
    engine = plain_engine(tmp_path, embedder, public_url="https://help.example.org")
    engine.ingest(sample_project)
    copies = tmp_path / "state" / "kb" / "plain" / "sources"
    assert (copies / "docs/guide/camera.rst").read_text() == (sample_project / "docs/guide/camera.rst").read_text()
    assert not (copies / "docs/logo.png").exists() and not (copies / "docs/legacy.md").exists()  # only what was ingested

    async with serve(build_app(engine)) as url:
        answer = await engine.answer(Question("How do I zoom the camera in?", channel="web"))
        assert answer.citations
        async with aiohttp.ClientSession() as http:
            for citation in answer.citations:
                assert citation.url.startswith("https://help.example.org/source/plain/"), citation.url
                relative = citation.url.removeprefix("https://help.example.org")
                async with http.get(url + relative) as response:
                    assert response.status == 200, relative
                    assert response.content_type == "text/html"
                    page = await response.text()
                if "#L" in relative:
                    start = relative.split("#L", 1)[1]
                    assert f'id="L{start}"' in page and "hl" in page
            async with http.get(url + "/source/plain/docs/guide/camera.rst?lines=3-4") as response:
                page = await response.text()
            assert 'class="line hl" id="L3"' in page and 'id="L5"' in page and "scene.zoom(2)" in page
            async with http.get(url + "/source/plain/docs/guide/install.md") as response:
                page = await response.text()
            assert "<h1" in page and "<code" in page and "<script" not in page
            for bad in ("/source/plain/..%2F..%2Ffirstreply.db", "/source/plain/docs/../../../manifest.json",
                        "/source/plain/%2e%2e/manifest.json", "/source/plain/docs/logo.png",
                        "/source/other/docs/guide/camera.rst", "/source/..%2Fplain/docs/guide/camera.rst",
                        "/source/plain/docs/guide/nothing.md"):
                async with http.get(url + bad) as response:
                    assert response.status == 404, bad


async def test_markdown_is_sanitised_and_mdx_tags_stay_text(tmp_path, embedder):
    from engine.api.source_view import render_markdown

    page = render_markdown('# Title\n\n<Banner type="info">Hi</Banner>\n\n<script>alert(1)</script>\n\n'
                           '[x](javascript:alert(1))\n', (3, 3))
    assert "<script" not in page and 'href="javascript' not in page and "&lt;script" in page
    assert "&lt;Banner" in page and 'id="L1"' in page and 'class="hl"' in page


async def test_a_checkout_still_links_to_its_repository(make_engine):
    engine = make_engine()
    async with engine:
        answer = await engine.answer(Question("How do I zoom the camera in?", channel="web"))
    documents = [c for c in answer.citations if not c.path.startswith("golden/")]  # (other tests' golden records)
    assert documents and all(c.url.startswith("https://github.com/org/tinyviz/blob/v0.3.0/") for c in documents)
