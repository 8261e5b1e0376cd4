"""A fake OpenAI-compatible chat-completions server (what Groq, Ollama, vLLM and llama.cpp speak)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web

API_KEY = "test-openai-key"


@dataclass
class ChatReply:
    text: str = "Use `scene.zoom(2)` [1]."
    status: int = 200
    finish_reason: str = "stop"
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class FakeOpenAI:
    script: list[ChatReply] = field(default_factory=list)
    default: ChatReply = field(default_factory=ChatReply)
    requests: list[dict] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return web.json_response({"error": {"message": "Invalid API key", "type": "invalid_request_error"}}, status=401)
        body = await request.json()
        self.requests.append(body)
        reply = self.script.pop(0) if self.script else self.default
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else {}
            return web.json_response({"error": {"message": f"fake error {reply.status}", "type": "server_error"}},
                                     status=reply.status, headers=headers)
        usage = {"prompt_tokens": 40, "completion_tokens": 6, "total_tokens": 46}
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": reply.finish_reason}],
                "usage": usage,
            })
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        words = reply.text.split(" ")
        for index, word in enumerate(words):
            piece = word if index == 0 else " " + word
            chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": body["model"],
                     "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        final = {"choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]}
        await response.write(f"data: {json.dumps(final)}\n\n".encode())
        await response.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
