"""Finding a source's files, reading them safely, and choosing the parser for each.

A source is a folder or a git checkout. In a checkout only tracked files are read (so build
output and ignored files stay out) and the repository URL and ref are read from git when
the caller gives none.

Every path is hostile until checked: only regular files whose real path lies inside the
source are read (a symlink to ``/etc/passwd``, to ``/dev/zero`` or to a FIFO is skipped, with
its reason), folders are walked without recursion to a fixed depth, and a file is read with a
bounded ``read`` on a descriptor that was checked to be a regular file, never by its name alone.
git itself runs with every command a checkout's own config could name switched off.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.ingest.code_units import grammar_for, parse_code
from engine.ingest.config_files import is_config_file, parse_config_file
from engine.ingest.document import ParsedDocument
from engine.ingest.markdown import parse_markdown
from engine.ingest.notebook import parse_notebook
from engine.ingest.plaintext import parse_text
from engine.ingest.python_source import parse_example_script, parse_python_module
from engine.ingest.rst import parse_rst

#: Folders never worth reading in a plain folder walk.
SKIPPED_DIRS = {"node_modules", "__pycache__", "venv", "site-packages", "build", "dist", "_build"}
#: Hidden names a plain folder walk still reads: CI workflows and the example environment file.
VISIBLE_DOTNAMES = {".github", ".env.example", ".env.sample", ".env.template"}
#: Folders of dependencies and build output: skipped and counted, in a checkout too (where they are tracked).
GENERATED_DIRS = {"node_modules", "dist", "vendor", "target", "bower_components"}
GENERATED = "generated, minified or vendored"
#: Bundles and minified files, by name.
GENERATED_SUFFIXES = (".min.js", ".min.mjs", ".min.css", ".bundle.js", ".js.map", ".d.ts.map")
#: A source file whose lines are this long on average, or that has one line this long, is minified or data.
MAX_MEAN_LINE = 250
MAX_LINE = 10_000
#: Go's convention (``// Code generated … DO NOT EDIT.``) and ``@generated``, in a file's first lines.
_GENERATED_MARKER = re.compile(r"^\s*(//|#|/\*|\*)\s*(Code generated .* DO NOT EDIT\.|@generated\b)", re.MULTILINE)
EXAMPLE_DIRS = {"example", "examples", "tutorial", "tutorials", "demos", "samples", "gallery"}
MAX_FILE_BYTES = 2_000_000
MAX_DEPTH = 64  # folders below the source's root; deeper ones are skipped and counted
OUTSIDE = "links outside the source"
NOT_REGULAR = "not a regular file"
BROKEN_LINK = "broken link"
FOLDER_LINK = "link to a folder (not followed)"
HARD_LINK = "hard link (a file with other names)"
CHANGED = "changed while being read"


def _is_example(rel_path: str) -> bool:
    return any(part.lower() in EXAMPLE_DIRS for part in rel_path.split("/")[:-1])


def generated_by_path(rel_path: str) -> bool:
    """Whether a file is dependency or build output by where it lies or what it is called (``*.min.js``)."""
    *folders, name = rel_path.split("/")
    return any(part in GENERATED_DIRS for part in folders) or name.lower().endswith(GENERATED_SUFFIXES)


def generated_by_text(rel_path: str, text: str) -> bool:
    """Whether a source file's text is minified or generated: very long lines, or a generated-code marker.

    Only source code and config files are judged: prose formats put a paragraph on one line."""
    if grammar_for(rel_path) is None and not is_config_file(rel_path):
        return False
    lines = text.count("\n") + 1
    if len(text) > 2000 and (len(text) / lines > MAX_MEAN_LINE or max(map(len, text.splitlines())) > MAX_LINE):
        return True
    return _GENERATED_MARKER.search(text[:2000]) is not None


def parser_for(rel_path: str) -> Callable[[str, str], ParsedDocument] | None:
    """The parser for a file, or None when the format is not one firstreply reads."""
    name = rel_path.rsplit("/", 1)[-1].lower()
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    if is_config_file(rel_path):
        return parse_config_file
    if grammar_for(rel_path) is not None:
        return lambda p, t: parse_code(p, t, "example" if _is_example(p) else "code")
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
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) for what may not be read


class UntrustedCheckout(ValueError):
    """git refuses to read a checkout that another user owns; reading it as a plain folder would
    quietly lose its links and read its untracked files, so the ingest stops and says so."""


#: A checkout is someone else's code, and its own ``.git/config`` can name commands that git runs
#: while merely listing files (``core.fsmonitor`` runs on ``git ls-files``), plus hooks, pagers,
#: external diffs and transports. Command-line config outranks the checkout's, so each is switched
#: off here; ``safe.bareRepository=explicit`` stops a bare repository planted in the source from
#: being picked up as the repository. The operator's global config (``safe.directory``) still applies.
SAFE_GIT_CONFIG = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.pager=cat",
    "core.untrackedCache=false",
    "core.sshCommand=false",
    "core.gitProxy=",
    "diff.external=",
    "credential.helper=",
    "protocol.allow=never",
    "safe.bareRepository=explicit",
)

#: Environment that would point git at another repository, config or command; dropped for ingest.
_GIT_ENV_DROPPED = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_CONFIG", "GIT_CONFIG_SYSTEM", "GIT_EXTERNAL_DIFF", "GIT_PAGER",
    "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_EDITOR", "GIT_EXEC_PATH", "GIT_TRACE",
)


def git_environment() -> dict[str, str]:
    """The environment git runs in during ingest: no system config, no pager, no prompts, no locks."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_DROPPED}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat", PAGER="cat",
               GIT_OPTIONAL_LOCKS="0", GIT_NO_REPLACE_OBJECTS="1", GIT_ASKPASS="false", SSH_ASKPASS="false")
    return env


def _git(root: Path, *args: str) -> str | None:
    command = ["git", "--no-pager"]
    for setting in SAFE_GIT_CONFIG:
        command += ["-c", setting]
    try:
        result = subprocess.run([*command, "-C", str(root), *args], capture_output=True, text=True, timeout=30,
                                env=git_environment(), stdin=subprocess.DEVNULL)
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


class UnreadableFile(Exception):
    """A file that exists but cannot be read as text; the message says why."""


def _real_relative(root: Path, rel_path: str) -> str:
    """Where ``rel_path`` really lies, relative to ``root`` (links inside the source followed), or
    :class:`UnreadableFile` with the reason when it lies outside or nowhere. ``root`` must be resolved."""
    try:
        real = (root / rel_path).resolve(strict=True)
    except (OSError, RuntimeError):  # missing target, or a loop of links
        raise UnreadableFile(BROKEN_LINK) from None
    if not real.is_relative_to(root):
        raise UnreadableFile(OUTSIDE)
    return real.relative_to(root).as_posix()


def _file_refusal(mode: int, links: int) -> str | None:
    if not stat.S_ISREG(mode):
        return NOT_REGULAR
    # A hard link's other names can't be found from here, and one may be outside the source (a file
    # linked in from elsewhere on the same disk): such files are skipped and counted, never read.
    return HARD_LINK if links > 1 else None


def refusal(root: Path, rel_path: str) -> str | None:
    """Why ``rel_path`` may not be read (None: a regular file with one name, whose real path is inside ``root``).

    ``root`` must already be resolved."""
    try:
        real = root / _real_relative(root, rel_path)
        status = real.stat()
    except UnreadableFile as error:
        return str(error)
    except OSError:
        return BROKEN_LINK
    return _file_refusal(status.st_mode, status.st_nlink)


def _open_inside(root: Path, real_rel: str, flags: int) -> int:
    """A descriptor for ``real_rel`` opened one folder at a time from ``root`` with ``O_NOFOLLOW``, so a
    folder or file swapped for a link after the check fails to open instead of leading out of the source."""
    nofollow = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    folder = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        *folders, name = real_rel.split("/")
        for part in folders:
            inner = os.open(part, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow, dir_fd=folder)
            os.close(folder)
            folder = inner
        return os.open(name, flags | nofollow, dir_fd=folder)
    finally:
        os.close(folder)


def _walk(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Every visible file below ``root`` (relative POSIX paths) and what was skipped, without recursion."""
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    stack: list[tuple[str, int]] = [("", 0)]
    while stack:
        rel_dir, depth = stack.pop()
        try:
            with os.scandir(root / rel_dir) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError as error:
            skipped.append((rel_dir or ".", f"unreadable folder ({error.strerror or error})"))
            continue
        for entry in listed:
            if entry.name.startswith(".") and entry.name not in VISIBLE_DOTNAMES:
                continue
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.is_dir(follow_symlinks=False):
                if entry.name in GENERATED_DIRS:
                    skipped.append((rel, GENERATED))  # counted once for the folder; never walked
                    continue
                if entry.name in SKIPPED_DIRS:
                    continue
                if depth + 1 > MAX_DEPTH:
                    skipped.append((rel, f"nested deeper than {MAX_DEPTH} folders"))
                else:
                    stack.append((rel, depth + 1))
            elif entry.is_symlink() and os.path.isdir(root / rel):  # isdir: False for a loop of links
                # Following folder links invites loops and duplicates; one that leaves the source is refused.
                inside = Path(os.path.realpath(root / rel)).is_relative_to(root)
                skipped.append((rel, FOLDER_LINK if inside else OUTSIDE))
            else:
                why = refusal(root, rel)
                if why is None:
                    files.append(rel)
                else:
                    skipped.append((rel, why))
    return files, skipped


def discover(root: Path, repo_url: str | None = None, ref: str | None = None) -> SourceInfo:
    root = root.resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    top = _git(root, "rev-parse", "--show-toplevel")
    repo_prefix = ""
    skipped: list[tuple[str, str]] = []
    if top:  # the folder is a checkout, or inside one: tracked files only, links into the repository
        listed = _git(root, "ls-files", "-z") or ""
        files = []
        for rel in sorted(f for f in listed.split("\0") if f):
            if not os.path.lexists(root / rel):
                continue  # tracked but deleted in the working tree
            why = refusal(root, rel)
            if why is None:
                files.append(rel)
            else:
                skipped.append((rel, why))
        if repo_url is None and (remote := _git(root, "remote", "get-url", "origin")):
            repo_url = web_url(remote)
        ref = ref or _git(root, "rev-parse", "HEAD")
        relative = root.relative_to(Path(top).resolve()).as_posix()
        repo_prefix = "" if relative == "." else relative + "/"
    else:
        files, skipped = _walk(root)
        files.sort()
    return SourceInfo(root=root, files=files, repo_url=repo_url, ref=ref, repo_prefix=repo_prefix,
                      skipped=sorted(skipped))


def snapshot(root: Path) -> str:
    """A cheap fingerprint of the files :func:`discover` would read (names, sizes, modification times, and the
    commit of a checkout): it changes when any of them does, without reading a file (``ingest --watch`` polls it)."""
    info = discover(root)
    digest = hashlib.sha256(f"{info.ref}\0".encode())
    for rel_path in info.files:
        try:
            status = (info.root / rel_path).stat()
        except OSError:
            continue
        digest.update(f"{rel_path}\0{status.st_size}\0{status.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def read_bytes(root: Path, rel_path: str, limit: int | None = None) -> bytes:
    """Up to ``limit`` bytes (default: all, at most ``MAX_FILE_BYTES``) of a regular file inside ``root``.

    The real path is checked, then opened from ``root`` one folder at a time with ``O_NOFOLLOW``
    (so a folder swapped for a link since the check can't lead outside), ``O_NONBLOCK`` (so a FIFO
    swapped in can't block) and ``fstat`` on the descriptor, so what was checked is what is read.
    """
    root = root.resolve()
    real_rel = _real_relative(root, rel_path)
    try:
        descriptor = _open_inside(root, real_rel, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):  # a link where the check saw a file or folder
            raise UnreadableFile(CHANGED) from None
        raise UnreadableFile(error.strerror or str(error)) from None
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(handle.fileno())
        if (why := _file_refusal(status.st_mode, status.st_nlink)) is not None:
            raise UnreadableFile(why)
        wanted = MAX_FILE_BYTES if limit is None else limit
        try:
            data = handle.read(wanted + 1)  # one byte more tells a file that is too large
        except OSError as error:
            raise UnreadableFile(error.strerror or str(error)) from None
    if limit is None and len(data) > MAX_FILE_BYTES:
        raise UnreadableFile(f"larger than {MAX_FILE_BYTES:,} bytes")
    return data[:wanted]


def looks_binary(root: Path, rel_path: str) -> bool:
    """True when the file's first 8 KiB hold a NUL byte, as binary formats' do and text never does."""
    try:
        return b"\0" in read_bytes(root, rel_path, 8192)
    except UnreadableFile:
        return False


def read_text(root: Path, rel_path: str) -> str | None:
    """The text of ``rel_path`` in ``root``; None for binary files; :class:`UnreadableFile` when it can't be read."""
    data = read_bytes(root, rel_path)
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableFile(f"not UTF-8 text (byte {error.start})") from None
