"""Fine-tuning over HTTP: ``/api/v1/finetunings`` (create, list, read, cancel, evaluate, activate, retry the
grant), ``/api/v1/activations`` (history, the model in force, roll back) and the training set export.

What a job may ask of its provider is checked in one place, :mod:`engine.tuning.request`, through
:meth:`engine.tuning.service.TuningService.create`, for this API, the tuning page and the CLI alike. The service's
refusals map to statuses here: :class:`~engine.tuning.errors.TuningNotFound` is a 404, any other
:class:`~engine.tuning.errors.TuningError` a 400."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.api.auth import actor
from engine.api.http import BadRequest, error_response, read_json
from engine.api.keys import ENGINE, TUNING_RUNNER
from engine.tuning.errors import TuningConflict, TuningError, TuningNotFound
from engine.tuning.request import has_lone_surrogates
from engine.tuning.service import TuningService


def _tuning(request: web.Request) -> TuningService:
    """The engine's tuning service (the engine started with the app: see :mod:`engine.api.app`)."""
    return request.app[ENGINE].tuning_service

if TYPE_CHECKING:
    from engine.store.models import ModelActivation, TuningJob


def job_view(job: TuningJob) -> dict[str, Any]:
    """A job as the finetunings API specifies it: ``finetuning_file_id`` is the provider's training file (OpenAI's
    upload; Gemini takes the examples inline), ``finetuning_job_id`` the provider's job (OpenAI's job id, Gemini's
    tuning operation); ``progress`` is a percentage only where the provider reports one, ``provider_progress`` the
    provider's own figures; ``permission`` the grant of a tuned Gemini model to FIRSTREPLY_TUNED_MODEL_GRANTEE."""
    permission = ({"grantee": job.grantee, "state": job.grant_state, "error": job.grant_error}
                  if job.grant_state else None)
    return {"id": job.id, "alias": job.alias, "status": job.status, "error": job.error, "base_llm": job.base_llm,
            "finetuning_file_id": job.provider_file_id, "finetuning_job_id": job.provider_job_id, "model_id": job.model_id,
            "created_at": job.created_at.isoformat(), "golden_records": job.golden_records, "metadata": job.job_metadata,
            "progress": None if job.progress is None else round(job.progress, 1), "provider_progress": job.provider_progress,
            "permission": permission, "cancel_requested": job.cancel_requested, "evaluation": job.evaluation}


def activation_view(a: ModelActivation) -> dict[str, Any]:
    return {"id": a.id, "model": a.model, "fallback": a.fallback, "job_id": a.job_id, "evaluation": a.evaluation,
            "activated_by": a.activated_by, "activated_at": a.activated_at.isoformat(),
            "rolled_back_by": a.rolled_back_by, "rolled_back_at": a.rolled_back_at.isoformat() if a.rolled_back_at else None}


def _wake_runner(request: web.Request) -> None:
    """Let this process's runner take new work now rather than at its next poll."""
    runner = request.app.get(TUNING_RUNNER)
    if runner is not None:
        runner.wake.set()


BODY_FIELDS = {"alias", "base_llm", "golden_records", "metadata", "by"}
BASE_LLM_FIELDS = {"model_provider", "model_name", "model_parameters"}


def _whole(value: object) -> int | None:
    """A JSON integer (5, or 5.0, which JSON Schema counts as one), else None."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_create(data: dict[str, Any]) -> tuple[object, object, list[int] | None, dict[str, Any]]:
    """The body's parts; the alias and ``base_llm`` are checked against the provider by ``TuningService.create``.
    A field it doesn't know is a 400: a misspelt ``golden_records`` must not tune on every record."""
    unknown = sorted(set(data) - BODY_FIELDS) + sorted(f"base_llm.{k}" for k in set(
        data["base_llm"] if isinstance(data.get("base_llm"), dict) else ()) - BASE_LLM_FIELDS)
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(repr(k) for k in unknown[:5])}")
    records = data.get("golden_records")
    if records is not None:
        ids = [_whole(r) for r in records] if isinstance(records, list) else [None]
        whole = [i for i in ids if i is not None]
        if len(whole) < len(ids):
            raise BadRequest("'golden_records' must be a list of golden record ids, or null for all of them")
        records = whole
    metadata = data.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise BadRequest("'metadata' must be an object")
    if has_lone_surrogates(metadata):
        raise BadRequest("'metadata' holds an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape): that is no character")
    return data.get("alias"), data.get("base_llm"), records, metadata


async def create(request: web.Request) -> web.Response:
    data = await read_json(request)
    alias, base_llm, records, metadata = parse_create(data)
    try:
        job = await _tuning(request).create(alias, base_llm, records, metadata, actor(request, data))
    except TuningError as error:
        return error_response(400, str(error))
    _wake_runner(request)
    return web.json_response(job_view(job), status=201)


async def list_jobs(request: web.Request) -> web.Response:
    return web.json_response({"finetunings": [job_view(j) for j in await _tuning(request).jobs()]})


async def get_job(request: web.Request) -> web.Response:
    """One job, with its dataset's validation report (kept, dropped and why, held out) once built."""
    tuning = _tuning(request)
    job = await tuning.job(request.match_info["id"])
    if job is None:
        return error_response(404, "no such fine-tuning job")
    return web.json_response({**job_view(job), "dataset": await tuning.dataset_report(job)})


async def cancel(request: web.Request) -> web.Response:
    try:
        job = await _tuning(request).cancel(request.match_info["id"])
    except TuningNotFound:
        return error_response(404, "no such fine-tuning job")
    except TuningConflict as error:  # "the job is already <status>"
        return error_response(400, str(error))
    _wake_runner(request)
    return web.json_response(job_view(job))


async def evaluate(request: web.Request) -> web.Response:
    try:
        evaluation = await _tuning(request).evaluate(request.match_info["id"])
    except TuningNotFound:
        return error_response(404, "no such fine-tuning job")
    except TuningError as error:
        return error_response(400, str(error))
    return web.json_response(evaluation)


async def activate(request: web.Request) -> web.Response:
    data = await read_json(request) if request.can_read_body else {}
    fallback = data.get("fallback", True)
    if not isinstance(fallback, bool):
        raise BadRequest("'fallback' must be true or false")
    try:
        activation = await _tuning(request).activate(request.match_info["id"], actor(request, data), fallback=fallback)
    except TuningNotFound:
        return error_response(404, "no such fine-tuning job")
    except TuningError as error:
        return error_response(400, str(error))
    return web.json_response(activation_view(activation))


async def grant(request: web.Request) -> web.Response:
    """Try the failed permission grant of a job's tuned model again; the runner makes it."""
    try:
        job = await _tuning(request).retry_grant(request.match_info["id"])
    except TuningNotFound:
        return error_response(404, "no such fine-tuning job")
    except TuningError as error:
        return error_response(400, str(error))
    if job is None:
        return error_response(400, "no failed grant to retry on this job")
    _wake_runner(request)
    return web.json_response(job_view(job))


async def activations(request: web.Request) -> web.Response:
    """The history, and the model in force as the database says (whichever process activated it)."""
    tuning = _tuning(request)
    model = await tuning.current_model()
    return web.json_response({"activations": [activation_view(a) for a in await tuning.activations()],
                              "model": model})


async def rollback(request: web.Request) -> web.Response:
    data = await read_json(request) if request.can_read_body else {}
    ended = await _tuning(request).rollback(actor(request, data))
    if ended is None:
        return error_response(409, "no activation is in force")
    return web.json_response(activation_view(ended))


async def training_set(request: web.Request) -> web.Response:
    provider, fmt = request.query.get("provider", "gemini"), request.query.get("format", "jsonl")
    variant = request.query.get("variant")
    if fmt not in ("jsonl", "csv") or variant not in (None, "rag", "plain"):
        raise BadRequest("format is jsonl or csv; variant is rag or plain")
    try:
        body, dropped = await _tuning(request).training_set(provider, fmt, variant)
    except TuningError as error:
        return error_response(400, str(error))
    return web.Response(text=body, content_type="application/x-ndjson" if fmt == "jsonl" else "text/csv",
                        charset="utf-8", headers={"X-Dropped-Examples": str(len(dropped))})


def mount_tuning_api(app: web.Application) -> None:
    app.router.add_post("/api/v1/finetunings", create)
    app.router.add_get("/api/v1/finetunings", list_jobs)
    app.router.add_get("/api/v1/finetunings/training-set", training_set)
    app.router.add_get("/api/v1/finetunings/{id}", get_job)
    app.router.add_post("/api/v1/finetunings/{id}/cancel", cancel)
    app.router.add_post("/api/v1/finetunings/{id}/evaluate", evaluate)
    app.router.add_post("/api/v1/finetunings/{id}/activate", activate)
    app.router.add_post("/api/v1/finetunings/{id}/grant", grant)
    app.router.add_get("/api/v1/activations", activations)
    app.router.add_post("/api/v1/activations/rollback", rollback)
