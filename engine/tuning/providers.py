"""Tuning services: Gemini's ``tunedModels`` REST API and OpenAI's fine-tuning API, behind one shape.

A job reaches the provider in steps the runner records one by one, so that none is done twice:
``upload`` sends the training file where the provider takes one (OpenAI; Gemini takes the
examples inline); ``create`` starts the provider's job; ``find`` looks for the job an earlier
``create`` may have made although its answer never arrived (Gemini: the job's own
``tunedModelId``, which also makes a second create a 409; OpenAI: the job's ``metadata``).
``poll`` reports the provider's status and only the progress it reports; ``grant`` shares a
tuned Gemini model; ``cancel`` stops a job where the provider allows. Bodies are written as
the providers define them: the proto3 JSON mapping of ``google.ai.generativelanguage.v1beta``
for Gemini, the ``openai`` API reference (the ``method`` field) for OpenAI. Gemini tuning needs
an OAuth access token (application-default credentials, via google-auth), not an API key.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from engine.llm.retry import parse_retry_after
from engine.tuning.dataset import Example, provider_rows

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

GEMINI_TUNING_SCOPE = "https://www.googleapis.com/auth/generative-language.tuning"
JOB_METADATA_KEY = "firstreply_job_id"  # on OpenAI jobs, to find one whose create answer was lost


class TuningProviderError(Exception):
    """The provider refused or failed; ``retryable`` when trying again later may help."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Progress:
    state: str  # the provider's: validating_files | queued | running | succeeded | failed | cancelled
    percent: float | None = None  # None where the provider reports no share done
    model_id: str | None = None
    error: str | None = None
    detail: dict[str, Any] | None = None  # the provider's own figures (steps, loss, tokens), as it reports them


class Tuner(Protocol):
    """A provider's tuning service, as the runner (engine.tuning.runner) drives it; see the module docstring."""

    name: str
    submitted_state: str  # the job's status once the provider took it
    grantee: str | None  # who is granted access to a tuned model, where the provider shares models

    async def upload(self, job_id: str, examples: list[Example]) -> str | None: ...

    async def create(self, job_id: str, alias: str, base_model: str, parameters: dict[str, Any],
                     examples: list[Example], file_id: str | None) -> str: ...

    async def find(self, job_id: str, alias: str) -> str | None: ...

    async def poll(self, provider_job_id: str) -> Progress: ...

    async def grant(self, model: str, grantee: str) -> None: ...

    async def cancel(self, provider_job_id: str) -> None: ...


async def _json(response: aiohttp.ClientResponse, what: str) -> dict[str, Any]:
    text = await response.text()
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) and isinstance(error.get("message"), str) else text[:300]
    if response.status >= 500 or response.status == 429:
        raise TuningProviderError(f"{what}: HTTP {response.status}: {message}", retryable=True, status=response.status,
                          retry_after=parse_retry_after(response.headers.get("Retry-After")))
    if response.status >= 400:
        raise TuningProviderError(f"{what}: HTTP {response.status}: {message}", status=response.status)
    if not isinstance(data, dict):
        raise TuningProviderError(f"{what}: HTTP {response.status}, not a JSON object")
    return data


def tuned_model_id(job_id: str, alias: str) -> str:
    """The job's own ``tunedModelId`` (``[a-z]([a-z0-9-]{0,38}[a-z0-9])?``): the alias's words, then the
    first 12 hex digits of the job id."""
    words = re.sub(r"[^a-z0-9]+", "-", alias.lower()).strip("-")
    if not words[:1].isalpha():
        words = f"m-{words}"
    return f"{words[:27].strip('-')}-{job_id.replace('-', '')[:12]}"


def gemini_hyperparameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """The canonical names (engine.tuning.request) as TuningTask.hyperparameters, in proto JSON."""
    names = {"n_epochs": "epochCount", "batch_size": "batchSize", "learning_rate": "learningRate",
             "learning_rate_multiplier": "learningRateMultiplier"}
    return {names[name]: value for name, value in parameters.items() if name in names}


def permission_body(grantee: str) -> dict[str, Any]:
    """A Permission (READER) for ``everyone``, ``user:EMAIL`` or ``group:EMAIL`` (checked when settings load)."""
    if grantee == "everyone":
        return {"granteeType": "EVERYONE", "role": "READER"}
    kind, _, email = grantee.partition(":")
    return {"granteeType": kind.upper(), "emailAddress": email, "role": "READER"}


class GeminiTuner:
    name = "gemini"
    submitted_state = "running"  # a created tuned model is CREATING: tuning has begun

    def __init__(self, base_url: str, session: aiohttp.ClientSession, *, grantee: str | None = None,
                 credentials: Credentials | None = None) -> None:
        self.base = base_url.rstrip("/") + "/v1beta"
        self.session = session
        self.grantee = grantee  # everyone | user:EMAIL | group:EMAIL: who may call the finished model (READER)
        self._credentials = credentials

    async def _token(self) -> str:
        """An OAuth access token from application-default credentials (refreshed off the event loop)."""

        def refresh() -> str:
            import google.auth
            import google.auth.transport.requests

            if self._credentials is None:
                self._credentials, _project = google.auth.default(scopes=[GEMINI_TUNING_SCOPE])
            if not self._credentials.valid:
                # google-auth leaves Credentials.refresh unannotated
                self._credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
            token = self._credentials.token
            if not isinstance(token, str):
                raise ValueError("the credentials gave no access token")
            return token

        try:
            return await asyncio.to_thread(refresh)
        except Exception as error:  # google-auth raises several kinds; all mean "no usable credentials"
            raise TuningProviderError(f"Gemini tuning needs Google credentials (application-default): {error}") from None

    async def _call(self, method: str, path: str, what: str, body: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {await self._token()}"}
        try:
            async with self.session.request(method, f"{self.base}/{path}", json=body, params=params,
                                            headers=headers) as response:
                return await _json(response, what)
        except aiohttp.ClientError as error:
            raise TuningProviderError(f"{what}: {error}", retryable=True) from None

    async def upload(self, job_id: str, examples: list[Example]) -> str | None:
        return None  # Gemini takes the examples inline, in the create request

    async def create(self, job_id: str, alias: str, base_model: str, parameters: dict[str, Any], examples: list[Example],
                     file_id: str | None) -> str:
        rows = [{"textInput": row["text_input"], "output": row["output"]} for row in provider_rows(examples, "gemini")]
        task: dict[str, Any] = {"trainingData": {"examples": {"examples": rows}}}
        if hyper := gemini_hyperparameters(parameters):
            task["hyperparameters"] = hyper
        body = {"displayName": alias, "description": f"firstreply tuning job {job_id}",
                "baseModel": base_model if base_model.startswith("models/") else f"models/{base_model}", "tuningTask": task}
        try:
            operation = await self._call("POST", "tunedModels", "creating the tuned model", body,
                                         params={"tunedModelId": tuned_model_id(job_id, alias)})
        except TuningProviderError as error:
            if error.status != 409:
                raise
            found = await self.find(job_id, alias)  # an earlier create of this job got through after all
            if found is None:
                raise
            return found
        name = operation.get("name")
        if not isinstance(name, str) or "/operations/" not in name:
            raise TuningProviderError(f"creating the tuned model: no operation in the answer: {str(operation)[:300]}")
        return name  # tunedModels/<id>/operations/<op>

    async def find(self, job_id: str, alias: str) -> str | None:
        model = f"tunedModels/{tuned_model_id(job_id, alias)}"
        try:
            listed = await self._call("GET", f"{model}/operations", "looking for the tuning operation")
        except TuningProviderError as error:
            if error.status == 404:
                return None
            raise
        names = [op.get("name") for op in listed.get("operations") or [] if isinstance(op, dict)]
        return next((n for n in names if isinstance(n, str) and n.startswith(f"{model}/operations/")), None)

    async def poll(self, provider_job_id: str) -> Progress:
        operation = await self._call("GET", provider_job_id, "polling the tuning operation")
        metadata = operation.get("metadata") or {}
        model = metadata.get("tunedModel") or provider_job_id.split("/operations/")[0]
        percent = float(metadata.get("completedPercent") or 0)
        detail = {"completed_steps": metadata.get("completedSteps", 0), "total_steps": metadata.get("totalSteps")}
        if operation.get("error"):
            return Progress("failed", percent, None, operation["error"].get("message", "the tuning operation failed"), detail)
        if not operation.get("done"):
            return Progress("running", percent, detail=detail)
        tuned = await self._call("GET", model, "reading the tuned model")
        if tuned.get("state") == "FAILED":
            return Progress("failed", percent, None, "the tuned model ended in state FAILED", detail)
        return Progress("succeeded", 100.0, model, detail=detail)

    async def grant(self, model: str, grantee: str) -> None:
        """Let the engine's API key call the tuned model: READER for everyone, a user or a group."""
        await self._call("POST", f"{model}/permissions", "granting access to the tuned model", permission_body(grantee))

    async def cancel(self, provider_job_id: str) -> None:
        """Gemini has no cancel for tuning: delete the model being tuned."""
        model = provider_job_id.split("/operations/")[0]
        await self._call("DELETE", model, "deleting the tuned model")


class OpenAITuner:
    name = "openai"
    submitted_state = "validating_files"  # where every OpenAI job starts
    grantee = None  # an OpenAI model is the organisation's: nothing to share

    def __init__(self, base_url: str, api_key: str | None, session: aiohttp.ClientSession) -> None:
        self.base = base_url.rstrip("/")
        self.session = session
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def _call(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self.session.request(method, f"{self.base}/{path}", headers=self.headers, **kwargs) as response:
                return await _json(response, what)
        except aiohttp.ClientError as error:
            raise TuningProviderError(f"{what}: {error}", retryable=True) from None

    async def upload(self, job_id: str, examples: list[Example]) -> str | None:
        form = aiohttp.FormData()
        form.add_field("purpose", "fine-tune")
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in provider_rows(examples, "openai"))
        form.add_field("file", lines.encode(), filename=f"firstreply-{job_id}.jsonl", content_type="application/jsonl")
        uploaded = await self._call("POST", "files", "uploading the training file", data=form)
        file_id = uploaded.get("id")
        if not isinstance(file_id, str):
            raise TuningProviderError(f"uploading the training file: no file id in the answer: {str(uploaded)[:300]}")
        return file_id

    async def create(self, job_id: str, alias: str, base_model: str, parameters: dict[str, Any], examples: list[Example],
                     file_id: str | None) -> str:
        hyper = {name: parameters[name] for name in ("n_epochs", "batch_size", "learning_rate_multiplier") if name in parameters}
        method: dict[str, Any] = {"type": "supervised"}
        if hyper:
            method["supervised"] = {"hyperparameters": hyper}
        job = await self._call("POST", "fine_tuning/jobs", "creating the fine-tuning job",
                               json={"model": base_model, "training_file": file_id, "suffix": alias, "method": method,
                                     "metadata": {JOB_METADATA_KEY: job_id}})
        provider_job_id = job.get("id")
        if not isinstance(provider_job_id, str):
            raise TuningProviderError(f"creating the fine-tuning job: no job id in the answer: {str(job)[:300]}")
        return provider_job_id

    async def find(self, job_id: str, alias: str) -> str | None:
        """Our job, by the job id in its metadata. OpenAI filters the list by it; a server that ignores the filter
        lists other jobs too (another install's, on the same base model): only the one carrying our id is ours."""
        listed = await self._call("GET", "fine_tuning/jobs", "looking for the fine-tuning job",
                                  params={f"metadata[{JOB_METADATA_KEY}]": job_id, "limit": "100"})
        for job in listed.get("data") or []:
            found = job.get("id") if isinstance(job, dict) else None
            if (isinstance(found, str) and isinstance(job.get("metadata"), dict)
                    and job["metadata"].get(JOB_METADATA_KEY) == job_id):
                return found
        return None

    async def poll(self, provider_job_id: str) -> Progress:
        job = await self._call("GET", f"fine_tuning/jobs/{provider_job_id}", "polling the fine-tuning job")
        status = job.get("status")
        if status == "succeeded":
            return Progress("succeeded", 100.0, job.get("fine_tuned_model"),
                            detail={"status": status, "trained_tokens": job.get("trained_tokens")})
        if status in ("failed", "cancelled"):
            error = job.get("error") or {}
            return Progress(status, None, None, error.get("message") or f"the job ended {status}", {"status": status})
        if status not in ("validating_files", "queued", "running"):
            raise TuningProviderError(f"polling the fine-tuning job: unknown status {str(status)[:40]!r}", retryable=True)
        detail = {"status": status}
        if status == "running":  # OpenAI reports no share done; its metrics events say which step it trained
            events = await self._call("GET", f"fine_tuning/jobs/{provider_job_id}/events", "reading the job's events",
                                      params={"limit": "20"})
            metrics = next((e.get("data") for e in events.get("data") or []
                            if isinstance(e, dict) and e.get("type") == "metrics" and isinstance(e.get("data"), dict)), None)
            if metrics:
                detail |= {k: metrics[k] for k in ("step", "train_loss", "train_mean_token_accuracy") if k in metrics}
        return Progress(status, None, detail=detail)

    async def cancel(self, provider_job_id: str) -> None:
        await self._call("POST", f"fine_tuning/jobs/{provider_job_id}/cancel", "cancelling the fine-tuning job")

    async def grant(self, model: str, grantee: str) -> None:
        raise TuningProviderError("an OpenAI model is the organisation's: there is no access to grant")
