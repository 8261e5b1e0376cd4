"""Hostile files in a source: symlinks out of it, FIFOs, device files, folders nested past reason.

Each is skipped and counted with its reason; nothing outside the source is ever read, and no
file can hang the ingest or exhaust memory.
"""

import os
import subprocess
import threading
from pathlib import Path

import pytest

from engine.ingest.sources import MAX_DEPTH, discover
from engine.service import Engine

SECRET = "root:x:0:0:hunter2-supersecret-token:/root:/bin/bash"


@pytest.fixture
def engine(settings, embedder) -> Engine:
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    return engine


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """docs/ with one real page and every kind of file an attacker (or an accident) could put beside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.env").write_text(SECRET + "\n")
    docs = tmp_path / "project" / "docs"
    docs.mkdir(parents=True)
    (docs / "index.md").write_text("# Install\n\nRun `pip install tinyviz` to install it.\n")
    (docs / "users.md").symlink_to(outside / "secret.env")  # absolute link out of the source
    (docs / "x.md").symlink_to(Path("..") / ".." / "outside" / "secret.env")  # relative link out of it
    (docs / "again.md").symlink_to("index.md")  # a link that stays inside is an ordinary page
    (docs / "zero.md").symlink_to("/dev/zero")  # reads forever
    os.mkfifo(docs / "pipe.md")  # blocks forever on open
    (docs / "loop.md").symlink_to("loop.md")  # a link to itself
    (docs / "shared").symlink_to(outside, target_is_directory=True)  # a folder link out of the source
    return docs.parent


def _with_deadline(function, seconds: float = 60):
    """Run ``function`` in a thread; a hang fails the test instead of hanging the suite."""
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = function()
        except BaseException as error:  # noqa: BLE001 - reported to the test below
            result["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s (a FIFO or device file was opened?)"
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_discover_lists_only_regular_files_inside_the_source_and_says_why_for_the_rest(hostile):
    info = _with_deadline(lambda: discover(hostile))
    assert info.files == ["docs/again.md", "docs/index.md"]
    reasons = dict(info.skipped)
    assert reasons["docs/users.md"] == reasons["docs/x.md"] == reasons["docs/zero.md"] == "links outside the source"
    assert reasons["docs/shared"] == "links outside the source"
    assert reasons["docs/pipe.md"] == "not a regular file"
    assert reasons["docs/loop.md"] == "broken link"


def test_ingest_never_indexes_what_a_symlink_points_at_outside_the_source(engine, hostile):
    report = _with_deadline(lambda: engine.ingest(hostile))
    assert sorted(report.added) == ["docs/again.md", "docs/index.md"]
    assert report.skipped["links outside the source"] == 4
    assert report.skipped["not a regular file"] == 1
    assert report.skipped["broken link"] == 1
    found = " ".join(h.chunk.text for h in engine.search("root x 0 0 hunter2 supersecret token bin bash", k=10))
    assert "hunter2" not in found and "pip install tinyviz" in found


def test_a_tracked_symlink_in_a_git_checkout_is_refused_too(engine, hostile):
    project = hostile
    os.remove(project / "docs" / "pipe.md")  # git can't track a FIFO; everything else is committed
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "hostile"], check=True)
    tracked = subprocess.run([*git, "ls-files"], check=True, capture_output=True, text=True).stdout.split()
    assert "docs/users.md" in tracked  # git really tracks the link
    report = _with_deadline(lambda: engine.ingest(project))
    assert sorted(report.added) == ["docs/again.md", "docs/index.md"]
    assert report.skipped["links outside the source"] >= 2
    assert not any("hunter2" in h.chunk.text for h in engine.search("hunter2 supersecret root", k=10))


def test_folders_nested_past_the_limit_are_skipped_not_a_recursion_error(tmp_path):
    root = tmp_path / "deep"
    root.mkdir()
    try:
        folder = root
        for _ in range(1100):  # one level at a time: pathlib's own mkdir(parents=True) recurses too
            folder = folder / "d"
            folder.mkdir()
        (folder / "bottom.md").write_text("# Bottom\n")
        (root / "top.md").write_text("# Top\n")
        info = _with_deadline(lambda: discover(root))
    finally:  # pytest's own clean-up (shutil.rmtree) recurses, and would fail on this tree
        subprocess.run(["rm", "-rf", str(root)], check=True)
    assert info.files == ["top.md"]
    assert [why for _, why in info.skipped] == [f"nested deeper than {MAX_DEPTH} folders"]


def test_a_file_that_grows_past_the_limit_after_the_size_check_is_cut_off(tmp_path, monkeypatch):
    from engine.ingest import sources

    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 1000)
    (tmp_path / "big.md").write_text("x" * 5000)
    with pytest.raises(sources.UnreadableFile, match="larger than"):
        sources.read_text(tmp_path, "big.md")


def _hostile_checkout(project: Path, marker: Path) -> None:
    """A checkout whose own .git/config would run a command when git reads it carelessly."""
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "hostile"], check=True)
    hook = project / "run-me.sh"
    hook.write_text(f"#!/bin/sh\necho pwned >> {marker}\n")
    hook.chmod(0o755)
    for key in ("core.fsmonitor", "core.pager", "diff.external", "core.sshCommand"):
        subprocess.run(["git", "-C", str(project), "config", key, str(hook)], check=True)
    hooks = project / ".git" / "hooks"
    for name in ("post-index-change", "post-checkout", "pre-commit"):
        (hooks / name).write_text(f"#!/bin/sh\necho {name} >> {marker}\n")
        (hooks / name).chmod(0o755)


def test_git_never_runs_a_command_that_a_hostile_checkout_configures(tmp_path):
    """``core.fsmonitor`` in a checkout's own config is a command that plain ``git ls-files`` runs;
    ingesting someone's repository must not run their code."""
    project = tmp_path / "project"
    (project / "docs").mkdir(parents=True)
    (project / "docs" / "index.md").write_text("# Install\n")
    marker = tmp_path / "ran"
    _hostile_checkout(project, marker)
    (project / "docs" / "index.md").write_text("# Install\n\nchanged since the commit\n")
    info = _with_deadline(lambda: discover(project))
    assert info.files == ["docs/index.md"] and info.ref  # still read as a checkout
    assert not marker.exists(), marker.read_text()


def test_git_ignores_the_system_config_and_an_inherited_git_dir(tmp_path, monkeypatch):
    from engine.ingest import sources

    project = tmp_path / "project"
    project.mkdir()
    (project / "a.md").write_text("# A\n")
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    (project / "a.md").write_text("# A, changed\n")
    system = tmp_path / "system.gitconfig"
    marker = tmp_path / "ran-system"
    system.write_text(f"[core]\n\tfsmonitor = \"touch {marker}; echo\"\n")
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(system))
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))  # an inherited GIT_DIR must not redirect the read
    env = sources.git_environment()
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and "GIT_DIR" not in env
    info = discover(project)
    assert info.files == ["a.md"] and info.ref
    assert not marker.exists()


def test_a_hard_link_is_skipped_and_counted_not_read(engine, tmp_path):
    """A hard link to a file outside the source looks like a regular file inside it; its other name
    can't be found from the source, so any file with several names is skipped and counted."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.env").write_text(SECRET + "\n")
    docs = tmp_path / "project" / "docs"
    docs.mkdir(parents=True)
    (docs / "index.md").write_text("# Install\n\nRun `pip install tinyviz` to install it.\n")
    os.link(outside / "secret.env", docs / "passwd.txt")
    info = discover(docs.parent)
    assert info.files == ["docs/index.md"]
    assert dict(info.skipped)["docs/passwd.txt"] == "hard link (a file with other names)"
    report = _with_deadline(lambda: engine.ingest(docs.parent))
    assert report.added == ["docs/index.md"] and report.skipped["hard link (a file with other names)"] == 1
    assert not any("hunter2" in h.chunk.text for h in engine.search("hunter2 supersecret root", k=10))


def test_a_folder_swapped_for_a_link_after_the_check_is_not_followed(tmp_path, monkeypatch):
    """The check and the open are apart in time: a folder replaced by a link out of the source in
    between must fail to open, not be read through."""
    from engine.ingest import sources

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "page.md").write_text(SECRET + "\n")
    root = tmp_path / "project"
    (root / "docs" / "sub").mkdir(parents=True)
    (root / "docs" / "sub" / "page.md").write_text("# Fine\n")
    assert sources.read_text(root, "docs/sub/page.md") == "# Fine\n"
    # The swap, after every check said "docs/sub/page.md is a regular file inside the source".
    os.remove(root / "docs" / "sub" / "page.md")
    os.rmdir(root / "docs" / "sub")
    (root / "docs" / "sub").symlink_to(outside, target_is_directory=True)
    monkeypatch.setattr(sources, "refusal", lambda root, rel: None)
    monkeypatch.setattr(sources, "_real_relative", lambda root, rel: rel, raising=False)
    with pytest.raises(sources.UnreadableFile, match="changed while being read"):
        sources.read_text(root, "docs/sub/page.md")
