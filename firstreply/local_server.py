"""The running server on this machine, as the CLI finds it: ``serving.json`` in the data folder.

``firstreply serve`` writes the address it bound (and its process id) there once it listens, and removes it
when it stops; ``firstreply ask`` then asks that server, which has the model loaded, instead of loading it
again (seconds on a small machine). A marker left by a server that died is ignored: its process is gone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MARKER = "serving.json"


def announce(data_dir: Path, url: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = data_dir / f"{MARKER}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps({"url": url, "pid": os.getpid()}), encoding="utf-8")
    os.replace(temporary, data_dir / MARKER)


def withdraw(data_dir: Path) -> None:
    """Remove the marker if this process wrote it (another server may have started since)."""
    marker = data_dir / MARKER
    try:
        if json.loads(marker.read_text(encoding="utf-8")).get("pid") == os.getpid():
            marker.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def running_server(data_dir: Path) -> str | None:
    """The URL of the server serving this data folder, or None when there is none alive."""
    try:
        found = json.loads((data_dir / MARKER).read_text(encoding="utf-8"))
        url, pid = found["url"], int(found["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, someone else's
        pass
    return url
