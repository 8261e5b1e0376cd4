"""A fake of the Gemini REST API (v1beta): generateContent, streamGenerateContent (SSE), countTokens.

Responses follow the documented shapes (candidates, finishReason, usageMetadata,
promptFeedback, google.rpc error bodies with RetryInfo). Each test scripts what the next
calls return — text, a safety block, an HTTP error with a retry hint, or a stall — and reads
back every request the client made.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web

API_KEY = "test-gemini-key"


@dataclass
class Reply:
    text: str = "Zoom with `scene.zoom(2)` [1]."
    status: int = 200
    finish_reason: str = "STOP"
    block_reason: str | None = None
    retry_after: float | None = None  # sent as a Retry-After header
    retry_delay: str | None = None  # sent as google.rpc.RetryInfo in the body
    delay: float = 0.0  # seconds before answering (timeouts)
    chunks: int = 3  # pieces of a streamed answer
    pieces: list[str] | None = None  # exactly these pieces, streamed in order (as a tokenizer would cut them)
    message: str | None = None  # the error's message (some upstreams echo the credential in it)


@dataclass
class FakeGemini:
    script: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)
    requests: list[dict] = field(default_factory=list)

    def next(self) -> Reply:
        return self.script.pop(0) if self.script else self.default

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1beta/{tail:.+}", self.handle)
        return app

    @staticmethod
    def error(reply: Reply) -> web.Response:
        status_names = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED"}
        body = {"error": {"code": reply.status, "message": reply.message or f"fake error {reply.status}",
                          "status": status_names.get(reply.status, "UNKNOWN")}}
        if reply.retry_delay:
            body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": reply.retry_delay}]
        headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else {}
        return web.json_response(body, status=reply.status, headers=headers)

    @staticmethod
    def body(reply: Reply, text: str, final: bool = True) -> dict:
        if reply.block_reason:
            return {"promptFeedback": {"blockReason": reply.block_reason}, "usageMetadata": {"promptTokenCount": 11}}
        candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if final:
            candidate["finishReason"] = reply.finish_reason
        return {"candidates": [candidate],
                "usageMetadata": {"promptTokenCount": 42, "candidatesTokenCount": 7, "totalTokenCount": 49},
                "modelVersion": "fake-1"}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        resource, _, method = request.match_info["tail"].rpartition(":")
        if request.headers.get("x-goog-api-key") != API_KEY:
            return web.json_response({"error": {"code": 403, "message": "API key not valid", "status": "PERMISSION_DENIED"}}, status=403)
        payload = await request.json()
        self.requests.append({"resource": resource, "method": method, "query": dict(request.query), "json": payload})
        if not (resource.startswith("models/") or resource.startswith("tunedModels/")):
            return web.json_response({"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}, status=404)
        if method == "countTokens":
            text = " ".join(p.get("text", "") for c in payload.get("contents", []) for p in c.get("parts", []))
            return web.json_response({"totalTokens": len(text.split())})
        reply = self.next()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            return self.error(reply)
        if method == "generateContent":
            return web.json_response(self.body(reply, reply.text))
        if method == "streamGenerateContent":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            size = max(1, len(reply.text) // reply.chunks + 1)
            pieces = reply.pieces or [reply.text[i : i + size] for i in range(0, len(reply.text), size)] or [""]
            for index, piece in enumerate(pieces):
                data = self.body(reply, piece, final=index == len(pieces) - 1)
                await response.write(f"data: {json.dumps(data)}\r\n\r\n".encode())
                if reply.block_reason:
                    break
            await response.write_eof()
            return response
        return web.json_response({"error": {"code": 400, "message": f"unknown method {method}"}}, status=400)
