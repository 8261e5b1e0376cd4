"""Issue 20, "Always fresh": `firstreply ingest` of a git URL (cloned into the data folder, fetched on later
runs) and `firstreply ingest --watch`. Remotes are local bare repositories reached through file://; no network."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests_support import git, git_upstream, push_change

from engine.ingest.remote import BadGitUrl, GitFailed, RemoteCheckout, parse_git_url
from firstreply.cli import cli

FIRSTREPLY = str(Path(sys.executable).with_name("firstreply"))
DATA = Path(__file__).parent / "data"


@pytest.fixture
def upstream(tmp_path):
    """A working copy of the sample project and the bare repository ``tinyviz.git`` it pushes to."""
    project = tmp_path / "tinyviz"
    shutil.copytree(DATA / "sample_project", project)
    return git_upstream(project, tmp_path)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FIRSTREPLY_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("FIRSTREPLY_KB", raising=False)
    return {**os.environ, "FIRSTREPLY_DATA_DIR": str(tmp_path / "state"), "PYTHONPATH": os.pathsep.join(sys.path)}


@pytest.mark.parametrize("url", [
    "ext::sh -c touch% /tmp/pwned", "ext::sh", "fd::17", "-uhttps://example.org/x.git", "--upload-pack=touch x",
    "http://example.org/x.git", "git://example.org/x.git", "https://user:secret@example.org/x.git",
    "file://otherhost/srv/x.git", "file:relative.git", "https://-oProxyCommand=x/x.git", "git@-oProxyCommand=x:x.git",
    "ssh://-oProxyCommand=touch%20x/x.git", "https://example.org/x.git\nmalicious", "gopher://example.org/x.git",
])
def test_dangerous_or_unauthenticated_git_urls_are_refused(url):
    with pytest.raises(BadGitUrl):
        parse_git_url(url)


@pytest.mark.parametrize("url, protocol, name, web", [
    ("https://github.com/org/tinyviz.git", "https", "tinyviz", "https://github.com/org/tinyviz"),
    ("https://gitlab.example.org/group/sub/Tiny.Viz", "https", "Tiny-Viz", "https://gitlab.example.org/group/sub/Tiny.Viz"),
    ("git@github.com:org/tinyviz.git", "ssh", "tinyviz", "https://github.com/org/tinyviz"),
    ("ssh://git@github.com/org/tinyviz.git", "ssh", "tinyviz", "https://github.com/org/tinyviz"),
    ("file:///srv/git/tinyviz.git", "file", "tinyviz", None),
])
def test_accepted_git_urls_name_their_protocol_kb_and_web_page(url, protocol, name, web):
    remote = parse_git_url(url)
    assert (remote.protocol, remote.name, remote.web_url) == (protocol, name, web)


def test_a_git_url_is_cloned_into_the_data_folder_then_fetched_and_its_links_go_to_the_commit(env, upstream, tmp_path):
    work, bare = upstream
    url = f"file://{bare}"
    runner = CliRunner()
    first = runner.invoke(cli, ["ingest", url, "--repo-url", "https://github.com/org/tinyviz", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["chunks_embedded"] > 0
    [clone] = [p for p in (tmp_path / "state" / "sources").iterdir() if p.is_dir()]  # beside it, its lock file
    # the knowledge base is named after the repository: tinyviz
    assert clone.name.startswith("tinyviz-") and (tmp_path / "state" / "kb" / "tinyviz" / "manifest.json").is_file()
    assert not any((clone / ".git" / "hooks").glob("*"))  # no template, so not even the hook samples
    assert git(clone, "rev-parse", "--is-shallow-repository") == "true"

    commit = push_change(work, "docs/guide/lighting.md",
                         "# Lighting\n\nAdd a spotlight with `scene.add_spotlight(color='amber')`; it casts soft shadows.\n")
    second = runner.invoke(cli, ["ingest", url, "--repo-url", "https://github.com/org/tinyviz", "--json"])
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    assert report["added"] == ["docs/guide/lighting.md"]
    assert report["chunks_embedded"] == 1  # the rest only moved their links to the new commit
    assert git(clone, "rev-parse", "HEAD") == commit

    found = runner.invoke(cli, ["search", "amber spotlight soft shadows", "--kb", "tinyviz", "--json", "-k", "1"])
    [hit] = json.loads(found.stdout)
    assert hit["url"].startswith(f"https://github.com/org/tinyviz/blob/{commit}/docs/guide/lighting.md"), hit["url"]


def test_a_refused_git_url_is_a_usage_error_and_runs_nothing(env, tmp_path):
    result = CliRunner().invoke(cli, ["ingest", "ext::sh -c 'touch pwned'"])
    assert result.exit_code == 2
    assert "transport helpers" in result.output or "spaces" in result.output
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "state" / "sources").exists()


def test_an_unreachable_remote_is_one_line_and_leaves_no_partial_clone(env, tmp_path):
    result = CliRunner().invoke(cli, ["ingest", f"file://{tmp_path}/nowhere.git"])
    assert result.exit_code == 1
    assert "git clone of file://" in result.output and "failed" in result.output
    assert [p for p in (tmp_path / "state" / "sources").iterdir() if p.is_dir()] == []


def test_a_clone_larger_than_the_limit_is_stopped_and_removed(upstream, tmp_path):
    _work, bare = upstream
    remote = parse_git_url(f"file://{bare}")
    checkout = RemoteCheckout(remote, tmp_path / "clone", max_bytes=10_000)
    with pytest.raises(GitFailed, match="larger than 10,000 bytes"):
        checkout.sync()
    assert not (tmp_path / "clone").exists()


@pytest.mark.parametrize("ref", ["-uevil", "main:refs/heads/x", "+main", "refs/*", "v1 v2", ""])
def test_a_ref_that_is_an_option_or_a_refspec_is_refused(tmp_path, ref):
    with pytest.raises(BadGitUrl):
        RemoteCheckout(parse_git_url("file:///srv/x.git"), tmp_path / "clone", ref=ref)


def test_a_clone_of_another_remote_in_the_folder_is_not_reused(upstream, tmp_path):
    _work, bare = upstream
    RemoteCheckout(parse_git_url(f"file://{bare}"), tmp_path / "clone").sync()
    other = tmp_path / "other.git"
    shutil.copytree(bare, other)
    with pytest.raises(GitFailed, match="holds a clone of"):
        RemoteCheckout(parse_git_url(f"file://{other}"), tmp_path / "clone").sync()


@pytest.mark.subprocess
def test_watch_ingests_only_when_the_folder_changes_and_stops_cleanly_on_ctrl_c(env, sample_project):
    process = subprocess.Popen([FIRSTREPLY, "ingest", str(sample_project), "--kb", "watched", "--watch",
                                "--interval", "0.3"], env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        def next_summary() -> str:
            deadline = time.monotonic() + 240  # a bound for a stuck test, not a timing assert
            while time.monotonic() < deadline:
                line = process.stdout.readline()
                assert line, process.stderr.read()
                lines.append(line)
                if line.startswith("watched: "):
                    return line
            raise AssertionError(lines)

        assert "7 added" in next_summary()
        time.sleep(1.5)  # several looks at an unchanged folder: nothing ingested, nothing printed
        (sample_project / "docs" / "guide" / "lighting.md").write_text("# Lighting\n\nSpotlights cast soft shadows.\n")
        changed = next_summary()
        assert "1 added, 0 updated, 0 removed, 7 unchanged" in changed and "1 embedded" in changed
        process.send_signal(signal.SIGINT)
        _rest, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "stopped watching" in stderr and "Traceback" not in stderr
    assert sum(line.startswith("watched: ") for line in lines) == 2  # the unchanged looks ingested nothing


def test_a_release_tag_is_its_own_knowledge_base_beside_the_default_branch_with_links_at_the_tag(env, upstream):
    work, bare = upstream
    url = f"file://{bare}"
    push_change(work, "docs/guide/lighting.md", "# Lighting\n\nIn 1.0 a spotlight is `scene.spot(amber=True)`.\n")
    git(work, "tag", "v1.0")
    git(work, "push", "-q", "origin", "v1.0")
    push_change(work, "docs/guide/lighting.md", "# Lighting\n\nSince 2.0 a spotlight is `scene.add_spotlight(color='amber')`.\n")
    runner = CliRunner()
    for args in (["--ref", "v1.0"], []):
        result = runner.invoke(cli, ["ingest", url, "--repo-url", "https://github.com/org/tinyviz", *args])
        assert result.exit_code == 0, result.output

    def lighting(kb: str) -> dict:
        hits = json.loads(runner.invoke(cli, ["search", "spotlight amber", "--kb", kb, "--json", "-k", "3"]).stdout)
        return next(h for h in hits if h["path"] == "docs/guide/lighting.md")

    tagged, current = lighting("tinyviz-v1-0"), lighting("tinyviz")
    assert tagged["url"].startswith("https://github.com/org/tinyviz/blob/v1.0/docs/guide/lighting.md")
    assert "scene.spot(amber=True)" in tagged["text"] and "add_spotlight" in current["text"]
    assert "/blob/v1.0/" not in current["url"]


@pytest.mark.subprocess
def test_watch_of_a_git_url_ingests_each_new_commit_once(env, upstream):
    work, bare = upstream
    process = subprocess.Popen([FIRSTREPLY, "ingest", f"file://{bare}", "--watch", "--interval", "0.3"],
                               env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    summaries: list[str] = []
    try:
        def next_summary() -> str:
            deadline = time.monotonic() + 240  # a bound for a stuck test, not a timing assert
            while time.monotonic() < deadline:
                line = process.stdout.readline()
                assert line, process.stderr.read()
                if line.startswith("tinyviz: "):
                    summaries.append(line)
                    return line
            raise AssertionError(summaries)

        assert "7 added" in next_summary()
        time.sleep(1.5)  # several fetches that bring nothing new: nothing ingested, nothing printed
        push_change(work, "docs/guide/lighting.md", "# Lighting\n\nSpotlights cast soft shadows.\n")
        assert "1 added" in next_summary()
        process.send_signal(signal.SIGINT)
        rest, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "stopped watching" in stderr and not [line for line in rest.splitlines() if line.startswith("tinyviz: ")]
    assert len(summaries) == 2
