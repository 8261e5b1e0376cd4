"""The engine API's OpenAPI 3.1 document, served at ``/openapi.json``.

Written out by hand (the routes are plain aiohttp), and kept true by a test that compares it
with the routes the app registers and validates real responses against it.
"""

from __future__ import annotations

from functools import lru_cache

STRING, BOOLEAN, INTEGER, NUMBER = {"type": "string"}, {"type": "boolean"}, {"type": "integer"}, {"type": "number"}
OBJECT = {"type": "object"}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["status", "code", "message"],
        "properties": {"status": INTEGER, "code": STRING, "message": STRING}}}},
    "Question": {"type": "object", "required": ["question"], "properties": {
        "question": {"type": "string", "minLength": 1, "maxLength": 8000},
        "channel": {"enum": ["discord", "github", "api", "web"]},
        "conversation_id": {"type": "string", "maxLength": 200}, "user_id": {"type": "string", "maxLength": 200},
        "title": {"type": "string", "maxLength": 500}, "kb": {"type": "string", "pattern": "^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$"},
        "link": {"type": "string", "format": "uri", "maxLength": 500}, "stream": BOOLEAN}},
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
        "answer_id": {"type": "string", "maxLength": 64}, "user_id": {"type": "string", "maxLength": 200},
        "vote": {"enum": ["up", "down", 1, -1]}, "comment": {"type": "string", "maxLength": 2000}}},
    "DiscordThread": {"type": "object", "required": ["thread_id", "answered", "escalated"], "properties": {
        "thread_id": STRING, "answered": BOOLEAN, "escalated": BOOLEAN}},
    "ReviewedAnswer": {"type": "object", "required": ["id", "question", "text", "verdict", "votes"], "properties": {
        "id": STRING, "channel": STRING, "question": STRING, "text": STRING, "abstained": BOOLEAN,
        "verdict": {"enum": ["unreviewed", "approved", "corrected", "rejected"]}, "corrected_text": _nullable(STRING),
        "votes": {"type": "object", "properties": {"up": INTEGER, "down": INTEGER}}, "accepted": BOOLEAN,
        "link": _nullable(STRING)}},
    "Review": {"type": "object", "required": ["verdict"], "properties": {
        "verdict": {"enum": ["approved", "corrected", "rejected"]}, "text": STRING, "reason": STRING, "by": STRING}},
    "GoldenRecord": {"type": "object", "required": ["id", "question", "answer", "source"], "properties": {
        "id": INTEGER, "question": STRING, "answer": STRING, "source": STRING, "answer_id": _nullable(STRING)}},
    "GoldenRecordInput": {"type": "object", "required": ["question", "answer"], "properties": {
        "question": STRING, "answer": STRING, "by": STRING}},
    "FineTuning": {"type": "object", "required": ["id", "alias", "status", "base_llm", "created_at"], "properties": {
        "id": STRING, "alias": STRING,
        "status": {"enum": ["queued", "validating_files", "running", "succeeded", "failed", "cancelled"]},
        "error": _nullable(STRING), "base_llm": OBJECT, "finetuning_file_id": _nullable(STRING),
        "finetuning_job_id": _nullable(STRING), "model_id": _nullable(STRING), "created_at": STRING,
        "golden_records": _nullable({"type": "array", "items": INTEGER}), "metadata": OBJECT,
        "progress": _nullable(NUMBER), "provider_progress": _nullable(OBJECT),
        "permission": _nullable({"type": "object", "properties": {
            "grantee": STRING, "state": {"enum": ["pending", "granted", "failed"]}, "error": _nullable(STRING)}})}},
    "FineTuningRequest": {"type": "object", "required": ["alias", "base_llm"], "properties": {
        "alias": {"type": "string", "minLength": 1, "maxLength": 64,
                  "description": "Gemini's display name (at most 40 characters) or OpenAI's suffix (at most 64)"},
        "base_llm": {"type": "object", "required": ["model_provider", "model_name"], "properties": {
            "model_provider": {"enum": ["gemini", "openai"]}, "model_name": STRING,
            "model_parameters": {"type": "object", "additionalProperties": False, "properties": {
                "n_epochs": {"type": "integer", "minimum": 1}, "batch_size": {"type": "integer", "minimum": 1},
                "learning_rate_multiplier": {"type": "number", "exclusiveMinimum": 0},
                "epoch_count": {"type": "integer", "minimum": 1, "description": "Gemini's name for n_epochs"},
                "learning_rate": {"type": "number", "exclusiveMinimum": 0, "description": "Gemini only"}}}}},
        "golden_records": _nullable({"type": "array", "items": INTEGER}), "metadata": OBJECT}},
    "Activation": {"type": "object", "required": ["id", "model", "activated_by"], "properties": {
        "id": INTEGER, "model": STRING, "fallback": _nullable(STRING), "job_id": _nullable(STRING),
        "activated_by": STRING, "activated_at": STRING, "rolled_back_at": _nullable(STRING)}},
}

ERRORS = {"400": "bad request", "401": "no or unknown API key", "429": "rate limited"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(summary: str, ok: dict | None = None, *, body: dict | None = None, status: str = "200",
               params: list[dict] | None = None, errors: tuple[str, ...] = (), content: str = "application/json",
               secured: bool = True) -> dict:
    responses = {status: {"description": "OK", **({"content": {content: {"schema": ok}}} if ok is not None else {})}}
    for code in (*(("400", "401", "429") if secured else ()), *errors):
        responses[code] = {"description": ERRORS.get(code, "see the message"), **_json(_ref("Error"))}
    operation: dict = {"summary": summary, "responses": responses}
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
    if params:
        operation["parameters"] = params
    if not secured:
        operation["security"] = []
    return operation


def _query(name: str, schema: dict, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _path(name: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema or STRING}


ANSWER_FILTERS = [_query("channel", {"enum": ["discord", "github", "api", "web"]}),
                  _query("verdict", {"enum": ["unreviewed", "approved", "corrected", "rejected"]}),
                  _query("votes", {"enum": ["down", "up", "none"]}), _query("abstained", {"enum": ["yes", "no"]}),
                  _query("accepted", {"enum": ["yes", "no"]}), _query("q", STRING),
                  _query("order", {"enum": ["down", "newest"]}), _query("page", {"type": "integer", "minimum": 1})]
ID = _path("id", {"type": "string", "pattern": "^[0-9]{1,18}$"})
UUID_ID = _path("id")
THREAD = _path("thread", {"type": "string", "pattern": "^[0-9]{1,30}$"})


@lru_cache(maxsize=2)
def document(with_github: bool = True) -> dict:
    paths: dict[str, dict] = {
        "/healthz": {"get": _operation("The process is up", OBJECT, secured=False)},
        "/readyz": {"get": _operation("Database, vector store and model all answer", OBJECT, secured=False, errors=("503",))},
        "/metrics": {"get": _operation("Prometheus metrics", STRING, content="text/plain")},
        "/openapi.json": {"get": _operation("This document", OBJECT, secured=False)},
        "/v1/answer": {"post": _operation("Answer a question (server-sent events with \"stream\": true)", _ref("Answer"),
                                          body=_ref("Question"), errors=("413", "503"))},
        "/v1/search": {"get": _operation("Search the knowledge base", {"type": "object", "properties": {
            "query": STRING, "hits": {"type": "array", "items": _ref("Hit")}}}, params=[
            _query("q", {"type": "string", "minLength": 1, "maxLength": 8000}, True),
            _query("k", {"type": "integer", "minimum": 1, "maximum": 50}), _query("kb", STRING)])},
        "/v1/feedback": {"post": _operation("Vote on an answer", {"type": "object", "properties": {
            "ok": BOOLEAN, "created": BOOLEAN}}, body=_ref("Feedback"), errors=("404",))},
        "/v1/status": {"get": _operation("Index size, model, answers logged", OBJECT)},
        "/v1/channels/{platform}": {"get": _operation("Per-channel settings", OBJECT,
                                                      params=[_path("platform", {"enum": ["discord", "github"]})])},
        "/v1/channels/{platform}/{channel}": {"put": _operation("Change a channel's settings", OBJECT, body={
            "type": "object", "properties": {"help_channel": _nullable(BOOLEAN), "thread_mode": _nullable(BOOLEAN),
                                             "by": STRING}},
            params=[_path("platform", {"enum": ["discord", "github"]}), _path("channel", {"type": "string", "pattern": "^[0-9]{1,30}$"})])},
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
            "type": "object", "required": ["query"], "properties": {"query": STRING, "llm": STRING,
                                                                     "knn": {"type": "integer", "minimum": 1, "maximum": 50},
                                                                     "stream": BOOLEAN}},
            params=[_path("provider")])},
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
        "/api/v1/golden-records/export": {"get": _operation("Export as JSONL or CSV", STRING, content="text/plain",
                                                            params=[_query("format", {"enum": ["jsonl", "csv"]})])},
        "/api/v1/golden-records/import": {"post": {**_operation("Import question/answer pairs from CSV", OBJECT),
                                                   "requestBody": {"required": True, "content": {"text/csv": {"schema": STRING}}}}},
        "/api/v1/golden-records/{id}": {
            "put": _operation("Edit one", _ref("GoldenRecord"), body=_ref("GoldenRecordInput"), params=[ID], errors=("404",)),
            "delete": _operation("Delete one", OBJECT, params=[ID], errors=("404",))},
        "/api/v1/overview": {"get": _operation("Figures for the last days", OBJECT,
                                               params=[_query("days", {"type": "integer", "minimum": 1, "maximum": 365})])},
        "/api/v1/finetunings": {
            "get": _operation("Tuning jobs", {"type": "object", "properties": {
                "finetunings": {"type": "array", "items": _ref("FineTuning")}}}),
            "post": _operation("Queue a tuning job", _ref("FineTuning"), body=_ref("FineTuningRequest"), status="201")},
        "/api/v1/finetunings/training-set": {"get": _operation("The training set in a provider's format", STRING,
                                                               content="text/plain", params=[
            _query("provider", {"enum": ["gemini", "openai"]}), _query("format", {"enum": ["jsonl", "csv"]}),
            _query("variant", {"enum": ["rag", "plain"]})])},
        "/api/v1/finetunings/{id}": {"get": _operation("One tuning job", _ref("FineTuning"), params=[UUID_ID], errors=("404",))},
        "/api/v1/finetunings/{id}/cancel": {"post": _operation("Cancel it", _ref("FineTuning"), params=[UUID_ID], errors=("404",))},
        "/api/v1/finetunings/{id}/evaluate": {"post": _operation("Compare it with the current model", OBJECT,
                                                                 params=[UUID_ID], errors=("404",))},
        "/api/v1/finetunings/{id}/activate": {"post": _operation("Make its model the engine's", _ref("Activation"),
                                                                 params=[UUID_ID], errors=("404",))},
        "/api/v1/finetunings/{id}/grant": {"post": _operation("Retry a failed grant of its tuned model", _ref("FineTuning"),
                                                              params=[UUID_ID], errors=("404",))},
        "/api/v1/activations": {"get": _operation("Activation history and the model answering now", OBJECT)},
        "/api/v1/activations/rollback": {"post": _operation("Undo the last activation", _ref("Activation"))},
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
                "type": "object", "required": ["by"], "properties": {"by": STRING, "body": STRING}}, params=[ID],
                errors=("404",))},
            "/api/v1/github/repositories": {"get": _operation("Repositories the App is installed on", OBJECT)},
            "/api/v1/github/repositories/{id}": {"put": _operation("Switch replies on or off", OBJECT, body={
                "type": "object", "required": ["enabled"], "properties": {"enabled": BOOLEAN, "by": STRING}},
                params=[ID], errors=("404",))},
        })
    return {
        "openapi": "3.1.0",
        "info": {"title": "firstreply engine API", "version": "1"},
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "An API key, or a maintainer's token"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
