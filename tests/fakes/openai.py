"""A fake OpenAI-compatible server: chat completions (what Groq, Ollama, vLLM and llama.cpp speak) and
OpenAI's fine-tuning API (files, jobs, events), as strict as the real one.

Fine-tuning bodies are checked against the ``openai`` package's own types (its request TypedDicts and
response models are generated from OpenAI's OpenAPI spec): an unknown argument anywhere, a wrong
type, a value out of range or a missing required field is a 400 in OpenAI's error shape, and every
job, file and event the fake answers with is first validated as the package's model of it.
"""

from __future__ import annotations

import asyncio
import collections.abc
import json
import secrets
import time
import typing
from dataclasses import dataclass, field

from aiohttp import web
from openai.types import FileObject, FilePurpose
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.job_create_params import JobCreateParams
from pydantic import TypeAdapter, ValidationError
from typing_extensions import is_typeddict

API_KEY = "test-openai-key"
JOB_CREATE = TypeAdapter(JobCreateParams)
FILE_PURPOSES = typing.get_args(FilePurpose)  # what an upload may say it is for
SUFFIX_MAX = 64  # "A string of up to 64 characters", the create params say


def in_range(name: str, value) -> bool:
    """n_epochs: 1-50 ("any number between 1 and 50 epochs", OpenAI's reference); the others: above 0."""
    if value == "auto":
        return True
    return 1 <= value <= 50 if name == "n_epochs" else value > 0


@dataclass
class ChatReply:
    text: str = "Use `scene.zoom(2)` [1]."
    status: int = 200
    finish_reason: str = "stop"
    retry_after: float | None = None
    delay: float = 0.0


def unknown_arguments(value, hint, path: str = "") -> list[str]:
    """The keys of ``value`` that the TypedDict ``hint`` (nested, in lists, in unions) does not name."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return unknown_arguments(value, typing.get_args(hint)[0], path)
    if is_typeddict(hint) and isinstance(value, dict):
        fields = typing.get_type_hints(hint)
        found = [f"{path}{key}" for key in value if key not in fields]
        for key, item in value.items():
            if key in fields:
                found += unknown_arguments(item, fields[key], f"{path}{key}.")
        return found
    if origin is typing.Union:
        structured = [arg for arg in typing.get_args(hint) if is_typeddict(arg) or typing.get_origin(arg)]
        return unknown_arguments(value, structured[0], path) if len(structured) == 1 else []
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence) and isinstance(value, list):
        return [name for item in value for name in unknown_arguments(item, typing.get_args(hint)[0], path)]
    return []


def openai_error(status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status)


@dataclass
class FakeOpenAI:
    script: list[ChatReply] = field(default_factory=list)
    default: ChatReply = field(default_factory=ChatReply)
    requests: list[dict] = field(default_factory=list)
    files: dict[str, list[dict]] = field(default_factory=dict)  # uploaded training files, parsed
    jobs: dict[str, dict] = field(default_factory=dict)  # fine-tuning jobs as OpenAI keeps them
    job_requests: list[dict] = field(default_factory=list)  # every accepted POST /v1/fine_tuning/jobs body
    steps_per_poll: int = 5  # a running job trains 10 steps, this many each look, and ends at the look after
    fail_next: str | None = None  # the next created job fails at the end with this message
    create_errors: list[int] = field(default_factory=list)  # the next job creations answer these statuses instead
    lose_next_create: bool = False  # create the next job, but answer 502 as a gateway that timed out would
    # OpenAI filters GET /fine_tuning/jobs by metadata[k]=v; an OpenAI-compatible server may ignore the filter
    # (an unknown query parameter) and list every job: False plays such a server.
    honours_metadata_filter: bool = True
    create_gate: asyncio.Event | None = None  # set: a job creation waits for it before OpenAI makes the job

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        app.router.add_post("/v1/files", self.upload)
        app.router.add_post("/v1/fine_tuning/jobs", self.create_job)
        app.router.add_get("/v1/fine_tuning/jobs", self.list_jobs)
        app.router.add_get("/v1/fine_tuning/jobs/{id}", self.get_job)
        app.router.add_get("/v1/fine_tuning/jobs/{id}/events", self.list_events)
        app.router.add_post("/v1/fine_tuning/jobs/{id}/cancel", self.cancel_job)
        return app

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {API_KEY}"

    @staticmethod
    def _unauthorised() -> web.Response:
        return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")

    async def upload(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._unauthorised()
        if not request.content_type.startswith("multipart/"):
            return openai_error(400, "The request must be multipart/form-data.")
        form = await request.post()
        unknown = sorted(set(form) - {"file", "purpose", "expires_after"})
        if unknown:
            return openai_error(400, f"Unknown parameter: '{unknown[0]}'.", param=unknown[0], code="unknown_parameter")
        purpose, upload = form.get("purpose"), form.get("file")
        if purpose not in FILE_PURPOSES:
            return openai_error(400, f"Invalid value for 'purpose': {purpose!r}.", param="purpose", code="invalid_value")
        if not hasattr(upload, "file"):
            return openai_error(400, "'file' is a required property", param="file")
        content = upload.file.read()
        if purpose == "fine-tune":
            try:
                rows = [json.loads(line) for line in content.decode().splitlines() if line.strip()]
            except (UnicodeDecodeError, ValueError):
                return openai_error(400, "Invalid file format for Fine-Tuning API. Must be .jsonl", param="file")
            if not rows or any(not isinstance(row, dict) or [m.get("role") for m in row.get("messages", [])][-1:] != ["assistant"]
                               for row in rows):
                return openai_error(400, "Each line needs a 'messages' list ending with an assistant message.", param="file")
        file_id = f"file-{secrets.token_hex(12)}"
        self.files[file_id] = rows if purpose == "fine-tune" else []
        return web.json_response(FileObject(id=file_id, object="file", purpose=purpose, status="processed",
                                            bytes=len(content), created_at=int(time.time()),
                                            filename=upload.filename or "upload").model_dump(mode="json"))

    async def create_job(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._unauthorised()
        if self.create_gate is not None:  # the request is on its way (a slow network, a busy OpenAI)
            await self.create_gate.wait()
        if self.create_errors:
            status = self.create_errors.pop(0)
            return openai_error(status, f"fake error {status}", kind="server_error" if status >= 500 else "requests")
        try:
            body = await request.json()
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return openai_error(400, "The body must be a JSON object.")
        refused = self._refuse_job_body(body)
        if refused is not None:
            return refused
        method = body.get("method") or {"type": "supervised"}
        given = ((method.get("supervised") or {}).get("hyperparameters") or body.get("hyperparameters") or {})
        hyper = {"n_epochs": given.get("n_epochs", "auto"), "batch_size": given.get("batch_size", "auto"),
                 "learning_rate_multiplier": given.get("learning_rate_multiplier", "auto")}
        job_id = f"ftjob-{secrets.token_hex(12)}"
        self.job_requests.append(body)
        self.jobs[job_id] = {
            "id": job_id, "object": "fine_tuning.job", "model": body["model"], "created_at": int(time.time()),
            "status": "validating_files", "training_file": body["training_file"],
            "validation_file": body.get("validation_file"), "hyperparameters": hyper,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
            "fine_tuned_model": None, "finished_at": None, "error": None, "trained_tokens": None,
            "organization_id": "org-fake", "result_files": [], "seed": body.get("seed") or 42,
            "estimated_finish": None, "integrations": None, "metadata": body.get("metadata"),
            "suffix": body.get("suffix"), "_step": 0, "_fail": self.fail_next, "_events": []}
        self.fail_next = None
        self._event(self.jobs[job_id], f"Created fine-tuning job: {job_id}")
        if self.lose_next_create:
            self.lose_next_create = False
            return openai_error(502, "Bad gateway.", kind="server_error")
        return web.json_response(self._public(self.jobs[job_id]))

    def _refuse_job_body(self, body: dict) -> web.Response | None:
        unknown = unknown_arguments(body, JobCreateParams)
        if unknown:
            return openai_error(400, f"Unknown parameter: '{unknown[0]}'.", param=unknown[0], code="unknown_parameter")
        try:
            JOB_CREATE.validate_python(body, strict=True)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"] if not str(part).startswith(("literal[", "str", "int", "float")))
            if first["type"] == "missing":
                return openai_error(400, f"Missing required parameter: '{where}'.", param=where, code="missing_required_parameter")
            return openai_error(400, f"Invalid type for '{where}': {first['msg']}.", param=where, code="invalid_type")
        if "hyperparameters" in body and "method" in body:
            return openai_error(400, "'hyperparameters' is deprecated and can't be combined with 'method'.", param="hyperparameters")
        method = body.get("method")
        if method and method["type"] != "supervised":
            return openai_error(400, f"This fake trains supervised jobs only, not {method['type']!r}.", param="method.type")
        if method and set(method) - {"type", method["type"]}:
            return openai_error(400, f"'method' has settings for another type than {method['type']!r}.", param="method")
        hyper = ((method or {}).get("supervised") or {}).get("hyperparameters") or body.get("hyperparameters") or {}
        for name, value in hyper.items():
            if not in_range(name, value):
                return openai_error(400, f"Invalid value for '{name}': {value} is out of range.", param=name, code="invalid_value")
        if body.get("suffix") is not None and len(body["suffix"]) > SUFFIX_MAX:
            return openai_error(400, f"Invalid 'suffix': string too long. Expected a string with maximum length {SUFFIX_MAX}, "
                                     f"but got a string with length {len(body['suffix'])} instead.", param="suffix",
                                code="string_above_max_length")
        metadata = body.get("metadata") or {}
        if len(metadata) > 16 or any(len(k) > 64 or len(v) > 512 for k, v in metadata.items()):
            return openai_error(400, "Invalid 'metadata': at most 16 pairs, keys up to 64 and values up to 512 characters.",
                                param="metadata")
        for name in ("training_file", "validation_file"):
            if body.get(name) is not None and body[name] not in self.files:
                return openai_error(400, f"invalid {name}: {body[name]}", param=name, code="invalid_file")
        return None

    @staticmethod
    def _event(job: dict, message: str, data: dict | None = None) -> None:
        event = {"id": f"ftevent-{secrets.token_hex(8)}", "object": "fine_tuning.job.event", "created_at": int(time.time()),
                 "level": "info", "message": message, "data": data or {}, "type": "metrics" if data else "message"}
        job["_events"].append(FineTuningJobEvent.model_validate(event).model_dump(mode="json"))

    @staticmethod
    def _public(job: dict) -> dict:
        public = {k: v for k, v in job.items() if not k.startswith("_") and k != "suffix"}
        return FineTuningJob.model_validate(public).model_dump(mode="json")

    def _advance(self, job: dict) -> None:
        """One look at a job moves it on: validating_files → queued → running (steps) → succeeded | failed."""
        if job["status"] == "validating_files":
            job["status"] = "queued"
            self._event(job, "Files validated, moving job to queued state")
        elif job["status"] == "queued":
            job["status"] = "running"
            self._event(job, "Fine-tuning job started")
        elif job["status"] == "running" and job["_step"] < 10:
            for _ in range(min(self.steps_per_poll, 10 - job["_step"])):
                job["_step"] += 1
                self._event(job, f"Step {job['_step']}/10: training loss={2.0 / job['_step']:.2f}",
                            {"step": job["_step"], "train_loss": round(2.0 / job["_step"], 4),
                             "train_mean_token_accuracy": 0.5})
        elif job["status"] == "running":
            job["finished_at"], job["trained_tokens"] = int(time.time()), 1234
            if job["_fail"]:
                job["status"] = "failed"
                job["error"] = {"code": "invalid_training_file", "message": job["_fail"], "param": "training_file"}
            else:
                job["status"] = "succeeded"
                job["fine_tuned_model"] = f"ft:{job['model']}:org:{job['suffix']}:abc123"
                self._event(job, "The job has successfully completed")

    async def list_jobs(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._unauthorised()
        wanted = {key[len("metadata["):-1]: value for key, value in request.query.items()
                  if key.startswith("metadata[") and key.endswith("]")}
        if not self.honours_metadata_filter:
            wanted = {}
        found = [job for job in reversed(self.jobs.values())
                 if all((job["metadata"] or {}).get(k) == v for k, v in wanted.items())]
        limit = int(request.query.get("limit", 20))
        return web.json_response({"object": "list", "data": [self._public(j) for j in found[:limit]],
                                  "has_more": len(found) > limit})

    async def get_job(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._unauthorised()
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return openai_error(404, f"Could not find fine tune job: {request.match_info['id']}", code="fine_tune_not_found")
        self._advance(job)
        return web.json_response(self._public(job))

    async def list_events(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._unauthorised()
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return openai_error(404, f"Could not find fine tune job: {request.match_info['id']}", code="fine_tune_not_found")
        limit = int(request.query.get("limit", 20))
        newest_first = list(reversed(job["_events"]))
        return web.json_response({"object": "list", "data": newest_first[:limit], "has_more": len(newest_first) > limit})

    async def cancel_job(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._unauthorised()
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return openai_error(404, f"Could not find fine tune job: {request.match_info['id']}", code="fine_tune_not_found")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return openai_error(400, f"Job has already completed: {job['id']}")
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
