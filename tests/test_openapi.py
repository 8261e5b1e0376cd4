"""/openapi.json stays true: it names exactly the routes the app serves, real responses match its
schemas, and schemathesis-generated requests from it (valid and invalid) get the answers it documents."""

from __future__ import annotations

import asyncio
import itertools

import aiohttp
import jsonschema
import pytest
from fakes.server import serve
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from tests_support import key_with_every_role

from engine.api.auth import PUBLIC_PREFIXES
from engine.api.openapi import document
from engine.api.pages import is_page
from firstreply.serve import build_app

KEY = "sk-openapi"


@pytest.fixture
async def api(make_engine, rsa_key, tmp_path):
    key_file = tmp_path / "app.pem"
    key_file.write_bytes(rsa_key.private_pem)
    engine = make_engine(api_keys=[key_with_every_role(KEY)], rate_limit_per_minute=100_000, github_app_id=1, github_webhook_secret="s",
                         github_app_slug="helper", github_private_key_file=key_file, github_api_url="http://127.0.0.1:9")
    app = build_app(engine)
    async with serve(app) as url:
        yield url, app, engine


def served_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical
        if route.method in ("HEAD", "*") or is_page(path) or path == "/static" or path.startswith(PUBLIC_PREFIXES):
            continue
        routes.add((route.method.lower(), path.replace(r"{id:\d+}", "{id}")))
    return routes


async def test_the_document_names_exactly_the_served_routes(api):
    url, app, _engine = api
    async with aiohttp.ClientSession() as session, session.get(f"{url}/openapi.json") as response:
        served_doc = await response.json()
    documented = {(method, path) for path, ops in served_doc["paths"].items() for method in ops}
    assert documented == served_routes(app)
    assert served_doc["openapi"] == "3.1.0"


def validator(name_or_schema) -> jsonschema.Draft202012Validator:
    doc = document()
    schema = {"$ref": f"#/components/schemas/{name_or_schema}"} if isinstance(name_or_schema, str) else name_or_schema
    return jsonschema.Draft202012Validator({**schema, "components": doc["components"]})


async def test_real_responses_match_the_documented_schemas(api):
    url, _app, engine = api
    headers = {"Authorization": f"Bearer {KEY}"}
    paths = document()["paths"]

    def schema_of(path: str, method: str, status: str) -> dict:
        return paths[path][method]["responses"][status]["content"]["application/json"]["schema"]

    async with aiohttp.ClientSession(headers=headers) as session:
        async def check(method: str, path: str, status: int, documented: str, **kwargs) -> dict:
            async with session.request(method, url + path.split("?")[0], **kwargs) as response:
                body = await response.json()
                assert response.status == status, body
            validator(schema_of(documented, method.lower(), str(status))).validate(body)
            return body

        answer = await check("POST", "/v1/answer", 200, "/v1/answer", json={"question": "How do I zoom the camera in?"})
        await check("GET", "/v1/search", 200, "/v1/search", params={"q": "zoom"})
        await check("POST", "/v1/feedback", 200, "/v1/feedback", json={"answer_id": answer["id"], "user_id": "u", "vote": "up"})
        await check("GET", "/v1/status", 200, "/v1/status")
        await check("GET", "/api/v1/answers", 200, "/api/v1/answers")
        await check("GET", f"/api/v1/answers/{answer['id']}", 200, "/api/v1/answers/{id}")
        await check("POST", f"/api/v1/answers/{answer['id']}/review", 200, "/api/v1/answers/{id}/review",
                    json={"verdict": "approved"})
        await check("GET", "/api/v1/golden-records", 200, "/api/v1/golden-records")
        await check("GET", "/api/v1/finetunings", 200, "/api/v1/finetunings")
        await check("POST", "/v1/answer", 400, "/v1/answer", json={"question": ""})
        await check("POST", "/api/v1/finetunings", 400, "/api/v1/finetunings", json={"alias": "x", "base_llm": {}})


def conformance_checks() -> tuple[list, dict[str, list]]:
    """The checks every generated request's response must pass, and the ones left out for one operation (why: beside)."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks

    every = [not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
             checks.response_schema_conformance, checks.negative_data_rejection, checks.positive_data_acceptance]
    excluded = {
        # A documented 503 (a dependency down) is this route's answer, not a fault.
        "GET /readyz": [not_a_server_error],
        # The body is CSV text; a schema can't say "a header row naming question and answer, then rows", so a
        # generated string is rarely a CSV the import can take.
        "POST /api/v1/golden-records/import": [checks.positive_data_acceptance],
    }
    return every, excluded


#: Valid requests that the server's state, not their shape, refuses (a 400 a schema can't foresee), by operation.
STATE_REFUSALS = {
    # A job needs enough golden records (20 for Gemini), and ids of records that exist.
    "POST /api/v1/finetunings": ("too few examples", "unknown golden records"),
}


def refused_for_state(label: str, failure, response) -> bool:
    from schemathesis.openapi.checks import RejectedPositiveData

    if not isinstance(failure, RejectedPositiveData) or response.status_code != 400:
        return False
    message = response.json()["error"]["message"]
    return message.startswith(STATE_REFUSALS.get(label, ()))


@pytest.mark.filterwarnings("ignore")
async def test_generated_requests_agree_with_the_document(api):
    """schemathesis draws requests from the document, valid and not, for every operation: none makes a 5xx, every
    response has a documented status, content type and body, valid requests are accepted and invalid ones refused.

    The key is given by the test, not drawn (auth has its own tests), so a request that differs from the document
    only by an unknown query parameter counts as valid: the server ignores those, as the document says."""
    import schemathesis

    url, _app, _engine = api
    schema = schemathesis.openapi.from_dict(document())
    schema.config.generation.update(with_security_parameters=False)
    rejection = schema.config.checks.negative_data_rejection  # a body over the limit is refused too (413)
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    every, excluded = conformance_checks()
    headers = {"Authorization": f"Bearer {KEY}"}
    failures: list[str] = []

    def fuzz_operation(operation, mode, leave_out) -> int:
        calls = 0

        @settings(max_examples=10, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(mode))
        def call(case) -> None:
            nonlocal calls
            response = case.call(base_url=url, headers=headers, timeout=60)
            calls += 1
            try:
                case.validate_response(response, checks=every, excluded_checks=leave_out, headers=headers)
            except BaseException as group:  # schemathesis raises a FailureGroup, a BaseExceptionGroup
                for failure in getattr(group, "exceptions", [group]):
                    if refused_for_state(operation.label, failure, response):
                        continue
                    failures.append(f"{operation.label} ({mode.value}) -> {response.status_code}: "
                                    f"{type(failure).__name__}: {str(getattr(failure, 'message', failure))[:300]}"
                                    f"\n    {case.method} {case.formatted_path} query={case.query} body={str(case.body)[:200]}")

        try:
            call()
        except Unsatisfiable:  # nothing to get wrong (e.g. GET /healthz has no input): no invalid requests
            assert mode == schemathesis.GenerationMode.NEGATIVE
        return calls

    def fuzz() -> int:
        calls = 0
        for result, mode in itertools.product(list(schema.get_all_operations()), schemathesis.GenerationMode):
            operation = result.ok()
            calls += fuzz_operation(operation, mode, excluded.get(operation.label, []))
        return calls

    calls = await asyncio.to_thread(fuzz)
    assert calls > 300 and failures == [], f"{len(failures)} disagreements:\n" + "\n".join(failures)


def test_the_documents_character_classes_are_pythons():
    """SPACE is what str.strip() removes, CONTROL what engine.tuning.request refuses in a name."""
    import re
    import sys
    import unicodedata

    from engine.api.openapi import CONTROL, SPACE

    every = [chr(i) for i in range(sys.maxunicode + 1)]
    space = re.compile(f"[{SPACE}]")
    assert [c for c in every if bool(space.fullmatch(c)) != c.isspace()] == []
    control = {chr(i) for a, b in CONTROL for i in range(a, b + 1)}
    assert {c for c in every if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")} == control


async def test_the_server_refuses_what_the_document_calls_invalid(api):
    """Each of these was answered otherwise before the document and the server were made to agree."""
    url, _app, _engine = api
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as session:
        async def status(method: str, path: str, **kwargs) -> tuple[int, str]:
            async with session.request(method, url + path, **kwargs) as response:
                return response.status, response.content_type

        question = {"question": "How do I zoom the camera in?"}
        assert await status("POST", "/v1/answer", json={**question, "stream": "yes"}) == (400, "application/json")
        assert await status("POST", "/api/gemini/generate", json={"query": "zoom", "stream": 1}) == (400, "application/json")
        assert await status("POST", "/api/gemini/generate", json={"query": "zoom", "llm": ["x"]}) == (400, "application/json")
        assert await status("POST", "/api/a%20b/generate", json={"query": "zoom"}) == (400, "application/json")
        assert await status("POST", "/api/gemini/generate", json={"query": "zoom", "knn": 3.0}) == (200, "application/json")
        assert await status("GET", "/api/v1/answers", params={"verdict": "aproved"}) == (400, "application/json")
        assert await status("GET", "/api/v1/answers", params={"page": "0"}) == (400, "application/json")
        assert await status("GET", "/v1/search", params={"q": "zoom", "kb": "test\n"}) == (400, "application/json")
        # 8,000 characters of 4 UTF-8 bytes: a 96 KB request line, which the document allows
        assert await status("GET", "/v1/search", params={"q": "𝑧" * 8000}) == (200, "application/json")
        assert await status("PUT", "/v1/channels/discord/²", json={"help_channel": True}) == (400, "application/json")
        assert await status("GET", "/v1/discord/threads/٣") == (400, "application/json")
        assert await status("PUT", "/api/v1/golden-records/²", json={"question": "q", "answer": "a"}) == (404, "application/json")
        assert await status("POST", "/api/v1/finetunings", json={
            "alias": "x", "base_llm": {"model_provider": "gemini", "model_name": "m"}, "golden_record": [1]}) == (400, "application/json")
        assert await status("POST", "/api/v1/finetunings", json={
            "alias": "x", "base_llm": {"model_provider": "gemini", "model_name": "m"}, "metadata": 0}) == (400, "application/json")
        assert await status("POST", "/api/v1/activations/rollback") == (409, "application/json")
        for csv_text in ("question,answer\rq\r", "question,answer\nq\x00,a\n"):  # a lone CR was a 500; a NUL can't be stored
            code, _kind = await status("POST", "/api/v1/golden-records/import", data=csv_text.encode(),
                                       headers={"Content-Type": "text/csv"})
            assert code in (200, 400), csv_text
        async with session.get(f"{url}/api/v1/golden-records/export", params={"format": "jsonl"}) as response:
            assert response.content_type == "application/x-ndjson"
