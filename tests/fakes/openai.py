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
    files: dict[str, list[dict]] = field(default_factory=dict)  # uploaded training files, parsed
    jobs: dict[str, dict] = field(default_factory=dict)
    steps_per_poll: int = 5  # a job has 10 steps
    fail_next: str | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        app.router.add_post("/v1/files", self.upload)
        app.router.add_post("/v1/fine_tuning/jobs", self.create_job)
        app.router.add_get("/v1/fine_tuning/jobs/{id}", self.get_job)
        app.router.add_post("/v1/fine_tuning/jobs/{id}/cancel", self.cancel_job)
        return app

    @staticmethod
    def _refuse(status: int, message: str) -> web.Response:
        return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=status)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {API_KEY}"

    async def upload(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._refuse(401, "Invalid API key")
        form = await request.post()
        upload = form.get("file")
        if form.get("purpose") != "fine-tune" or not hasattr(upload, "file"):
            return self._refuse(400, "purpose=fine-tune and a file are required")
        rows = [json.loads(line) for line in upload.file.read().decode().splitlines() if line.strip()]
        if any([m["role"] for m in row["messages"]] != ["system", "user", "assistant"] for row in rows):
            return self._refuse(400, "each line needs system, user and assistant messages")
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = rows
        return web.json_response({"id": file_id, "object": "file", "purpose": "fine-tune", "bytes": 1})

    async def create_job(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._refuse(401, "Invalid API key")
        body = await request.json()
        if body.get("training_file") not in self.files:
            return self._refuse(400, f"invalid training_file: {body.get('training_file')}")
        job_id = f"ftjob-{len(self.jobs) + 1}"
        self.jobs[job_id] = {"id": job_id, "object": "fine_tuning.job", "model": body["model"], "status": "validating_files",
                             "training_file": body["training_file"], "hyperparameters": body.get("hyperparameters", {}),
                             "fine_tuned_model": None, "error": None, "trained_steps": 0, "total_steps": 10,
                             "suffix": body.get("suffix"), "_fail": self.fail_next}
        self.fail_next = None
        return web.json_response(self._public(self.jobs[job_id]))

    @staticmethod
    def _public(job: dict) -> dict:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    async def get_job(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if not self._authorised(request) or job is None:
            return self._refuse(404, "no such job")
        if job["status"] in ("validating_files", "queued", "running"):
            job["trained_steps"] = min(10, job["trained_steps"] + self.steps_per_poll)
            job["status"] = "running"
            if job["trained_steps"] >= 10:
                if job["_fail"]:
                    job["status"], job["error"] = "failed", {"code": "invalid_training_file", "message": job["_fail"]}
                else:
                    job["status"] = "succeeded"
                    job["fine_tuned_model"] = f"ft:{job['model']}:org:{job['suffix']}:abc123"
        return web.json_response(self._public(job))

    async def cancel_job(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if not self._authorised(request) or job is None:
            return self._refuse(404, "no such job")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return self._refuse(400, f"the job is already {job['status']}")
        job["status"] = "cancelled"
        return web.json_response(self._public(job))

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
