"""Ingest the sample project into embedded Chroma with the real model, then search and answer it."""

import subprocess

import pytest

from engine.index.keywords import KeywordIndex
from engine.service import Engine


@pytest.fixture
def engine(settings, embedder) -> Engine:
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder  # share the session's loaded model
    return engine


def test_first_ingest_indexes_every_readable_format_and_reports_the_rest(engine, sample_project):
    report = engine.ingest(sample_project, repo_url="https://github.com/org/tinyviz", ref="v0.3.0")
    assert sorted(report.added) == [
        "docs/CHANGELOG.txt", "docs/guide/camera.rst", "docs/guide/colors.mdx", "docs/guide/install.md",
        "examples/first_scene.ipynb", "examples/viz_spheres.py", "src/tinyviz/utils.py",
    ]
    assert report.skipped == {"binary": 1, "unsupported format": 1}
    assert report.unreadable == [("docs/legacy.md", "not UTF-8 text (byte 3)")]
    assert report.chunks_embedded == report.chunks_total > 7
    assert engine.vectors().count() == report.chunks_total
    keywords = KeywordIndex.load(engine.kb_dir() / "keywords")
    assert len(keywords.chunks) == report.chunks_total


def test_search_finds_the_right_page_with_links_and_scores(engine, sample_project):
    engine.ingest(sample_project, repo_url="https://github.com/org/tinyviz", ref="v0.3.0")
    hits = engine.search("how can I make an actor half transparent?", k=3)
    assert hits[0].chunk.path in {"docs/guide/colors.mdx", "examples/viz_spheres.py"}
    assert any(h.chunk.path == "docs/guide/colors.mdx" for h in hits)
    top = next(h for h in hits if h.chunk.path == "docs/guide/colors.mdx")
    assert top.chunk.url.startswith("https://github.com/org/tinyviz/blob/v0.3.0/docs/guide/colors.mdx#L")
    assert top.dense is not None and 0.2 < top.dense <= 1.0
    install = engine.search("clone the git repository and install it in editable mode", k=1)[0]
    assert install.chunk.path == "docs/guide/install.md"
    assert install.chunk.heading_path == ("From source",)


def test_search_understands_api_names_and_code(engine, sample_project):
    engine.ingest(sample_project)
    hits = engine.search("convert a numpy color array with numpy_to_colors", k=3)
    assert {"src/tinyviz/utils.py", "docs/guide/colors.mdx"} & {h.chunk.path for h in hits[:2]}


def test_rerun_on_unchanged_source_embeds_nothing(engine, sample_project):
    first = engine.ingest(sample_project)
    second = engine.ingest(sample_project)
    assert second.unchanged == len(first.added)
    assert (second.added, second.updated, second.removed) == ([], [], [])
    assert second.chunks_embedded == 0 and second.chunks_deleted == 0
    assert second.chunks_total == first.chunks_total


def test_a_change_reembeds_only_new_chunks_and_deletion_removes_them(engine, sample_project):
    first = engine.ingest(sample_project)
    colors = sample_project / "docs/guide/colors.mdx"
    colors.write_text(colors.read_text() + "\n### Gradients\n\nUse `actor.gradient(start, end)` for a color ramp.\n")
    (sample_project / "docs/CHANGELOG.txt").unlink()
    second = engine.ingest(sample_project)
    assert second.updated == ["docs/guide/colors.mdx"]
    assert second.removed == ["docs/CHANGELOG.txt"]
    assert second.chunks_embedded == 1  # only the new section
    assert second.chunks_reused >= 1  # the untouched sections of the changed file kept their vectors
    assert second.chunks_deleted >= 1
    assert second.chunks_total == first.chunks_total + 1 - second.chunks_deleted
    paths = {h.chunk.path for h in engine.search("changelog release first spheres cubes", k=10)}
    assert "docs/CHANGELOG.txt" not in paths
    assert engine.search("color ramp gradient", k=1)[0].chunk.heading_path == ("Gradients",)


def test_a_new_embedding_model_fingerprint_rebuilds_everything(engine, sample_project, monkeypatch):
    first = engine.ingest(sample_project)
    monkeypatch.setattr(type(engine.embedder), "fingerprint", property(lambda self: "another-model"))
    again = engine.ingest(sample_project)
    assert again.chunks_embedded == first.chunks_total
    assert again.chunks_total == first.chunks_total


def make_checkout(path, remote: str) -> None:
    """Turn ``path`` into a git checkout with one commit of everything not ignored."""
    def git(*args):
        subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    git("remote", "add", "origin", remote)
    git("add", "-A")
    git("commit", "-qm", "init")


def test_git_checkout_reads_tracked_files_and_its_remote_and_ref(engine, sample_project):
    (sample_project / ".gitignore").write_text("examples/\n")
    make_checkout(sample_project, "git@github.com:org/tinyviz.git")
    sha = subprocess.run(["git", "-C", str(sample_project), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = engine.ingest(sample_project)
    assert not any(p.startswith("examples/") for p in report.added)  # ignored, so not tracked
    hit = engine.search("zoom the camera", k=1)[0]
    assert hit.chunk.url.startswith(f"https://github.com/org/tinyviz/blob/{sha}/docs/guide/camera.rst#L")


def test_a_folder_inside_a_checkout_links_into_the_repository(engine, sample_project):
    make_checkout(sample_project, "https://github.com/org/tinyviz.git")
    (sample_project / "docs" / "untracked.md").write_text("# Not committed\n\nThis file is not tracked.\n")
    report = engine.ingest(sample_project / "docs", ref="v2")
    assert "untracked.md" not in report.added and "guide/camera.rst" in report.added
    hit = engine.search("zoom the camera", k=1)[0]
    assert hit.chunk.path == "guide/camera.rst"
    assert hit.chunk.url.startswith("https://github.com/org/tinyviz/blob/v2/docs/guide/camera.rst#L")


def test_ask_cites_sources_and_abstains_when_nothing_matches(engine, sample_project):
    engine.ingest(sample_project, repo_url="https://github.com/org/tinyviz", ref="main")
    answer = engine.ask("How do I zoom the camera in?")
    assert not answer.abstained
    assert "scene.zoom(2)" in answer.text
    assert answer.citations[0].url.startswith("https://github.com/org/tinyviz/blob/main/docs/guide/camera.rst")
    assert "[1]" in answer.text
    off_topic = engine.ask("What is the best recipe for sourdough bread with rye flour?")
    assert off_topic.abstained
    assert off_topic.citations == []
    assert "rather not guess" in off_topic.text


def test_search_on_an_empty_knowledge_base_returns_nothing(engine):
    assert engine.search("anything") == []
    assert engine.ask("anything").abstained


def test_a_checkout_git_refuses_to_read_is_a_clear_error_not_a_plain_folder(engine, sample_project, monkeypatch):
    """A checkout owned by another user (a host folder mounted into the container, say): git won't
    read it, and reading it as a folder would lose its links, so the ingest stops and says what to do."""
    import os

    from engine.ingest.sources import UntrustedCheckout, discover

    if os.geteuid() != 0:
        pytest.skip("needs root, to give the checkout to another user")
    make_checkout(sample_project, "https://github.com/org/tinyviz.git")
    for path in [sample_project, *sample_project.rglob("*")]:
        os.lchown(path, 4242, 4242)
    with pytest.raises(UntrustedCheckout, match="safe.directory") as refused:
        engine.ingest(sample_project / "docs")  # a folder inside the checkout: the message names the checkout
    assert engine.vectors().count() == 0  # nothing was indexed
    top = str(sample_project.resolve())
    assert f"GIT_CONFIG_VALUE_0={top})" in str(refused.value)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")  # the remedy the message gives for containers
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "safe.directory")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", top)
    assert discover(sample_project / "docs").repo_url == "https://github.com/org/tinyviz"


def test_remotes_become_web_links_and_local_clones_link_to_the_engines_copy(engine, sample_project):
    from engine.ingest.sources import web_url

    assert web_url("git@github.com:org/tinyviz.git") == "https://github.com/org/tinyviz"
    assert web_url("ssh://git@gitlab.com/org/tinyviz.git") == "https://gitlab.com/org/tinyviz"
    assert web_url("https://github.com/org/tinyviz.git") == "https://github.com/org/tinyviz"
    assert web_url("/srv/git/tinyviz") is None and web_url("file:///srv/git/tinyviz.git") is None
    make_checkout(sample_project, "/srv/git/tinyviz")  # cloned from a folder: there is no web page to link to
    engine.ingest(sample_project)
    hit = engine.search("zoom the camera", k=1)[0]
    # No web page to link to: the engine serves its own copy (issue 15 item 1), rather than a bare path that 404s.
    assert hit.chunk.url.startswith(f"{engine.public_url}/source/{engine.settings.kb}/{hit.chunk.path}?lines=")
