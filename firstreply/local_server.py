"""The running server on this machine, as the CLI finds and asks it: ``serving.json`` in the data folder.

``firstreply serve`` writes the address it bound, its process id and a random instance id there once it
listens, and removes it when it stops; ``firstreply ask`` then asks that server, which has the model and the
index loaded, instead of loading them again (seconds on a small machine). A marker left by a server that died
is ignored: its process is gone.

Asking is one plain ``urllib`` request (:func:`ask`), so a command that gets its answer this way imports of
the engine only its settings and the answer's data classes: no index, store, Chroma, NumPy or aiohttp. The request names the instance id; the server refuses it (409) when its own
differs, i.e. when whatever listens at that address serves another data folder now. Any failure (no answer in
time, an error status, a refusal, a reply that is not an answer) is :class:`ServerDidNotAnswer`, and the
command answers by itself instead.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

MARKER = "serving.json"
#: The request header naming the data folder's server instance (from the marker); the server checks it.
INSTANCE_HEADER = "X-Firstreply-Instance"
#: How long ``firstreply ask`` waits for the running server's answer before answering by itself.
ASK_TIMEOUT_SECONDS = 120.0


class ServerDidNotAnswer(RuntimeError):
    """The running server gave no answer: unreachable, too slow, an error status, or another data folder's."""


@dataclass(frozen=True)
class RunningServer:
    url: str
    instance: str | None = None  # None: a marker written before servers had one (nothing to check)


def announce(data_dir: Path, url: str, instance: str | None = None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = data_dir / f"{MARKER}.{os.getpid()}.tmp"
    found = {"url": url, "pid": os.getpid(), **({"instance": instance} if instance else {})}
    temporary.write_text(json.dumps(found), encoding="utf-8")
    os.replace(temporary, data_dir / MARKER)


def withdraw(data_dir: Path) -> None:
    """Remove the marker if this process wrote it (another server may have started since)."""
    marker = data_dir / MARKER
    try:
        if json.loads(marker.read_text(encoding="utf-8")).get("pid") == os.getpid():
            marker.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def find(data_dir: Path) -> RunningServer | None:
    """The server serving this data folder, or None when there is none alive."""
    try:
        found = json.loads((data_dir / MARKER).read_text(encoding="utf-8"))
        url, pid, instance = found["url"], int(found["pid"]), found.get("instance")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    if instance is not None and not isinstance(instance, str):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, someone else's
        pass
    except (OverflowError, ValueError):  # not a process id at all
        return None
    return RunningServer(url, instance)


def running_server(data_dir: Path) -> str | None:
    """The URL of the server serving this data folder, or None when there is none alive."""
    server = find(data_dir)
    return server.url if server is not None else None


def ask(server: RunningServer, question: str, *, kb: str | None = None, api_key: str | None = None,
        timeout: float | None = None) -> dict:
    """The server's answer to ``question`` as ``POST /v1/answer`` returns it (``Answer.as_dict()``), or
    :class:`ServerDidNotAnswer` saying why not."""
    import http.client
    import urllib.error
    import urllib.request

    timeout = ASK_TIMEOUT_SECONDS if timeout is None else timeout
    body = {"question": question, "channel": "api", **({"kb": kb} if kb else {})}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if server.instance:
        headers[INSTANCE_HEADER] = server.instance
    request = urllib.request.Request(server.url.rstrip("/") + "/v1/answer", data=json.dumps(body).encode("utf-8"),
                                     headers=headers, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # our own server: never through a proxy
    try:
        with opener.open(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise ServerDidNotAnswer(f"it answered {error.code}: {_message(error)}") from None
    except urllib.error.URLError as error:
        raise ServerDidNotAnswer(f"can't reach it: {error.reason}") from None
    except TimeoutError:
        raise ServerDidNotAnswer(f"no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as error:  # the connection reset or closed mid-reply
        raise ServerDidNotAnswer(f"the connection failed: {error or type(error).__name__}") from None
    except ValueError as error:  # not JSON
        raise ServerDidNotAnswer(f"its reply is not JSON: {error}") from None
    if not _is_answer(answer):
        raise ServerDidNotAnswer("its reply is not an answer")
    return answer


def _message(error) -> str:
    try:
        return str(json.loads(error.read())["error"]["message"])
    except (OSError, ValueError, KeyError, TypeError):
        return error.reason or "error"
    finally:
        error.close()


def _is_answer(data: object) -> bool:
    return (isinstance(data, dict) and isinstance(data.get("text"), str) and isinstance(data.get("abstained"), bool)
            and isinstance(data.get("citations"), list)
            and all(isinstance(c, dict) and {"number", "title", "url"} <= c.keys() for c in data["citations"])
            and isinstance(data.get("confidence"), (int, float)) and isinstance(data.get("model"), str))


def guard(app) -> str:
    """Make ``app`` (an aiohttp application, before it starts) refuse, with 409 and before any other middleware,
    a request that names another server instance: it was meant for another data folder's server, which has
    gone, and must not be answered (and logged) here. Return this server's new instance id, for :func:`announce`."""
    from aiohttp import web

    from engine.api.http import error_response

    instance = secrets.token_hex(16)

    @web.middleware
    async def same_instance(request: web.Request, handler):
        named = request.headers.get(INSTANCE_HEADER)
        if named is not None and named != instance:
            return error_response(409, "this server serves another data folder")
        return await handler(request)

    app.middlewares.insert(0, same_instance)
    return instance
