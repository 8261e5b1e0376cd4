"""The engine API's OpenAPI 3.1 document, served at ``/openapi.json``.

Written out by hand (the routes are plain aiohttp), and kept true by tests (tests/test_openapi.py) that
compare it with the routes the app registers, validate real responses against it, and run schemathesis's
checks on generated requests: documented statuses, media types and bodies, valid requests accepted and
invalid ones refused. Where a constraint is the server's (a text's length, no NUL, not blank), the schema
says it the same way, so a generated request is refused exactly when the document says it is invalid.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from typing import Any

from engine.llm import registry
from engine.llm.registry import ProviderKind
from engine.protocol import CHANNEL_SETTINGS, MAX_ANSWER_CHARS, MAX_COMMENT_CHARS, MAX_QUESTION_CHARS
from engine.review.service import MAX_REASON_CHARS
from engine.store.review import MAX_IMPORT_FIELD
from engine.tuning.request import INT32_MAX, MODEL_NAME_MAX, PARAMETERS

STRING, BOOLEAN, INTEGER, NUMBER = {"type": "string"}, {"type": "boolean"}, {"type": "integer"}, {"type": "number"}
OBJECT = {"type": "object"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


#: The characters ``str.strip()`` removes (``str.isspace``), as a regex class body; a test keeps it true.
SPACE = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NO_NUL = "^[^\\x00]*$"  # text the store can't hold (a NUL) is a 400 naming the field
NOT_BLANK = f"^[^\\x00]*[^\\x00{SPACE}][^\\x00]*$"  # and a required text must hold more than white space
#: What engine.tuning.request refuses in a name (Unicode categories Cc, Cf, Zl and Zp); a test keeps it true.
CONTROL = [(0x0, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD), (0x70F, 0x70F),
           (0x890, 0x891), (0x8E2, 0x8E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064),
           (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
           (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F)]
_CONTROL = "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in CONTROL)
NAME = f"^[^{_CONTROL}]*[^{_CONTROL}{SPACE}][^{_CONTROL}]*$"  # printable, and not blank
KB = "^[a-zA-Z0-9](?:[a-zA-Z0-9_-]{0,62}[a-zA-Z0-9])?$"  # engine.config.KB_NAME


#: Who did it: taken only from a keyless local caller, and only when it is a string; anything else is ignored.
BY = {"description": "who did it, for a keyless local caller (a key's or a token's own name is recorded otherwise)"}


def _text(limit: int, *, required: bool = False) -> dict[str, Any]:
    """A text field as ``engine.api.http.text_field`` takes it: at most ``limit`` characters, no NUL, and (when
    required) not blank."""
    if required:
        return {"type": "string", "minLength": 1, "maxLength": limit, "pattern": NOT_BLANK}
    return {"type": "string", "maxLength": limit, "pattern": NO_NUL}


SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["status", "code", "message"],
        "properties": {"status": INTEGER, "code": STRING, "message": STRING}}}},
    "Question": {"type": "object", "required": ["question"], "properties": {
        "question": _text(MAX_QUESTION_CHARS, required=True),
        "channel": {"enum": ["discord", "github", "api", "web"]},
        "conversation_id": _text(200), "user_id": _text(200), "title": _text(500), "kb": {"type": "string", "pattern": KB},
        "link": {"type": "string", "maxLength": 500, "pattern": "^https?://[^\\x00]*$", "description": "an http(s) URL"},
        "stream": {"type": "boolean", "description": "true: the answer comes as server-sent events"}}},
    "Citation": {"type": "object", "required": ["number", "title", "url", "path"], "properties": {
        "number": INTEGER, "title": STRING, "heading": STRING, "url": STRING, "path": STRING}},
    "Answer": {"type": "object", "required": ["id", "text", "abstained", "confidence", "model", "citations"], "properties": {
        "id": _nullable(STRING), "text": STRING, "html": STRING, "abstained": BOOLEAN, "confidence": NUMBER, "model": STRING,
        "conversation_id": _nullable(STRING), "escalation": _nullable(STRING), "latency_ms": INTEGER,
        "fallback_reasons": {"type": "array", "items": STRING}, "citations": {"type": "array", "items": _ref("Citation")}}},
    "Hit": {"type": "object", "required": ["path", "url", "score"], "properties": {
        "path": STRING, "title": STRING, "url": STRING, "score": NUMBER, "dense": _nullable(NUMBER),
        "keyword": _nullable(NUMBER), "text": STRING}},
    "Feedback": {"type": "object", "required": ["answer_id", "user_id", "vote"], "properties": {
        "answer_id": _text(64, required=True), "user_id": _text(200, required=True),
        "vote": {"enum": ["up", "down", "+1", "-1", 1, -1]}, "comment": _text(MAX_COMMENT_CHARS)}},
    "DiscordThread": {"type": "object", "required": ["thread_id", "answered", "escalated"], "properties": {
        "thread_id": STRING, "answered": BOOLEAN, "escalated": BOOLEAN}},
    "ReviewedAnswer": {"type": "object", "required": ["id", "question", "text", "verdict", "votes"], "properties": {
        "id": STRING, "channel": STRING, "question": STRING, "text": STRING, "abstained": BOOLEAN,
        "verdict": {"enum": ["unreviewed", "approved", "corrected", "rejected"]}, "corrected_text": _nullable(STRING),
        "votes": {"type": "object", "properties": {"up": INTEGER, "down": INTEGER}}, "accepted": BOOLEAN,
        "link": _nullable(STRING)}},
    "Review": {"description": "approve; correct, with the corrected text; or reject, saying why", "anyOf": [
        {"type": "object", "required": ["verdict"], "properties": {
            "verdict": {"const": "approved"}, "text": _text(MAX_ANSWER_CHARS), "reason": _text(MAX_REASON_CHARS), "by": BY}},
        {"type": "object", "required": ["verdict", "text"], "properties": {
            "verdict": {"const": "corrected"}, "text": _text(MAX_ANSWER_CHARS, required=True), "reason": _text(MAX_REASON_CHARS),
            "by": BY}},
        {"type": "object", "required": ["verdict", "reason"], "properties": {
            "verdict": {"const": "rejected"}, "text": _text(MAX_ANSWER_CHARS), "reason": _text(MAX_REASON_CHARS, required=True),
            "by": BY}}]},
    "GoldenRecord": {"type": "object", "required": ["id", "question", "answer", "source"], "properties": {
        "id": INTEGER, "question": STRING, "answer": STRING, "source": STRING, "answer_id": _nullable(STRING)}},
    "GoldenRecordInput": {"type": "object", "required": ["question", "answer"], "properties": {
        "question": _text(MAX_IMPORT_FIELD, required=True), "answer": _text(MAX_IMPORT_FIELD, required=True), "by": BY}},
    "PastThread": {"type": "object", "required": ["id", "source", "url", "title", "answer", "status"], "properties": {
        "id": INTEGER, "source": STRING, "url": STRING, "title": STRING, "question": STRING, "answer": STRING,
        "answer_kind": {"enum": ["accepted", "maintainers"]}, "author": _nullable(STRING), "answerer": _nullable(STRING),
        "status": {"enum": ["candidate", "accepted", "rejected"]}, "golden_record": _nullable(INTEGER),
        "reviewed_by": _nullable(STRING), "imported_at": STRING}},
    "FineTuning": {"type": "object", "required": ["id", "alias", "status", "base_llm", "created_at"], "properties": {
        "id": STRING, "alias": STRING,
        "status": {"enum": ["queued", "validating_files", "running", "succeeded", "failed", "cancelled"]},
        "error": _nullable(STRING), "base_llm": OBJECT, "finetuning_file_id": _nullable(STRING),
        "finetuning_job_id": _nullable(STRING), "model_id": _nullable(STRING), "created_at": STRING,
        "golden_records": _nullable({"type": "array", "items": INTEGER}), "metadata": OBJECT,
        "progress": _nullable(NUMBER), "provider_progress": _nullable(OBJECT),
        "permission": _nullable({"type": "object", "properties": {
            "grantee": STRING, "state": {"enum": ["pending", "granted", "failed"]}, "error": _nullable(STRING)}})}},
    "Activation": {"type": "object", "required": ["id", "model", "activated_by"], "properties": {
        "id": INTEGER, "model": STRING, "fallback": _nullable(STRING), "job_id": _nullable(STRING),
        "activated_by": STRING, "activated_at": STRING, "rolled_back_at": _nullable(STRING)}},
}


def _parameter_schema(canonical: str) -> dict[str, Any]:
    """A hyperparameter as engine.tuning.request.check_parameters takes it (an OpenAI "auto" is left undocumented)."""
    if PARAMETERS[canonical].whole:
        return {"type": "integer", "minimum": 1, "maximum": INT32_MAX}
    return {"type": "number", "exclusiveMinimum": 0}


def _fine_tuning_request(kinds: list[ProviderKind]) -> dict[str, Any]:
    """The tuning request as the tunable providers in the registry take it: the union of their hyperparameter
    names, and, for each provider, the names it takes, its caps and its alias's length, where they are narrower."""
    backends = {kind.kind: kind.tuning for kind in kinds if kind.tuning is not None}
    titles = {kind.kind: kind.title for kind in kinds}
    accepted: dict[str, str] = {}  # every accepted name -> its canonical name
    for backend in backends.values():
        accepted.update(backend.parameters)
    properties = {}
    for name, canonical in accepted.items():
        takers = [titles[kind] for kind, backend in backends.items() if name in backend.parameters]
        schema = _parameter_schema(canonical)
        if name != canonical and len(takers) < len(backends):
            schema["description"] = f"{' and '.join(takers)}'s name for {canonical}"
        elif len(takers) < len(backends):
            schema["description"] = f"{' and '.join(takers)} only"
        properties[name] = schema
    exclusive = [{"not": {"required": [a, b]}} for a, b in combinations(accepted, 2) if accepted[a] == accepted[b]]
    if "learning_rate" in accepted and "learning_rate_multiplier" in accepted:  # check_parameters: one, not both
        exclusive.append({"not": {"required": ["learning_rate", "learning_rate_multiplier"]}})
    alias_max = max((backend.alias_max for backend in backends.values()), default=64)
    narrower = []
    for kind, backend in backends.items():
        then: dict[str, Any] = {}
        if backend.alias_max < alias_max:
            then["alias"] = {"maxLength": backend.alias_max}
        parameters: dict[str, Any] = {}
        if set(backend.parameters) != set(accepted):
            parameters["propertyNames"] = {"enum": list(backend.parameters)}
        if caps := {name: {"maximum": backend.highs[target]} for name, target in backend.parameters.items()
                    if target in backend.highs}:
            parameters["properties"] = caps
        if parameters:
            then["base_llm"] = {"properties": {"model_parameters": _nullable(parameters)}}
        if then:
            narrower.append({"if": {"properties": {"base_llm": {"properties": {"model_provider": {"const": kind}}}}},
                             "then": {"properties": then}})
    schema = {"type": "object", "required": ["alias", "base_llm"], "additionalProperties": False, "properties": {
        "alias": {"type": "string", "minLength": 1, "maxLength": alias_max, "pattern": NAME,
                  "description": " or ".join(f"{backend.alias_field} (at most {backend.alias_max} characters)"
                                             for backend in backends.values())},
        "base_llm": {"type": "object", "required": ["model_provider", "model_name"], "additionalProperties": False,
                     "properties": {
            "model_provider": {"enum": list(backends)},
            "model_name": {"type": "string", "minLength": 1, "maxLength": MODEL_NAME_MAX, "pattern": NAME},
            "model_parameters": _nullable({"type": "object", "additionalProperties": False, "properties": properties,
                                           **({"allOf": exclusive} if exclusive else {})})}},
        "golden_records": _nullable({"type": "array", "items": {"type": "integer", "minimum": 1},
                                     "description": "ids of golden records; null: all of them"}),
        "metadata": _nullable(OBJECT), "by": BY}}
    if narrower:
        schema["allOf"] = narrower
    return schema

ERRORS = {"400": "bad request", "401": "no or unknown API key", "403": "the key lacks the route's role, or a cross-site "
          "request to a keyless engine", "409": "the state forbids it now", "413": "the body is too large",
          "415": "the body is not sent as the documented content type", "429": "rate limited"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(summary: str, ok: dict[str, Any] | None = None, *, body: dict[str, Any] | None = None,
               status: str = "200", params: list[dict[str, Any]] | None = None, errors: tuple[str, ...] = (),
               content: str = "application/json", also: dict[str, dict[str, Any]] | None = None,
               optional_body: bool = False, secured: bool = True) -> dict[str, Any]:
    """One operation; ``ok`` is the success body's schema as ``content``, and ``also`` maps other media types the
    success may be sent as (a stream, an export format) to theirs."""
    media = {content: {"schema": ok}, **{kind: {"schema": schema} for kind, schema in (also or {}).items()}}
    responses = {status: {"description": "OK", **({"content": media} if ok is not None else {})}}
    for code in (*(("400", "401", "403", "429") if secured else ()), *(("413", "415") if body else ()), *errors):
        responses[code] = {"description": ERRORS.get(code, "see the message"), **_json(_ref("Error"))}
    operation: dict[str, Any] = {"summary": summary, "responses": dict(sorted(responses.items()))}
    if body is not None:
        operation["requestBody"] = {"required": not optional_body, **_json(body)}
    if params:
        operation["parameters"] = params
    if not secured:
        operation["security"] = []
    return operation


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or STRING}


ANSWER_FILTERS = [_query("channel", {"enum": ["discord", "github", "api", "web"]}),
                  _query("verdict", {"enum": ["unreviewed", "approved", "corrected", "rejected"]}),
                  _query("votes", {"enum": ["down", "up", "none"]}), _query("abstained", {"enum": ["yes", "no"]}),
                  _query("accepted", {"enum": ["yes", "no"]}), _query("q", _text(200)),
                  _query("order", {"enum": ["down", "newest"]}),
                  _query("page", {"type": "integer", "minimum": 1, "maximum": 10_000})]  # engine.api.http.MAX_PAGE
ID = _path("id", {"type": "string", "pattern": "^[0-9]{1,18}$"})
UUID_ID = _path("id", {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                       "description": "answers and tuning jobs have UUIDs; any other id is a 404"})
DIGITS = {"type": "string", "pattern": "^[0-9]{1,30}$"}  # a Discord or GitHub numeric id
STREAM_ERROR = {"type": "object", "required": ["status", "code", "message"],
                "properties": {"status": INTEGER, "code": STRING, "message": STRING}}


def _events(**events: dict[str, Any]) -> dict[str, Any]:
    """Server-sent events (with ``"stream": true``): the schema of each one, by its name; every ``data`` is JSON."""
    return {"text/event-stream": {"oneOf": [
        {"type": "object", "required": ["event", "data"], "properties": {
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}}}
        for name, schema in {**events, "error": STREAM_ERROR}.items()]}}


EXPORT = {"text/csv": {"type": "string", "description": "with ?format=csv"}}
THREAD = _path("thread", DIGITS)
PROVIDER = _path("provider", {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$",
                              "description": "any provider name: the engine's own provider chain answers"})


def document(with_github: bool = True) -> dict[str, Any]:
    """The document for the providers registered now (a provider module adds its kind to the enums)."""
    return _document(with_github, tuple(registry.kinds().values()))


@lru_cache(maxsize=4)
def _document(with_github: bool, kinds: tuple[ProviderKind, ...]) -> dict[str, Any]:
    tunable = [kind.kind for kind in kinds if kind.tuning is not None]
    paths: dict[str, dict[str, Any]] = {
        "/healthz": {"get": _operation("The process is up", OBJECT, secured=False)},
        "/readyz": {"get": _operation("Database, vector store and model all answer", OBJECT, secured=False, errors=("503",))},
        "/metrics": {"get": _operation("Prometheus metrics", STRING, content="text/plain")},
        "/openapi.json": {"get": _operation("This document", OBJECT, secured=False)},
        "/v1/answer": {"post": _operation("Answer a question (server-sent events with \"stream\": true)", _ref("Answer"),
                                          body=_ref("Question"), errors=("409", "503"), also=_events(
            delta={"type": "object", "required": ["text"], "properties": {"text": STRING}}, answer=_ref("Answer")))},
        "/v1/search": {"get": _operation("Search the knowledge base", {"type": "object", "properties": {
            "query": STRING, "hits": {"type": "array", "items": _ref("Hit")}}}, params=[
            _query("q", _text(MAX_QUESTION_CHARS, required=True), True),
            _query("k", {"type": "integer", "minimum": 1, "maximum": 50}), _query("kb", {"type": "string", "pattern": KB})])},
        "/v1/feedback": {"post": _operation("Vote on an answer", {"type": "object", "properties": {
            "ok": BOOLEAN, "created": BOOLEAN}}, body=_ref("Feedback"), errors=("404",))},
        "/v1/status": {"get": _operation("Index size, model, answers logged", OBJECT)},
        "/v1/channels/{platform}": {"get": _operation("Per-channel settings", OBJECT,
                                                      params=[_path("platform", {"enum": ["discord", "github"]})])},
        "/v1/channels/{platform}/{channel}": {"put": _operation("Change a channel's settings", OBJECT, body={
            "type": "object", "additionalProperties": False,
            "properties": {**{name: _nullable(BOOLEAN) for name in CHANNEL_SETTINGS}, "by": _text(64)},
            "anyOf": [{"required": [name]} for name in CHANNEL_SETTINGS]},
            params=[_path("platform", {"enum": ["discord", "github"]}), _path("channel", DIGITS)])},
        "/v1/discord/threads/{thread}": {
            "get": _operation("Whether the Discord bot answered in this thread, and whether a maintainer was asked",
                              _ref("DiscordThread"), params=[THREAD]),
            "put": _operation("Mark the thread answered (follow-ups there need no mention)", _ref("DiscordThread"),
                              params=[THREAD])},
        "/v1/discord/threads/{thread}/escalation": {"post": _operation(
            "Record that a maintainer was asked here; \"first\" is true only for the first call, in any process",
            {"type": "object", "required": ["first"], "properties": {"first": BOOLEAN}}, params=[THREAD])},
        "/api/{provider}/generate": {"post": _operation("FURY's generate route", {"type": "object", "properties": {
            "response": STRING, "references": {"type": "array", "items": STRING}}}, body={
            "type": "object", "required": ["query"], "properties": {
                "query": _text(MAX_QUESTION_CHARS, required=True), "llm": {**_text(200), "description": "ignored: the engine's chain answers"},
                "knn": {"type": "integer", "minimum": 1, "maximum": 50}, "stream": BOOLEAN}},
            params=[PROVIDER], also=_events(
                delta={"type": "object", "required": ["response"], "properties": {"response": STRING}},
                done={"type": "object", "required": ["response", "references"], "properties": {
                    "response": STRING, "references": {"type": "array", "items": STRING}}}))},
        "/api/v1/answers": {"get": _operation("Logged answers, filtered", {"type": "object", "properties": {
            "answers": {"type": "array", "items": _ref("ReviewedAnswer")}, "more": BOOLEAN}}, params=ANSWER_FILTERS)},
        "/api/v1/answers/{id}": {"get": _operation("One answer in full", _ref("ReviewedAnswer"), params=[UUID_ID],
                                                   errors=("404",))},
        "/api/v1/answers/{id}/review": {"post": _operation("Approve, correct or reject", _ref("ReviewedAnswer"),
                                                           body=_ref("Review"), params=[UUID_ID], errors=("404",))},
        "/api/v1/golden-records": {
            "get": _operation("Every golden record", {"type": "object", "properties": {
                "golden_records": {"type": "array", "items": _ref("GoldenRecord")}}}),
            "post": _operation("Add one", _ref("GoldenRecord"), body=_ref("GoldenRecordInput"), status="201")},
        "/api/v1/golden-records/export": {"get": _operation("Export as JSONL (one JSON object a line) or CSV", STRING,
                                                            content="application/x-ndjson", also=EXPORT,
                                                            params=[_query("format", {"enum": ["jsonl", "csv"]})])},
        "/api/v1/golden-records/import": {"post": {**_operation("Import question/answer pairs from CSV", OBJECT,
                                                                errors=("413", "415")),
                                                   "requestBody": {"required": True, "content": {"text/csv": {"schema": {
                                                       "type": "string", "pattern": NO_NUL,
                                                       "description": "a header row naming question and answer"}}}}}},
        "/api/v1/golden-records/{id}": {
            "put": _operation("Edit one", _ref("GoldenRecord"), body=_ref("GoldenRecordInput"), params=[ID], errors=("404",)),
            "delete": _operation("Delete one", OBJECT, params=[ID], errors=("404",))},
        "/api/v1/history": {"get": _operation("Imported answered threads (candidate golden records)", {
            "type": "object", "properties": {"threads": {"type": "array", "items": _ref("PastThread")}, "more": BOOLEAN}},
            params=[_query("status", {"enum": ["candidate", "accepted", "rejected"]}),
                    _query("page", {"type": "integer", "minimum": 1, "maximum": 10_000})])},  # engine.api.http.MAX_PAGE
        "/api/v1/history/{id}/accept": {"post": _operation("Make a candidate a golden record", _ref("PastThread"),
                                                           params=[ID], errors=("404",))},
        "/api/v1/history/{id}/reject": {"post": _operation("Hide a candidate", _ref("PastThread"), params=[ID],
                                                           errors=("404",))},
        "/api/v1/overview": {"get": _operation("Figures for the last days", OBJECT,
                                               params=[_query("days", {"type": "integer", "minimum": 1, "maximum": 365})])},
        "/api/v1/finetunings": {
            "get": _operation("Tuning jobs", {"type": "object", "properties": {
                "finetunings": {"type": "array", "items": _ref("FineTuning")}}}),
            "post": _operation("Queue a tuning job", _ref("FineTuning"), body=_ref("FineTuningRequest"), status="201")},
        "/api/v1/finetunings/training-set": {"get": _operation("The training set in a provider's format", STRING,
                                                               content="application/x-ndjson", also=EXPORT, params=[
            _query("provider", {"enum": tunable}), _query("format", {"enum": ["jsonl", "csv"]}),
            _query("variant", {"enum": ["rag", "plain"]})])},
        "/api/v1/finetunings/{id}": {"get": _operation("One tuning job", _ref("FineTuning"), params=[UUID_ID], errors=("404",))},
        "/api/v1/finetunings/{id}/cancel": {"post": _operation("Cancel it", _ref("FineTuning"), params=[UUID_ID], errors=("404",))},
        "/api/v1/finetunings/{id}/evaluate": {"post": _operation("Compare it with the current model", OBJECT,
                                                                 params=[UUID_ID], errors=("404",))},
        "/api/v1/finetunings/{id}/activate": {"post": _operation("Make its model the engine's", _ref("Activation"),
                                                                 params=[UUID_ID], errors=("404",), optional_body=True, body={
            "type": "object", "properties": {"fallback": {**BOOLEAN, "description": "keep the model in force as fallback"},
                                             "by": BY}})},
        "/api/v1/finetunings/{id}/grant": {"post": _operation("Retry a failed grant of its tuned model", _ref("FineTuning"),
                                                              params=[UUID_ID], errors=("404",))},
        "/api/v1/activations": {"get": _operation("Activation history and the model answering now", OBJECT)},
        "/api/v1/activations/rollback": {"post": _operation("Undo the last activation (409: none is in force)",
                                                            _ref("Activation"), errors=("409",), optional_body=True,
                                                            body={"type": "object", "properties": {"by": BY}})},
    }
    if with_github:
        paths.update({
            "/github/webhook": {"post": {**_operation("GitHub webhook deliveries (signed)", OBJECT, status="202",
                                                      secured=False, errors=("400", "401", "413", "415")),
                                         "parameters": [{"name": h, "in": "header", "required": True, "schema": STRING}
                                                        for h in ("X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256")],
                                         "requestBody": {"required": True, **_json(OBJECT)}}},
            "/api/v1/github/jobs": {"get": _operation("Webhook jobs", OBJECT, params=[
                _query("status", {"enum": ["queued", "running", "done", "failed"]}),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 500})])},
            "/api/v1/github/jobs/{id}/retry": {"post": _operation("Retry a failed job", OBJECT, params=[ID], errors=("404",))},
            "/api/v1/github/replies": {"get": _operation("The App's replies", OBJECT, params=[
                _query("status", STRING), _query("limit", {"type": "integer", "minimum": 1, "maximum": 500})])},
            "/api/v1/github/replies/{id}/approve": {"post": _operation("Approve a draft", OBJECT, body={
                "type": "object", "properties": {"by": BY, "body": _text(MAX_ANSWER_CHARS, required=True)}}, params=[ID],
                errors=("404", "409"))},
            "/api/v1/github/repositories": {"get": _operation("Repositories the App is installed on", OBJECT)},
            "/api/v1/github/repositories/{id}": {"put": _operation("Switch replies on or off", OBJECT, body={
                "type": "object", "required": ["enabled"], "properties": {"enabled": BOOLEAN, "by": BY}},
                params=[ID], errors=("404",))},
        })
    return {
        "openapi": "3.1.0",
        "info": {"title": "firstreply engine API", "version": "1"},
        "components": {"schemas": {**SCHEMAS, "FineTuningRequest": _fine_tuning_request(list(kinds))},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "An API key, or a maintainer's token"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
