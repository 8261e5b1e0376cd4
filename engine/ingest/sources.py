"""Finding a source's files, reading them safely, and choosing the parser for each.

A source is a folder or a git checkout. In a checkout only tracked files are read (so build
output and ignored files stay out) and the repository URL and ref are read from git when
the caller gives none.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.ingest.document import ParsedDocument
from engine.ingest.markdown import parse_markdown
from engine.ingest.notebook import parse_notebook
from engine.ingest.plaintext import parse_text
from engine.ingest.python_source import parse_example_script, parse_python_module
from engine.ingest.rst import parse_rst

#: Folders never worth reading in a plain folder walk.
SKIPPED_DIRS = {"node_modules", "__pycache__", "venv", "site-packages", "build", "dist", "_build"}
EXAMPLE_DIRS = {"example", "examples", "tutorial", "tutorials", "demos", "samples", "gallery"}
MAX_FILE_BYTES = 2_000_000


def _is_example(rel_path: str) -> bool:
    return any(part.lower() in EXAMPLE_DIRS for part in rel_path.split("/")[:-1])


def parser_for(rel_path: str) -> Callable[[str, str], ParsedDocument] | None:
    """The parser for a file, or None when the format is not one firstreply reads."""
    name = rel_path.rsplit("/", 1)[-1].lower()
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    if suffix in {"md", "mdx", "markdown"}:
        return lambda p, t: parse_markdown(p, t, "example" if _is_example(p) else "docs")
    if suffix == "rst":
        return lambda p, t: parse_rst(p, t, "example" if _is_example(p) else "docs")
    if suffix == "txt":
        return parse_text
    if suffix == "py":
        return parse_example_script if _is_example(rel_path) else parse_python_module
    if suffix == "ipynb":
        return parse_notebook
    return None


@dataclass(frozen=True)
class SourceInfo:
    root: Path
    files: list[str]  # relative POSIX paths, sorted
    repo_url: str | None
    ref: str | None
    repo_prefix: str = ""  # where the folder sits in its repository, e.g. "docs/"


class UntrustedCheckout(ValueError):
    """git refuses to read a checkout that another user owns; reading it as a plain folder would
    quietly lose its links and read its untracked files, so the ingest stops and says so."""


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode and "dubious ownership" in result.stderr:
        named = re.search(r"repository at '([^']+)'", result.stderr)
        top = named.group(1) if named else root  # safe.directory names the checkout's top, not a folder in it
        raise UntrustedCheckout(
            f"git refuses to read {top}: the checkout belongs to another user. If you trust it, mark it safe "
            f"(git config --global --add safe.directory {top}; in a container, set GIT_CONFIG_COUNT=1 "
            f"GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0={top}) or ingest it as its owner."
        )
    return result.stdout.strip() if result.returncode == 0 else None


def web_url(remote: str) -> str | None:
    """Turn a git remote (ssh or https) into the repository's web URL; None for a remote that has
    none (a local path or ``file://`` clone), whose chunks then link by path."""
    url = remote.strip().removesuffix(".git")
    if url.startswith("git@") and ":" in url:
        host, _, path = url[4:].partition(":")
        url = f"https://{host}/{path}"
    elif url.startswith("ssh://git@"):
        url = "https://" + url.removeprefix("ssh://git@")
    return url if url.startswith(("https://", "http://")) else None


def discover(root: Path, repo_url: str | None = None, ref: str | None = None) -> SourceInfo:
    root = root.resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    top = _git(root, "rev-parse", "--show-toplevel")
    repo_prefix = ""
    if top:  # the folder is a checkout, or inside one: tracked files only, links into the repository
        listed = _git(root, "ls-files", "-z") or ""
        files = sorted(f for f in listed.split("\0") if f and (root / f).is_file())
        if repo_url is None and (remote := _git(root, "remote", "get-url", "origin")):
            repo_url = web_url(remote)
        ref = ref or _git(root, "rev-parse", "HEAD")
        relative = root.relative_to(Path(top).resolve()).as_posix()
        repo_prefix = "" if relative == "." else relative + "/"
    else:
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIPPED_DIRS)
            rel_dir = Path(dirpath).relative_to(root).as_posix()
            for name in filenames:
                if not name.startswith("."):
                    files.append(name if rel_dir == "." else f"{rel_dir}/{name}")
        files.sort()
    return SourceInfo(root=root, files=files, repo_url=repo_url, ref=ref, repo_prefix=repo_prefix)


def looks_binary(path: Path) -> bool:
    """True when the file's first 8 KiB hold a NUL byte, as binary formats' do and text never does."""
    try:
        with path.open("rb") as handle:
            return b"\0" in handle.read(8192)
    except OSError:
        return False


class UnreadableFile(Exception):
    """A file that exists but cannot be read as text; the message says why."""


def read_text(path: Path) -> str | None:
    """The file's text; None for binary files; :class:`UnreadableFile` when it can't be read."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UnreadableFile(f"larger than {MAX_FILE_BYTES // 1_000_000} MB")
        data = path.read_bytes()
    except OSError as error:
        raise UnreadableFile(error.strerror or str(error)) from None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableFile(f"not UTF-8 text (byte {error.start})") from None
