"""The web pages: Ask (for everyone, or only maintainers) and the maintainers' review pages.

Server-rendered with Jinja2; a little plain JavaScript streams the Ask page's answer. Pages
use a signed-cookie session instead of API keys; every state change is a POST carrying the
session's CSRF token from the same origin, and is recorded with who did it. GETs change nothing.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlencode

import jinja2
import markupsafe
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from engine.answer.model import CHANNELS, Question
from engine.api import answer_html, charts, review_lists
from engine.api.errors import stream_events
from engine.api.http import checked_text, client_address, page_number, read_json, row_id
from engine.api.keys import ENGINE, LIMITS, METRICS, SESSION, SESSIONS, TEMPLATES, TUNING_RUNNER
from engine.api.sessions import CsrfRefused, Sessions, WebSession, check_csrf
from engine.protocol import MAX_COMMENT_CHARS, MAX_QUESTION_CHARS
from engine.review.errors import ReviewError, ReviewNotFound
from engine.review.service import MAX_REASON_CHARS, ReviewService
from engine.store.repository import UnknownAnswer
from engine.store.review import MAX_IMPORT_FIELD, VERDICTS
from engine.store.text import text_problem
from engine.tuning.errors import TooFewExamples, TuningConflict, TuningError, TuningNotFound
from engine.tuning.service import TuningService

if TYPE_CHECKING:
    from engine.service import Engine

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
PAGE_PREFIXES = ("/ask", "/review", "/static/")


#: What a page says after a redirect, by code: ``?error=<code>`` / ``?message=<code>`` pick one of these, and
#: anything else in the query shows nothing, so a link can't make the site say words of its sender's choosing.
PAGE_ERRORS = {
    "no-draft": "There is no GitHub draft waiting for this answer.",
    "unknown-action": "Unknown action.",
    "choose-file": "Choose a CSV file to import.",
    "not-utf8": "The file is not UTF-8 text.",
    "csv-header": "The CSV needs a header row with 'question' and 'answer' columns.",
    "golden-empty": "A golden record needs a question and an answer.",
    "too-long": f"Questions and answers are at most {MAX_IMPORT_FIELD} characters.",
    "correction-text": "A correction needs the corrected text.",
    "reject-reason": "Say why the answer is rejected.",
    "abstention": "An abstention has no answer to approve: correct it with the right answer instead.",
    "no-grant": "No failed grant to retry.",
    "job-over": "The job is already over.",
    "refused": "That was refused; the server's log says why.",
    "too-few": "Too few golden records to tune a model yet: approve or add more answers first.",
    "tuning-form": "Check the job's fields: the alias is short text; epochs, batch size and learning rate are "
                   "numbers, or empty for the provider's default.",
}
PAGE_NOTICES = {"added": "Added.", "deleted": "Deleted.", "saved": "Saved.", "imported": "Imported.",
                "accepted": "Accepted: it is a golden record now.", "rejected": "Rejected: it is hidden."}
_ERROR_CODES = {text.rstrip(".").lower(): code for code, text in PAGE_ERRORS.items()}


def error_code(error: Exception) -> str:
    """The code of a page error for a refusal's message ("refused" for one with no fixed wording)."""
    code = _ERROR_CODES.get(str(error).rstrip(".").lower())
    if code is None:
        log.info("a page action was refused: %s", error)
    return code or "refused"


def page_error(request: web.Request) -> str | None:
    return PAGE_ERRORS.get(request.query.get("error", ""))


def page_notice(request: web.Request) -> str | None:
    notice = PAGE_NOTICES.get(request.query.get("message", ""))
    if notice and request.query.get("message") == "imported":
        added, skipped = request.query.get("added", ""), request.query.get("skipped", "")
        if added.isdigit() and len(added) < 10:
            notice = f"Imported {int(added)}" + (f", {int(skipped)} skipped." if skipped.isdigit() and len(skipped) < 10
                                                  and int(skipped) else ".")
    return notice


def is_page(path: str) -> bool:
    return path == "/" or path.startswith(PAGE_PREFIXES)


def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    session = request[SESSION]
    page = request.app[TEMPLATES].get_template(name).render(
        maintainer=session.maintainer, csrf=session.csrf, path=request.path, **context)
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:; "
                                                            "script-src 'self'; frame-ancestors 'none'",
                                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})


def safe_href(url: object) -> str:
    """``url`` if a page may link to it (http(s), or a path on this site), else "": a knowledge base's
    folder named ``javascript:alert(1)`` must never become a link, nor a path with a backslash in it."""
    if not isinstance(url, str) or "\\" in url or not url.isprintable() or url != url.strip():
        return ""  # browsers read "/\\evil.example" and "\\\\evil.example" as "//evil.example"
    if url.startswith(("https://", "http://")) or (url.startswith("/") and not url.startswith("//")):
        return url
    return ""


def _engine(request: web.Request) -> Engine:
    return request.app[ENGINE]


def _review(request: web.Request) -> ReviewService:
    """The engine's review service (the engine started with the app: see :mod:`engine.api.app`)."""
    return request.app[ENGINE].review_service


def _tuning(request: web.Request) -> TuningService:
    """The engine's tuning service (the engine started with the app: see :mod:`engine.api.app`)."""
    return request.app[ENGINE].tuning_service


def require_maintainer(request: web.Request) -> str:
    name = request[SESSION].maintainer
    if not name:
        raise web.HTTPSeeOther(f"/review/login?{urlencode({'next': request.path_qs})}")
    return name


Form = MultiDictProxy[str | bytes | bytearray | FileField]  # what aiohttp's request.post() reads


def _text(form: Form, name: str) -> str | None:
    """A text field of the form, or None. A file where text belongs (only a hand-made multipart body sends one)
    is a 400, not a file object handed on as text."""
    value = form.get(name)
    if value is None or isinstance(value, str):
        return value
    raise web.HTTPBadRequest(text=f"the form's {name!r} field must be text, not a file")


async def _form(request: web.Request) -> Form:
    """The posted form, checked: from this site with this session's CSRF token, readable, and holding only
    text that can be stored. A body that can't be read as a form (bytes that aren't UTF-8, a multipart body
    without its boundary or cut short, an unknown charset) is a 400; one over the body limit is aiohttp's 413."""
    try:
        form = await request.post()
    except web.HTTPException:
        raise
    except (ValueError, LookupError, AssertionError, RuntimeError, HttpProcessingError):  # UnicodeDecodeError: a ValueError
        raise web.HTTPBadRequest(text="the form could not be read: send it from the page") from None
    token = form.get("csrf_token")
    check_csrf(request, request[SESSION], token if isinstance(token, str) else None)
    for value in form.values():
        if isinstance(value, str) and text_problem(value):
            raise web.HTTPBadRequest(text=f"a field of the form {text_problem(value)}")
    return form


def _json_refusal(error: CsrfRefused) -> web.Response:
    return web.json_response({"error": {"status": 403, "code": "forbidden", "message": error.text}}, status=403)


# -- Ask ----------------------------------------------------------------------------------------


async def home(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/ask")


async def ask_page(request: web.Request) -> web.Response:
    engine = _engine(request)
    if not engine.settings.web.ask_public:
        require_maintainer(request)
    return render(request, "ask.html", kb=engine.settings.core.kb, kbs=engine.served_kbs())


async def _ask_json(request: web.Request) -> dict[str, Any]:
    engine = _engine(request)
    if not engine.settings.web.ask_public and not request[SESSION].maintainer:
        raise web.HTTPUnauthorized(text="sign in to ask")
    check_csrf(request, request[SESSION], request.headers.get("X-CSRF-Token"))
    return await read_json(request)


async def ask_answer(request: web.Request) -> web.StreamResponse:
    """The Ask page's question: answered as server-sent events (``delta``, then ``answer``)."""
    try:
        data = await _ask_json(request)
    except CsrfRefused as error:
        return _json_refusal(error)
    question = data.get("question")
    if not isinstance(question, str) or not question.strip() or len(question) > MAX_QUESTION_CHARS:
        raise web.HTTPBadRequest(text=f"ask a question of 1-{MAX_QUESTION_CHARS} characters")
    checked_text("question", question)
    wait = request.app[LIMITS].take(f"web:{client_address(request)}")
    if wait is not None:
        return web.json_response({"error": {"status": 429, "code": "rate_limited", "message": "slow down a little"}},
                                 status=429, headers={"Retry-After": str(max(1, round(wait)))})
    session = request[SESSION]
    conversation = _page_conversation(data.get("conversation_id"), session)

    def render(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if event["type"] == "delta":
            return "delta", {"text": event["text"]}
        request.app[METRICS].answered(event["answer"], "web")
        return "answer", answer_html.answer_payload(event["answer"])

    kb = data.get("kb")  # one of the served knowledge bases (the page's selector), or the default
    if kb is not None and kb not in _engine(request).served_kbs():
        raise web.HTTPBadRequest(text="'kb' must be one of the knowledge bases this server answers from")
    question = Question(question.strip(), channel="web", conversation_id=conversation, user_id=f"web:{session.visitor}",
                        kb=kb)
    return await stream_events(request, _engine(request).answer_stream(question), render)


def _page_conversation(given: object, session: WebSession) -> str:
    """The Ask page's conversations are the server's: a new one, or one this visitor was given before.

    An id of anyone else's (another visitor, a Discord thread, a GitHub discussion) is refused, so a
    visitor can neither read nor add to a conversation that isn't theirs."""
    mine = f"web:{session.visitor}:"
    if given is None:
        return mine + uuid.uuid4().hex[:16]
    if not isinstance(given, str) or not re.fullmatch(re.escape(mine) + "[0-9a-f]{16}", given):
        raise web.HTTPBadRequest(text="that conversation isn't yours: ask without a conversation_id to start a new one")
    return given


async def ask_feedback(request: web.Request) -> web.Response:
    """A visitor's vote, on an answer given in one of their own conversations (rate limited as asking is)."""
    try:
        data = await _ask_json(request)
    except CsrfRefused as error:
        return _json_refusal(error)
    given = data.get("vote")
    vote = {"up": 1, "down": -1}.get(given) if isinstance(given, str) else None
    answer_id = data.get("answer_id")
    if vote is None or not isinstance(answer_id, str) or len(answer_id) > 64:
        raise web.HTTPBadRequest(text="send answer_id and vote ('up' or 'down')")
    checked_text("answer_id", answer_id)
    comment = data.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS):
        raise web.HTTPBadRequest(text=f"a comment is text of at most {MAX_COMMENT_CHARS} characters")
    if comment is not None:
        checked_text("comment", comment)
    wait = request.app[LIMITS].take(f"web:{client_address(request)}")
    if wait is not None:
        return web.json_response({"error": {"status": 429, "code": "rate_limited", "message": "slow down a little"}},
                                 status=429, headers={"Retry-After": str(max(1, round(wait)))})
    visitor = request[SESSION].visitor
    try:
        created = await _engine(request).feedback(answer_id, f"web:{visitor}", vote, (comment or "").strip() or None,
                                                  conversation_prefix=f"web:{visitor}:")
    except UnknownAnswer:
        raise web.HTTPNotFound(text="no such answer among yours") from None
    return web.json_response({"ok": True, "created": created})


async def review_home(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/review/answers")


# -- signing in -----------------------------------------------------------------------------------


# Where sign-in may send you back to: a page of this site, as a plain path and query. Anything else
# (another host, "//host", a backslash or a tab that browsers read as "//", a scheme) goes to the answers.
_RETURN_PATH = re.compile(r"^/(review|ask)(/[A-Za-z0-9_.~-]+)*/?(\?[A-Za-z0-9_.~%=&+-]*)?$")


def _safe_next(value: str | None) -> str:
    return value if isinstance(value, str) and _RETURN_PATH.fullmatch(value) else "/review/answers"


async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", next=_safe_next(request.query.get("next")), error=None)


async def login(request: web.Request) -> web.Response:
    form = await _form(request)
    target = _safe_next(_text(form, "next"))
    if request.app[LIMITS].take(f"login:{client_address(request)}") is not None:
        return render(request, "login.html", status=429, next=target, error="Too many attempts; wait a minute.")
    review = _review(request)
    name = await review.maintainer_for((_text(form, "token") or "").strip())
    if name is None:
        log.warning("sign-in refused from %s", client_address(request))
        return render(request, "login.html", status=401, next=target, error="That token is not valid.")
    session = request[SESSION]
    if session.token:  # signing in again (as anyone) ends the session this browser had
        await review.end_session(session.token)
        session.token = session.maintainer = None
    token = await review.open_session(name)
    if token is None:  # the maintainer was removed since the token was checked
        log.warning("sign-in refused from %s: the maintainer was removed meanwhile", client_address(request))
        return render(request, "login.html", status=401, next=target, error="That token is not valid.")
    session.token, session.maintainer = token, name
    session.csrf = WebSession().csrf  # a new CSRF token after signing in
    await review.audit(name, "signin", None, {"from": client_address(request)})
    raise web.HTTPSeeOther(target)


async def logout(request: web.Request) -> web.Response:
    await _form(request)
    session = request[SESSION]
    if session.token:
        await _review(request).end_session(session.token)
    session.token = session.maintainer = None
    raise web.HTTPSeeOther("/review/login")


# -- answers ----------------------------------------------------------------------------------------


async def answers_page(request: web.Request) -> web.Response:
    require_maintainer(request)
    review = _review(request)
    selected = review_lists.answer_filter(request.query)
    rows, more = await review.answers(selected)
    params = {k: v for k, v in request.query.items() if k != "page" and v}

    def page_link(page: int) -> str:
        return "/review/answers?" + urlencode({**params, "page": page})

    return render(request, "answers.html", groups=review_lists.group_repeats(rows), filter=selected, channels=CHANNELS,
                  verdicts=VERDICTS, kbs=await review.knowledge_bases(),
                  previous=page_link(selected.page - 1) if selected.page > 1 else None,
                  next=page_link(selected.page + 1) if more else None)


async def answer_page(request: web.Request) -> web.Response:
    require_maintainer(request)
    detail = await _review(request).detail(request.match_info["id"])
    if detail is None:
        raise web.HTTPNotFound(text="no such answer")
    return render(request, "answer.html", error=page_error(request), error_for=request.query.get("for"),
                  done=DONE.get(request.query.get("done", "")), **detail)


# What a review action did, said on the page it returns to. Only these fixed sentences are shown:
# the query string picks one, it never supplies text.
DONE = {
    "approved": "Approved: the answer is now a golden record.",
    "corrected": "Correction saved and approved: the corrected text is now a golden record.",
    "rejected": "Rejected; a golden record made from it was removed.",
    "posted": "Posted to GitHub.",
}


async def answer_action(request: web.Request) -> web.Response:
    name = require_maintainer(request)
    form = await _form(request)
    review = _review(request)
    answer_id = request.match_info["id"]
    action = _text(form, "action")
    target = f"/review/answers/{answer_id}"
    try:
        if action in ("approve", "correct", "reject"):
            done = {"approve": "approved", "correct": "corrected", "reject": "rejected"}[action]
            await review.review(answer_id, done, name, text=_text(form, "text"), reason=_text(form, "reason"))
        elif action == "post":
            done = "posted"
            if await review.post_draft(answer_id, name, _text(form, "body") or None) is None:
                raise ReviewError("there is no GitHub draft waiting for this answer")
        else:
            raise ReviewError("unknown action")
    except ReviewNotFound:
        raise web.HTTPNotFound(text="no such answer") from None
    except ReviewError as error:  # shown beside the form it came from (e.g. the reject reason)
        where = {"for": action} if action in ("correct", "reject", "post") else {}
        raise web.HTTPSeeOther(f"{target}?{urlencode({'error': error_code(error), **where})}") from None
    raise web.HTTPSeeOther(f"{target}?{urlencode({'done': done})}")


# -- golden records ----------------------------------------------------------------------------------


async def golden_page(request: web.Request) -> web.Response:
    require_maintainer(request)
    page = page_number(request.query.get("page"))
    text = (request.query.get("q") or "").strip()[:200] or None
    rows, more = await _review(request).golden_records(text, page)
    params = {"q": text} if text else {}
    return render(request, "golden.html", rows=rows, q=text or "", message=page_notice(request),
                  error=page_error(request),
                  previous=f"/review/golden?{urlencode({**params, 'page': page - 1})}" if page > 1 else None,
                  next=f"/review/golden?{urlencode({**params, 'page': page + 1})}" if more else None)


async def golden_record_page(request: web.Request) -> web.Response:
    require_maintainer(request)
    record_id = row_id(request.match_info["id"])
    record = await _review(request).golden_record(record_id) if record_id else None
    if record is None:
        raise web.HTTPNotFound(text="no such golden record")
    return render(request, "golden_record.html", record=record, error=page_error(request),
                  confirm_delete=request.query.get("confirm") == "delete")


async def golden_add(request: web.Request) -> web.Response:
    name = require_maintainer(request)
    form = await _form(request)
    try:
        await _review(request).add_golden_record(_text(form, "question") or "", _text(form, "answer") or "", name)
    except ReviewError as error:
        raise web.HTTPSeeOther(f"/review/golden?{urlencode({'error': error_code(error)})}") from None
    raise web.HTTPSeeOther("/review/golden?" + urlencode({"message": "added"}))


async def golden_action(request: web.Request) -> web.Response:
    name = require_maintainer(request)
    form = await _form(request)
    review = _review(request)
    record_id = row_id(request.match_info["id"])
    if record_id is None:
        raise web.HTTPNotFound(text="no such golden record")
    if form.get("action") == "delete":
        if form.get("confirmed") != "yes":  # deleting asks first: the page shows a confirmation form
            raise web.HTTPSeeOther(f"/review/golden/{record_id}?confirm=delete")
        if not await review.delete_golden_record(record_id, name):
            raise web.HTTPNotFound(text="no such golden record")
        raise web.HTTPSeeOther("/review/golden?" + urlencode({"message": "deleted"}))
    try:
        record = await review.update_golden_record(record_id, _text(form, "question") or "",
                                                    _text(form, "answer") or "", name)
    except ReviewError as error:
        raise web.HTTPSeeOther(f"/review/golden/{record_id}?{urlencode({'error': error_code(error)})}") from None
    if record is None:
        raise web.HTTPNotFound(text="no such golden record")
    raise web.HTTPSeeOther("/review/golden?" + urlencode({"message": "saved"}))


async def history_page(request: web.Request) -> web.Response:
    """The imported answered threads waiting for a maintainer (``firstreply history import``)."""
    require_maintainer(request)
    page = page_number(request.query.get("page"))
    rows, more = await _review(request).past_threads("candidate", page)
    return render(request, "history.html", rows=rows, message=page_notice(request), error=page_error(request),
                  previous=f"/review/history?{urlencode({'page': page - 1})}" if page > 1 else None,
                  next=f"/review/history?{urlencode({'page': page + 1})}" if more else None)


async def history_action(request: web.Request) -> web.Response:
    name = require_maintainer(request)
    form = await _form(request)
    thread_id = row_id(request.match_info["id"])
    if thread_id is None:
        raise web.HTTPNotFound(text="no such thread")
    action = form.get("action")
    review = _review(request)
    try:
        if action == "accept":
            await review.accept_past_thread(thread_id, name)
        elif action == "reject":
            await review.reject_past_thread(thread_id, name)
        else:
            raise web.HTTPBadRequest(text="the action is accept or reject")
    except ReviewNotFound:
        raise web.HTTPNotFound(text="no such thread") from None
    except ReviewError as error:
        raise web.HTTPSeeOther(f"/review/history?{urlencode({'error': error_code(error)})}") from None
    raise web.HTTPSeeOther("/review/history?" + urlencode({"message": "accepted" if action == "accept" else "rejected"}))


async def golden_export(request: web.Request) -> web.Response:
    require_maintainer(request)
    fmt = request.query.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise web.HTTPBadRequest(text="format is jsonl or csv")
    body = await _review(request).export_golden(fmt)
    kind = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
    return web.Response(text=body, content_type=kind, charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="golden-records.{fmt}"'})


async def golden_import(request: web.Request) -> web.Response:
    name = require_maintainer(request)
    form = await _form(request)
    upload = form.get("file")
    try:
        if not isinstance(upload, FileField):
            raise ReviewError("choose a CSV file to import")
        text = upload.file.read().decode("utf-8-sig")
        result = await _review(request).import_golden_csv(text, name)
    except (ReviewError, UnicodeDecodeError) as error:
        code = error_code(error) if isinstance(error, ReviewError) else "not-utf8"
        raise web.HTTPSeeOther(f"/review/golden?{urlencode({'error': code})}") from None
    counts = {"added": result["added"], "skipped": len(result["skipped"])}
    raise web.HTTPSeeOther("/review/golden?" + urlencode({"message": "imported", **counts}))


# -- overview --------------------------------------------------------------------------------------


async def overview_page(request: web.Request) -> web.Response:
    require_maintainer(request)
    review = _review(request)
    kb = review_lists.kb_query(request.query)
    stats = await review.overview(30, kb)
    votes = stats["votes"]
    audit = await review.audit_events(12)
    return render(request, "overview.html", stats=stats, kb=kb, kbs=await review.knowledge_bases(),
                  audit_links={e.id: review_lists.audit_link(e.action, e.target) for e in audit},
                  daily=charts.daily_bars(stats["per_day"]),
                  vote_share=charts.share_bar([("👍", votes["up"], "#10b981"), ("👎", votes["down"], "#ef4444")]),
                  sources=charts.ranked_bars([(s["title"], s["citations"], s["url"] if s["url"].startswith("http") else None)
                                              for s in stats["top_sources"]]),
                  audit=audit)


# -- tuning ----------------------------------------------------------------------------------------


async def tuning_page(request: web.Request) -> web.Response:
    require_maintainer(request)
    tuning = _tuning(request)
    model = await tuning.current_model()
    return render(request, "tuning.html", jobs=await tuning.jobs(), activations=await tuning.activations(),
                  model=model, error=page_error(request), started=request.query.get("started") == "yes",
                  golden_count=len(await _review(request).all_golden_records()))


async def tuning_create(request: web.Request) -> web.Response:
    """Start a tuning job from the tuning page: the same checks as ``POST /api/v1/finetunings``."""
    name = require_maintainer(request)
    form = await _form(request)
    try:
        alias, base_llm = review_lists.tuning_request(form)
        await _tuning(request).create(alias, base_llm, None, {"from": "tuning page"}, name)
    except review_lists.TuningFormError:
        raise web.HTTPSeeOther("/review/tuning?error=tuning-form") from None
    except TuningError as error:
        log.info("a tuning job from the tuning page was refused: %s", error)
        code = "too-few" if isinstance(error, TooFewExamples) else "tuning-form"
        raise web.HTTPSeeOther(f"/review/tuning?{urlencode({'error': code})}") from None
    runner = request.app.get(TUNING_RUNNER)
    if runner is not None:  # take the new job now rather than at the next poll
        runner.wake.set()
    raise web.HTTPSeeOther("/review/tuning?started=yes")


async def tuning_action(request: web.Request) -> web.Response:
    name = require_maintainer(request)
    form = await _form(request)
    tuning = _tuning(request)
    job_id, action = request.match_info["id"], form.get("action")
    try:
        if action == "evaluate":
            await tuning.evaluate(job_id)
        elif action == "activate":
            await tuning.activate(job_id, name)
        elif action == "grant":
            if await tuning.retry_grant(job_id) is None:
                raise TuningConflict("no failed grant to retry")
        elif action == "cancel":
            try:
                await tuning.cancel(job_id)
            except (TuningNotFound, TuningConflict):  # the page says the same for both, as it always did
                raise TuningConflict("the job is already over") from None
        else:
            raise TuningError("unknown action")
    except TuningNotFound:
        raise web.HTTPNotFound(text="no such tuning job") from None
    except TuningError as error:
        raise web.HTTPSeeOther(f"/review/tuning?{urlencode({'error': error_code(error)})}") from None
    raise web.HTTPSeeOther("/review/tuning")


async def tuning_rollback(request: web.Request) -> web.Response:
    name = require_maintainer(request)
    await _form(request)
    await _tuning(request).rollback(name)
    raise web.HTTPSeeOther("/review/tuning")


def mount_pages(app: web.Application, session_secret: str | Callable[[], str], secure_cookies: bool) -> None:
    app[SESSIONS] = Sessions(session_secret, secure=secure_cookies)
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                     autoescape=jinja2.select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
    environment.filters["tojson_pretty"] = lambda value: json.dumps(value, indent=1, ensure_ascii=False)
    environment.filters["safe_href"] = safe_href
    environment.globals.update(max_question_chars=MAX_QUESTION_CHARS, max_comment_chars=MAX_COMMENT_CHARS,
                               max_reason_chars=MAX_REASON_CHARS, max_golden_chars=MAX_IMPORT_FIELD)
    environment.filters["answer_html"] = lambda text: markupsafe.Markup(answer_html.render(text))  # sanitised by nh3
    app[TEMPLATES] = environment
    app.router.add_get("/", home)
    app.router.add_get("/ask", ask_page)
    app.router.add_post("/ask/answer", ask_answer)
    app.router.add_post("/ask/feedback", ask_feedback)
    app.router.add_get("/review", review_home)
    app.router.add_get("/review/login", login_page)
    app.router.add_post("/review/login", login)
    app.router.add_post("/review/logout", logout)
    app.router.add_get("/review/answers", answers_page)
    app.router.add_get("/review/answers/{id}", answer_page)
    app.router.add_post("/review/answers/{id}", answer_action)
    app.router.add_get("/review/golden", golden_page)
    app.router.add_post("/review/golden", golden_add)
    app.router.add_get("/review/golden/export", golden_export)
    app.router.add_post("/review/golden/import", golden_import)
    app.router.add_get(r"/review/golden/{id:\d+}", golden_record_page)
    app.router.add_post(r"/review/golden/{id:\d+}", golden_action)
    app.router.add_get("/review/history", history_page)
    app.router.add_post(r"/review/history/{id:\d+}", history_action)
    app.router.add_get("/review/overview", overview_page)
    app.router.add_get("/review/tuning", tuning_page)
    app.router.add_post("/review/tuning", tuning_create)
    app.router.add_post("/review/tuning/rollback", tuning_rollback)
    app.router.add_post("/review/tuning/{id}", tuning_action)
    app.router.add_static("/static/", HERE / "static")
