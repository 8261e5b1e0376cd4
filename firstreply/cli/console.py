"""How a command talks to the person at the terminal: the two consoles, the progress bar, and known failures
(a full disk among them) turned into one line on stderr instead of a traceback."""

from __future__ import annotations

import errno
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engine.config import ConfigError

err = Console(stderr=True)
out = Console()


@contextmanager
def _failures_as_messages(data_dir: Path | None = None):
    """Known failures as one line; any failure while the data folder's disk is full as that (the stores say
    things like "InternalError: Error in compaction" when they run out of space)."""
    from engine.index.embedder import EmbeddingModelError
    from engine.index.vectors import VectorStoreError
    from engine.store.database import DatabaseError

    try:
        yield
    except Exception as error:
        full = _disk_full(data_dir) if data_dir is not None else None
        if full is None and _out_of_space(error):  # the space may be free again by now (temporary files removed)
            full = (f"the disk{f' holding {data_dir}' if data_dir else ''} ran out of space: free some space and run "
                    "it again; the index is as it was before this run")
        if full is not None:
            raise click.ClickException(full) from error  # the chain stays for --debug and logs
        if isinstance(error, (EmbeddingModelError, VectorStoreError, DatabaseError, ConfigError, FileNotFoundError,
                              ValueError, OSError)):
            raise click.ClickException(str(error)) from None
        raise


def _out_of_space(error: BaseException) -> bool:
    """Whether ``error``, or any error in its chain, is the disk running out of space (ENOSPC, EDQUOT, or
    SQLite's "database or disk is full"), however the store that met it worded its own error."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return True
        if "no space left on device" in str(current).lower() or "database or disk is full" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


DISK_NEARLY_FULL_BYTES = 64 * 1024 * 1024


def _disk_full(data_dir: Path) -> str | None:
    import shutil

    folder = data_dir.resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    if free >= DISK_NEARLY_FULL_BYTES:
        return None
    return (f"the disk holding {data_dir} is full ({free // 1024:,} KiB free): free some space and run it again; "
            "the index is as it was before this run")


@contextmanager
def _progress(enabled: bool):
    if not enabled:
        yield None
        return
    with Progress(TextColumn("{task.description:>14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update
