"""Small builders shared by tests (plain data), and a cookie-keeping HTTP client that acts like a browser."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import aiohttp

from engine.index.retriever import Hit
from engine.ingest.chunking import Chunk


def chunk(chunk_id: str, path: str = "docs/a.md", text: str = "text", heading: tuple[str, ...] = ("H",)) -> Chunk:
    return Chunk(chunk_id, path, "Title " + path, heading, text, 1, 3, "docs", f"https://x.test/{path}#L1-L3")


def hit(chunk_id: str, path: str = "docs/a.md", dense: float | None = 0.5, text: str = "text") -> Hit:
    return Hit(chunk(chunk_id, path, text), 1.0, dense, None)


class Browser:
    """An aiohttp client that keeps cookies, like a browser on 127.0.0.1."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, path: str) -> tuple[int, str, str]:
        async with self.session.get(self.url + path, allow_redirects=False) as r:
            return r.status, r.headers.get("Location", ""), await r.text()

    async def csrf(self, path: str = "/review/login") -> str:
        _, _, page = await self.get(path)
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    async def post(self, path: str, data: dict, origin: str | None = "same") -> tuple[int, str, str]:
        headers = {"Origin": self.url} if origin == "same" else {"Origin": origin} if origin else {}
        async with self.session.post(self.url + path, data=data, headers=headers, allow_redirects=False) as r:
            return r.status, r.headers.get("Location", ""), await r.text()

    async def sign_in(self, token: str) -> None:
        status, location, _ = await self.post("/review/login", {"token": token, "csrf_token": await self.csrf(),
                                                               "next": "/review/answers"})
        assert (status, location) == (303, "/review/answers")

    async def ask(self, question: str, conversation_id: str | None = None, origin: str | None = "same",
                  **extra) -> tuple[int, list[tuple[str, dict]]]:
        """Ask on the Ask page as its script does: JSON with the page's CSRF token; the events it streamed."""
        _, _, page = await self.get("/ask")
        token = re.search(r'data-csrf="([^"]+)"', page).group(1)
        headers = {"X-CSRF-Token": token, "Content-Type": "application/json"}
        if origin:
            headers["Origin"] = self.url if origin == "same" else origin
        body = json.dumps({"question": question, "conversation_id": conversation_id, **extra})
        async with self.session.post(self.url + "/ask/answer", data=body, headers=headers) as r:
            text = await r.text()
            if r.content_type != "text/event-stream":
                return r.status, [("error", json.loads(text) if text.startswith("{") else {"text": text})]
        events = []
        for block in text.split("\n\n"):
            kind = re.search(r"^event: (.*)$", block, re.M)
            data = re.search(r"^data: (.*)$", block, re.M)
            if kind and data:
                events.append((kind.group(1), json.loads(data.group(1))))
        return r.status, events


def key_with_every_role(key: str, name: str = "tests") -> dict:
    """An ``FIRSTREPLY_API_KEYS`` entry that may answer, review and administer (a plain key may only answer)."""
    return {"key": key, "name": name, "roles": ["answer", "review", "admin"]}


GIT_IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_IDENTITY}).stdout.strip()


def git_upstream(project: Path, folder: Path) -> tuple[Path, Path]:
    """A working copy of ``project`` in ``folder/work`` and the bare repository it pushes to (a "remote" that
    ``file://`` reaches, no network), ``folder/<name>.git`` named after the project's folder."""
    work = folder / "work"
    shutil.copytree(project, work)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-qm", "first")
    bare = folder / f"{project.name}.git"
    git(folder, "clone", "-q", "--bare", str(work), str(bare))
    git(work, "remote", "add", "origin", str(bare))
    return work, bare


def push_change(work: Path, rel_path: str, text: str, branch: str = "main") -> str:
    """Commit ``text`` as ``rel_path`` and push it; the new commit's id."""
    (work / rel_path).write_text(text)
    git(work, "add", rel_path)
    git(work, "commit", "-qm", f"change {rel_path}")
    git(work, "push", "-q", "origin", f"HEAD:{branch}")
    return git(work, "rev-parse", "HEAD")
