"""A source named by a git URL: checked, cloned into the data folder once, and brought up to date on later runs.

`firstreply ingest https://github.com/org/project.git` reads the same checkout
:func:`~engine.ingest.sources.discover` reads for a local folder; this module only gets it there. A URL is
someone else's input, so it is parsed before git sees it: ``https://``, ``ssh://``, ``git@host:path`` and
``file://`` are accepted, and anything git would hand to a transport helper (``ext::sh -c …``, ``fd::``), a
URL that starts with ``-`` (read as an option), plain ``http://`` and ``git://`` (no authentication of the
server), and control characters are refused with :class:`BadGitUrl`.

git runs with :data:`~engine.ingest.sources.SAFE_GIT_CONFIG` and the clean environment ingest always uses,
plus: only the URL's own protocol allowed (``protocol.allow=never`` otherwise, which also stops submodules and
redirects to another transport), a shallow single-branch clone without submodules, without the hook samples of
a template, and with Git LFS's smudge filter switched off (LFS pointers are read as the small text files they
are). A clone or fetch that runs past ``timeout`` seconds, or whose folder grows past ``max_bytes``, is
stopped, and a partial clone is removed, so the next run starts clean.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from engine.ingest.sources import SAFE_GIT_CONFIG, git_environment, web_url

DEFAULT_TIMEOUT_SECONDS = 600.0
DEFAULT_MAX_BYTES = 2_000_000_000  # the checkout and its objects together

_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_USER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}")
_SCP_LIKE = re.compile(r"^(?P<user>[^@/:]+)@(?P<host>[^@/:]+):(?P<path>[^:].*)$")


class BadGitUrl(ValueError):
    """A URL that is not a git repository firstreply will clone; the message says why and what is accepted."""


class GitFailed(RuntimeError):
    """git could not clone or fetch the repository (unreachable, no such ref, too large, too slow)."""


@dataclass(frozen=True)
class GitRemote:
    """A checked git URL: what git is given, the one protocol it may use, and the repository's name."""

    url: str
    protocol: str  # "https", "ssh" or "file": the only one git is allowed for this remote
    name: str  # the repository's name, e.g. "tinyviz" for https://github.com/org/tinyviz.git

    @property
    def web_url(self) -> str | None:
        """The repository's web page (citations link to ``…/blob/<commit>/<path>``); None for a ``file://`` remote."""
        return web_url(self.url)

    def folder_name(self, ref: str | None = None) -> str:
        """The clone's folder under ``sources/``: the name and a hash of the URL and ref, so two remotes (or a
        release tag and the default branch of one) never share a checkout."""
        key = f"{self.url}\0{ref or ''}".encode()
        return f"{self.name}-{hashlib.sha256(key).hexdigest()[:12]}"


def looks_like_git_url(text: str) -> bool:
    """True when ``text`` is meant as a URL rather than a local folder (so it is checked, not looked up on disk)."""
    return "://" in text or "::" in text or bool(_SCP_LIKE.match(text))


def _repository_name(path: str) -> str:
    last = path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", last).strip("-_")[:64].strip("-_")
    if not name:
        raise BadGitUrl(f"can't tell the repository's name from {path!r}")
    return name


def parse_git_url(text: str) -> GitRemote:
    """The remote ``text`` names, or :class:`BadGitUrl` (see the module docstring for what is accepted)."""
    url = text.strip()
    if not url:
        raise BadGitUrl("empty git URL")
    if url.startswith("-"):
        raise BadGitUrl("a git URL may not start with '-' (git would read it as an option)")
    if any(ord(c) < 0x20 or c == "\x7f" or c.isspace() for c in url):
        raise BadGitUrl("a git URL may not hold spaces or control characters")
    if "::" in url.split("://", 1)[0] or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*::", url):
        raise BadGitUrl("git transport helpers (such as ext:: and fd::) are refused: they run commands")
    if scp := _SCP_LIKE.match(url):  # git@github.com:org/project.git
        user, host, path = scp["user"], scp["host"], scp["path"]
        if not _USER.match(user) or not _HOST.match(host) or path.startswith("-"):
            raise BadGitUrl(f"not a usable ssh remote: {url}")
        return GitRemote(url, "ssh", _repository_name(path))
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "git"):
        raise BadGitUrl(f"{scheme}:// is refused (nothing proves who answers); use https:// or ssh")
    if scheme == "https":
        if not parts.hostname or not _HOST.match(parts.hostname) or parts.password:
            raise BadGitUrl(f"not a usable https URL (a host, and no password in it): {url}")
        return GitRemote(url, "https", _repository_name(parts.path))
    if scheme == "ssh":
        if not parts.hostname or not _HOST.match(parts.hostname) or (parts.username and not _USER.match(parts.username)):
            raise BadGitUrl(f"not a usable ssh URL: {url}")
        return GitRemote(url, "ssh", _repository_name(parts.path))
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise BadGitUrl(f"a file:// URL names an absolute path on this machine: {url}")
        return GitRemote(url, "file", _repository_name(parts.path))
    raise BadGitUrl(f"unsupported git URL {url!r}: use https://, ssh://, git@host:path or file://")


@dataclass(frozen=True)
class Checkout:
    """A clone brought up to date: where it is, the commit it holds, and whether that commit is new."""

    path: Path
    commit: str
    changed: bool


def _folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


class RemoteCheckout:
    """Keeps one remote's shallow clone in ``folder``; :meth:`sync` clones it or fetches and resets it."""

    def __init__(self, remote: GitRemote, folder: Path, *, ref: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if ref is not None and not _REF.fullmatch(ref):  # a name, never an option or a refspec ("a:b", "+x", "*")
            raise BadGitUrl(f"not a usable git ref (a branch, tag or commit name): {ref!r}")
        self.remote = remote
        self.folder = folder
        self.ref = ref
        self.timeout = timeout
        self.max_bytes = max_bytes

    def _command(self, *args: str) -> list[str]:
        command = ["git", "--no-pager"]
        for setting in (*SAFE_GIT_CONFIG, f"protocol.{self.remote.protocol}.allow=always", "submodule.recurse=false",
                        "filter.lfs.smudge=", "filter.lfs.process=", "filter.lfs.required=false",
                        "fetch.recurseSubmodules=false"):
            command += ["-c", setting]
        if self.remote.protocol == "ssh":  # SAFE_GIT_CONFIG turns ssh off for reading checkouts; a clone needs it
            command += ["-c", "core.sshCommand=ssh -o BatchMode=yes"]
        return [*command, *args]

    def _run(self, *args: str, cwd: Path | None = None, watch: Path | None = None) -> str:
        """git's output, or :class:`GitFailed`; stopped past the time limit or when ``watch`` grows too large."""
        verb = args[2] if args[0] == "-C" else args[0]
        env = {**git_environment(), "GIT_LFS_SKIP_SMUDGE": "1"}
        process = subprocess.Popen(self._command(*args), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                stdout, stderr = process.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                too_large = watch is not None and _folder_bytes(watch) > self.max_bytes
                if too_large or time.monotonic() > deadline:
                    process.kill()
                    process.communicate()
                    why = f"larger than {self.max_bytes:,} bytes" if too_large else f"took over {self.timeout:g} s"
                    raise GitFailed(f"git {verb} of {self.remote.url} stopped: {why}") from None
        if process.returncode:
            last = (stderr.strip().splitlines() or ["(no message)"])[-1]
            raise GitFailed(f"git {verb} of {self.remote.url} failed: {last}")
        if watch is not None and _folder_bytes(watch) > self.max_bytes:  # done before the first look
            raise GitFailed(f"git {verb} of {self.remote.url} stopped: larger than {self.max_bytes:,} bytes")
        return stdout.strip()

    def _git(self, *args: str, watch: bool = False) -> str:
        return self._run("-C", str(self.folder), *args, watch=self.folder if watch else None)

    def head(self) -> str | None:
        """The commit the clone holds, or None when there is no clone yet."""
        if not (self.folder / ".git").is_dir():
            return None
        try:
            return self._git("rev-parse", "HEAD")
        except GitFailed:
            return None

    def sync(self) -> Checkout:
        """Clone the remote (first run) or fetch it and reset the checkout to what it fetched. One sync of a
        folder at a time (``ingest --watch`` and a push's re-ingest may meet): the others wait for its lock."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        with open(self.folder.with_name(self.folder.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._sync()

    def _sync(self) -> Checkout:
        before = self.head()
        if before is None:
            self._clone()
        else:
            origin = self._git("remote", "get-url", "origin")
            if origin != self.remote.url:
                raise GitFailed(f"{self.folder} holds a clone of {origin}, not of {self.remote.url}")
            try:
                self._git("fetch", "--depth", "1", "--no-tags", "--no-recurse-submodules", "origin",
                          "--", self.ref or "HEAD", watch=True)
                self._git("reset", "--quiet", "--hard", "FETCH_HEAD")
            except GitFailed:
                self._git("reset", "--quiet", "--hard", before)  # the last good checkout stays readable
                raise
        commit = self._git("rev-parse", "HEAD")
        return Checkout(self.folder, commit, commit != before)

    def _clone(self) -> None:
        if self.folder.exists():  # what a killed clone left
            shutil.rmtree(self.folder)
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        branch = ["--branch", self.ref] if self.ref else []
        try:
            self._run("clone", "--quiet", "--depth", "1", "--single-branch", "--no-tags", "--no-recurse-submodules",
                      "--template=", *branch, "--", self.remote.url, str(self.folder), watch=self.folder)
        except GitFailed:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
