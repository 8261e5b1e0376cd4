"""The review actions as JSON routes under ``/api/v1/``, for scripts (behind the API's bearer keys,
or a maintainer's token, whose name is then recorded as who did it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.answer.model import CHANNELS
from engine.api.auth import actor
from engine.api.http import (
    MAX_PAGE,
    BadRequest,
    checked_text,
    error_response,
    int_query,
    read_body,
    read_json,
    row_id,
    text_field,
)
from engine.api.keys import ENGINE
from engine.api.review_lists import answer_filter
from engine.protocol import MAX_ANSWER_CHARS
from engine.review.errors import ReviewError, ReviewNotFound
from engine.review.service import MAX_REASON_CHARS, ReviewService
from engine.store.models import PastThread
from engine.store.review import MAX_IMPORT_FIELD, VERDICTS, AnswerFilter

if TYPE_CHECKING:
    from engine.service import Engine
    from engine.store.models import AnswerRecord, GoldenRecord


def _engine(request: web.Request) -> Engine:
    return request.app[ENGINE]


def _review(request: web.Request) -> ReviewService:
    """The engine's review service (the engine started with the app: see :mod:`engine.api.app`)."""
    return request.app[ENGINE].review_service


def answer_view(record: AnswerRecord, *, full: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {"id": record.id, "created_at": record.created_at.isoformat(), "channel": record.channel,
            "conversation_id": record.conversation_id, "question": record.question, "text": record.text,
            "abstained": record.abstained, "verdict": record.verdict, "corrected_text": record.corrected_text,
            "review_note": record.review_note, "reviewed_by": record.reviewed_by,
            "votes": {"up": record.up_votes, "down": record.down_votes},
            "accepted": record.accepted_at is not None, "model": record.model, "link": record.link}
    if full:
        view.update(sources=record.sources, citations=record.citations, confidence=record.confidence,
                    prompt_tokens=record.prompt_tokens, output_tokens=record.output_tokens, latency_ms=record.latency_ms,
                    fallback_reasons=record.fallback_reasons)
    return view


def golden_view(record: GoldenRecord) -> dict[str, Any]:
    return {"id": record.id, "question": record.question, "answer": record.answer, "source": record.source,
            "answer_id": record.answer_id, "created_by": record.created_by, "updated_by": record.updated_by,
            "updated_at": record.updated_at.isoformat()}


def _bad(message: str) -> web.Response:
    return error_response(400, message)


#: The list's filters and the values each takes (the review page ignores what it doesn't know; the API says so).
ANSWER_FILTERS = {"channel": CHANNELS, "verdict": VERDICTS, "votes": ("down", "up", "none"), "abstained": ("yes", "no"),
                  "accepted": ("yes", "no"), "order": ("down", "newest")}


def checked_answer_filter(request: web.Request) -> AnswerFilter:
    """``answer_filter``, after a 400 for a value it would ignore: a script's typo must not widen its list."""
    query = request.query
    for name, allowed in ANSWER_FILTERS.items():
        if name in query and query[name] not in allowed:
            raise BadRequest(f"'{name}' must be one of {', '.join(allowed)}")
    if "page" in query:
        int_query(request, "page", 1, 1, MAX_PAGE)
    if len(query.get("q", "")) > 200:
        raise BadRequest("'q' is longer than 200 characters")
    checked_text("q", query.get("q", ""))
    return answer_filter(query)


async def list_answers(request: web.Request) -> web.Response:
    rows, more = await _review(request).answers(checked_answer_filter(request))
    return web.json_response({"answers": [answer_view(r) for r in rows], "more": more})


async def get_answer(request: web.Request) -> web.Response:
    engine = _engine(request)
    detail = await engine.review_service.detail(request.match_info["id"])
    if detail is None:
        return error_response(404, "no such answer")
    view = answer_view(detail["record"], full=True)
    view["turns"] = [{"role": t.role, "text": t.text} for t in detail["turns"]]
    view["vote_comments"] = [{"vote": v.vote, "comment": v.comment} for v in detail["votes"] if v.comment]
    view["golden_record"] = detail["golden"].id if detail["golden"] else None
    for extension in engine.review_extensions:  # e.g. "github": the App's reply to the question, if any
        part = detail.get(extension.name)
        view[extension.name] = extension.summary(part) if part is not None else None
    return web.json_response(view)


async def review_answer(request: web.Request) -> web.Response:
    data = await read_json(request)
    try:
        record, golden = await _review(request).review(
            request.match_info["id"], text_field(data, "verdict", required=True, limit=20) or "", actor(request, data),
            text=text_field(data, "text", limit=MAX_ANSWER_CHARS), reason=text_field(data, "reason", limit=MAX_REASON_CHARS))
    except ReviewNotFound:
        return error_response(404, "no such answer")
    except ReviewError as error:
        return _bad(str(error))
    return web.json_response({**answer_view(record), "golden_record": golden.id if golden else None})


async def list_golden(request: web.Request) -> web.Response:
    rows = await _review(request).all_golden_records()
    return web.json_response({"golden_records": [golden_view(r) for r in rows]})


async def add_golden(request: web.Request) -> web.Response:
    data = await read_json(request)
    try:
        question, answer = _pair(data)
        record = await _review(request).add_golden_record(question, answer, actor(request, data))
    except ReviewError as error:
        return _bad(str(error))
    return web.json_response(golden_view(record), status=201)


def _pair(data: dict[str, Any]) -> tuple[str, str]:
    return (text_field(data, "question", required=True, limit=MAX_IMPORT_FIELD) or "",
            text_field(data, "answer", required=True, limit=MAX_IMPORT_FIELD) or "")


def _record_id(request: web.Request) -> int:
    number = row_id(request.match_info["id"])
    if number is None:
        raise web.HTTPNotFound(reason="no such golden record")
    return number


async def edit_golden(request: web.Request) -> web.Response:
    data = await read_json(request)
    try:
        question, answer = _pair(data)
        record = await _review(request).update_golden_record(_record_id(request), question, answer, actor(request, data))
    except ReviewError as error:
        return _bad(str(error))
    if record is None:
        return error_response(404, "no such golden record")
    return web.json_response(golden_view(record))


async def delete_golden(request: web.Request) -> web.Response:
    if not await _review(request).delete_golden_record(_record_id(request), actor(request)):
        return error_response(404, "no such golden record")
    return web.json_response({"ok": True})


async def export_golden(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "jsonl")
    try:
        body = await _review(request).export_golden(fmt)
    except ReviewError as error:
        return _bad(str(error))
    return web.Response(text=body, content_type="application/x-ndjson" if fmt == "jsonl" else "text/csv", charset="utf-8")


async def import_golden(request: web.Request) -> web.Response:
    body = await read_body(request, None, "text/csv")
    try:
        text = checked_text("the CSV", body.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return _bad("the CSV is not UTF-8 text")
    try:
        result = await _review(request).import_golden_csv(text, actor(request))
    except ReviewError as error:
        return _bad(str(error))
    return web.json_response(result)


def past_thread_view(row: PastThread) -> dict[str, Any]:
    """An imported thread; its people only as pseudonyms."""
    return {"id": row.id, "source": row.source, "url": row.url, "title": row.title, "question": row.question,
            "answer": row.answer, "answer_kind": row.answer_kind, "author": row.author_hash,
            "answerer": row.answerer_hash, "status": row.status, "golden_record": row.golden_record_id,
            "reviewed_by": row.reviewed_by, "imported_at": row.imported_at.isoformat()}


HISTORY_STATUSES = ("candidate", "accepted", "rejected")


async def list_history(request: web.Request) -> web.Response:
    status = request.query.get("status", "candidate")
    if status not in HISTORY_STATUSES:
        raise BadRequest(f"'status' must be one of {', '.join(HISTORY_STATUSES)}")
    rows, more = await _review(request).past_threads(status, int_query(request, "page", 1, 1, MAX_PAGE))
    return web.json_response({"threads": [past_thread_view(r) for r in rows], "more": more})


def _thread_id(request: web.Request) -> int:
    number = row_id(request.match_info["id"])
    if number is None:
        raise web.HTTPNotFound(reason="no such thread")
    return number


async def accept_history(request: web.Request) -> web.Response:
    try:
        row, _golden = await _review(request).accept_past_thread(_thread_id(request), actor(request))
    except ReviewNotFound:
        return error_response(404, "no such thread")
    except ReviewError as error:
        return _bad(str(error))
    return web.json_response(past_thread_view(row))


async def reject_history(request: web.Request) -> web.Response:
    try:
        row = await _review(request).reject_past_thread(_thread_id(request), actor(request))
    except ReviewNotFound:
        return error_response(404, "no such thread")
    except ReviewError as error:
        return _bad(str(error))
    return web.json_response(past_thread_view(row))


async def overview(request: web.Request) -> web.Response:
    return web.json_response(await _review(request).overview(int_query(request, "days", 30, 1, 365)))


def mount_review_api(app: web.Application) -> None:
    app.router.add_get("/api/v1/answers", list_answers)
    app.router.add_get("/api/v1/answers/{id}", get_answer)
    app.router.add_post("/api/v1/answers/{id}/review", review_answer)
    app.router.add_get("/api/v1/golden-records", list_golden)
    app.router.add_post("/api/v1/golden-records", add_golden)
    app.router.add_get("/api/v1/golden-records/export", export_golden)
    app.router.add_post("/api/v1/golden-records/import", import_golden)
    app.router.add_put(r"/api/v1/golden-records/{id:\d+}", edit_golden)
    app.router.add_delete(r"/api/v1/golden-records/{id:\d+}", delete_golden)
    app.router.add_get("/api/v1/overview", overview)
    app.router.add_get("/api/v1/history", list_history)
    app.router.add_post(r"/api/v1/history/{id:\d+}/accept", accept_history)
    app.router.add_post(r"/api/v1/history/{id:\d+}/reject", reject_history)
