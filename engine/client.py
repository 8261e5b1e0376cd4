"""``EngineClient``: the answer protocol over HTTP, for frontends that run apart from the engine.

It behaves like the in-process :class:`engine.Engine`: the same answers, the same stream of
events, the same exceptions. When the engine can't be reached, or says it isn't ready, it
raises :class:`EngineUnavailable`, so a frontend can apologise and keep running.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import aiohttp

from engine.answer.model import Answer, Question
from engine.protocol import EngineError, EngineUnavailable, check_channel_settings
from engine.store.repository import UnknownAnswer


class EngineClient:
    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    #: A remote engine counts its own metrics; a frontend that talks to it keeps its own.
    metrics = None

    async def start(self) -> "EngineClient":
        """Nothing to open: the session opens with the first request (so the protocol's lifecycle is the same)."""
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    aclose = close  # the name aiohttp's and httpx's clients use

    async def __aenter__(self) -> "EngineClient":
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @staticmethod
    def _body(question: Question, stream: bool) -> dict[str, Any]:
        body = {"question": question.text, "channel": question.channel, "conversation_id": question.conversation_id,
                "user_id": question.user_id, "title": question.title, "kb": question.kb, "link": question.link,
                "stream": stream}
        return {k: v for k, v in body.items() if v is not None}

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None,
                       request_id: str | None = None) -> aiohttp.ClientResponse:
        """Send one request; connection failures and 502-504 become EngineUnavailable, other errors EngineError."""
        headers = {"X-Request-Id": request_id} if request_id else {}
        try:
            response = await self._client().request(method, self.base_url + path, json=body, headers=headers)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise EngineUnavailable(f"can't reach the engine at {self.base_url}: {error or type(error).__name__}") from None
        if response.status >= 400:
            try:
                message = (await response.json())["error"]["message"]
            except (aiohttp.ContentTypeError, ValueError, KeyError, TypeError):
                message = response.reason or "error"
            response.release()
            if response.status in (502, 503, 504):
                raise EngineUnavailable(f"the engine is unavailable: {message}")
            raise EngineError(response.status, message)
        return response

    async def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The engine's JSON reply (every route it calls answers with an object)."""
        async with await self._request(method, path, body) as response:
            data: dict[str, Any] = await response.json()
            return data

    async def answer(self, question: Question) -> Answer:
        response = await self._request("POST", "/v1/answer", self._body(question, False), question.request_id)
        async with response:
            return Answer.from_dict(await response.json())

    async def answer_stream(self, question: Question) -> AsyncIterator[dict[str, Any]]:
        response = await self._request("POST", "/v1/answer", self._body(question, True), question.request_id)
        event = None
        try:
            async for raw in response.content:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event:
                    data = json.loads(line[5:].strip())
                    if event == "delta":
                        yield {"type": "delta", "text": data["text"]}
                    elif event == "answer":
                        yield {"type": "answer", "answer": Answer.from_dict(data)}
                    elif event == "error":
                        raise EngineError(data.get("status", 500), data.get("message", "stream failed"))
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise EngineUnavailable(f"the engine stopped mid-answer: {error or type(error).__name__}") from None
        finally:
            response.release()

    async def status(self) -> dict[str, Any]:
        return await self._json("GET", "/v1/status")

    async def channel_settings(self, platform: str) -> dict[str, dict[str, bool | None]]:
        return await self._json("GET", f"/v1/channels/{platform}")

    async def set_channel_settings(self, platform: str, channel_id: str, changes: dict[str, bool | None],
                                   by: str | None = None) -> dict[str, bool | None]:
        check_channel_settings(changes)
        body = dict(changes, **({"by": by} if by else {}))
        return await self._json("PUT", f"/v1/channels/{platform}/{channel_id}", body)

    @staticmethod
    def _thread_path(thread_id: str) -> str:
        if not isinstance(thread_id, str) or not thread_id.isdigit() or len(thread_id) > 30:
            raise ValueError("a Discord thread id is a number")
        return f"/v1/discord/threads/{thread_id}"

    async def discord_thread(self, thread_id: str) -> dict[str, bool]:
        data = await self._json("GET", self._thread_path(thread_id))
        return {"answered": data["answered"], "escalated": data["escalated"]}

    async def mark_discord_thread_answered(self, thread_id: str) -> None:
        await self._json("PUT", self._thread_path(thread_id))

    async def escalate_discord_thread(self, thread_id: str) -> bool:
        return bool((await self._json("POST", self._thread_path(thread_id) + "/escalation"))["first"])

    async def feedback(self, answer_id: str, user_id: str, vote: int, comment: str | None = None) -> bool:
        if vote not in (1, -1):
            raise ValueError("vote must be 1 or -1")
        body: dict[str, Any] = {"answer_id": answer_id, "user_id": user_id, "vote": vote}
        if comment is not None:
            body["comment"] = comment
        try:
            response = await self._request("POST", "/v1/feedback", body)
        except EngineError as error:
            if error.status == 404:
                raise UnknownAnswer(answer_id) from None
            raise
        async with response:
            return bool((await response.json())["created"])
