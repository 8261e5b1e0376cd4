"""Tuning services: Gemini's ``tunedModels`` REST API and OpenAI-compatible fine-tuning, behind one shape.

``submit`` uploads the examples and starts the job, returning the provider's job id; ``poll``
reports progress and, at the end, the model id or the provider's reason for failing;
``cancel`` stops it where the provider allows. Gemini tuning needs an OAuth access token
(application-default credentials, via google-auth), not an API key.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import aiohttp

from engine.tuning.dataset import Example, provider_rows

GEMINI_TUNING_SCOPE = "https://www.googleapis.com/auth/generative-language.tuning"


class TuningError(Exception):
    """The provider refused or failed; ``retryable`` when trying again later may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Progress:
    state: str  # running | succeeded | failed | cancelled
    percent: float = 0.0
    model_id: str | None = None
    error: str | None = None


async def _json(response: aiohttp.ClientResponse, what: str) -> dict:
    text = await response.text()
    if response.status >= 500 or response.status == 429:
        raise TuningError(f"{what}: HTTP {response.status}", retryable=True)
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        raise TuningError(f"{what}: HTTP {response.status}, not JSON") from None
    if response.status >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else text[:300]
        raise TuningError(f"{what}: HTTP {response.status}: {message}")
    return data


class GeminiTuner:
    name = "gemini"

    def __init__(self, base_url: str, session: aiohttp.ClientSession, *, grantee: str | None = None,
                 credentials=None) -> None:
        self.base = base_url.rstrip("/") + "/v1beta"
        self.session = session
        self.grantee = grantee  # "EVERYONE", "user:a@b.c" or "group:g@b.c": who may call the tuned model
        self._credentials = credentials

    async def _token(self) -> str:
        """An OAuth access token from application-default credentials (refreshed off the event loop)."""

        def refresh() -> str:
            import google.auth
            import google.auth.transport.requests

            if self._credentials is None:
                self._credentials, _project = google.auth.default(scopes=[GEMINI_TUNING_SCOPE])
            if not self._credentials.valid:
                self._credentials.refresh(google.auth.transport.requests.Request())
            return self._credentials.token

        try:
            return await asyncio.to_thread(refresh)
        except Exception as error:  # google-auth raises several kinds; all mean "no usable credentials"
            raise TuningError(f"Gemini tuning needs Google credentials (application-default): {error}") from None

    async def _call(self, method: str, path: str, what: str, body: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {await self._token()}"}
        try:
            async with self.session.request(method, f"{self.base}/{path}", json=body, headers=headers) as response:
                return await _json(response, what)
        except aiohttp.ClientError as error:
            raise TuningError(f"{what}: {error}", retryable=True) from None

    async def submit(self, alias: str, base_model: str, parameters: dict, examples: list[Example]) -> str:
        hyper = {k: v for k, v in {"epoch_count": parameters.get("epoch_count"), "batch_size": parameters.get("batch_size"),
                                   "learning_rate": parameters.get("learning_rate")}.items() if v is not None}
        body = {"display_name": alias, "base_model": base_model if base_model.startswith("models/") else f"models/{base_model}",
                "tuning_task": {"hyperparameters": hyper,
                                "training_data": {"examples": {"examples": provider_rows(examples, "gemini")}}}}
        operation = await self._call("POST", "tunedModels", "creating the tuned model", body)
        name = operation.get("name")
        if not name:
            raise TuningError(f"creating the tuned model: no operation in the answer: {operation}")
        return name  # tunedModels/<id>/operations/<op>

    async def poll(self, provider_job_id: str) -> Progress:
        operation = await self._call("GET", provider_job_id, "polling the tuning operation")
        metadata = operation.get("metadata") or {}
        model = metadata.get("tunedModel") or provider_job_id.split("/operations/")[0]
        if operation.get("error"):
            return Progress("failed", float(metadata.get("completedPercent", 0)), None,
                            operation["error"].get("message", "the tuning operation failed"))
        if not operation.get("done"):
            return Progress("running", float(metadata.get("completedPercent", 0)))
        tuned = await self._call("GET", model, "reading the tuned model")
        if tuned.get("state") == "FAILED":
            return Progress("failed", 100.0, None, "the tuned model ended in state FAILED")
        if self.grantee:
            await self.grant(model, self.grantee)
        return Progress("succeeded", 100.0, model)

    async def grant(self, model: str, grantee: str) -> None:
        """Let an API key call the tuned model: READER for everyone, or a user or group email."""
        if grantee.upper() == "EVERYONE":
            body = {"grantee_type": "EVERYONE", "role": "READER"}
        else:
            kind, _, email = grantee.partition(":")
            body = {"grantee_type": kind.upper(), "email_address": email, "role": "READER"}
        await self._call("POST", f"{model}/permissions", "granting access to the tuned model", body)

    async def cancel(self, provider_job_id: str) -> None:
        """Gemini has no cancel for tuning: delete the model being tuned."""
        model = provider_job_id.split("/operations/")[0]
        await self._call("DELETE", model, "deleting the tuned model")


class OpenAITuner:
    name = "openai"

    def __init__(self, base_url: str, api_key: str | None, session: aiohttp.ClientSession) -> None:
        self.base = base_url.rstrip("/")
        self.session = session
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def _call(self, method: str, path: str, what: str, **kwargs) -> dict:
        try:
            async with self.session.request(method, f"{self.base}/{path}", headers=self.headers, **kwargs) as response:
                return await _json(response, what)
        except aiohttp.ClientError as error:
            raise TuningError(f"{what}: {error}", retryable=True) from None

    async def submit(self, alias: str, base_model: str, parameters: dict, examples: list[Example]) -> str:
        form = aiohttp.FormData()
        form.add_field("purpose", "fine-tune")
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in provider_rows(examples, "openai"))
        form.add_field("file", lines.encode(), filename=f"{alias}.jsonl", content_type="application/jsonl")
        uploaded = await self._call("POST", "files", "uploading the training file", data=form)
        hyper = {k: v for k, v in {"n_epochs": parameters.get("epoch_count"), "batch_size": parameters.get("batch_size"),
                                   "learning_rate_multiplier": parameters.get("learning_rate")}.items() if v is not None}
        job = await self._call("POST", "fine_tuning/jobs", "creating the fine-tuning job",
                               json={"model": base_model, "training_file": uploaded["id"], "suffix": alias[:40],
                                     "hyperparameters": hyper})
        return job["id"]

    async def poll(self, provider_job_id: str) -> Progress:
        job = await self._call("GET", f"fine_tuning/jobs/{provider_job_id}", "polling the fine-tuning job")
        status = job.get("status")
        if status == "succeeded":
            return Progress("succeeded", 100.0, job.get("fine_tuned_model"))
        if status in ("failed", "cancelled"):
            error = job.get("error") or {}
            return Progress(status, 0.0, None, error.get("message") or f"the job ended {status}")
        steps = job.get("trained_steps"), job.get("total_steps")
        percent = 100.0 * steps[0] / steps[1] if all(isinstance(s, int) for s in steps) and steps[1] else 0.0
        return Progress("running", percent)

    async def cancel(self, provider_job_id: str) -> None:
        await self._call("POST", f"fine_tuning/jobs/{provider_job_id}/cancel", "cancelling the fine-tuning job")
