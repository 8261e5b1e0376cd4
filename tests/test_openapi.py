"""/openapi.json stays true: it names exactly the routes the app serves, real responses match its
schemas, and schemathesis-generated requests from it (valid and invalid) never make a 5xx."""

from __future__ import annotations

import asyncio
import itertools

import aiohttp
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from engine.api.app import build_app
from engine.api.openapi import document
from engine.api.auth import PUBLIC_PREFIXES
from engine.api.pages import is_page
from tests_support import key_with_every_role
from fakes.server import serve

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


@pytest.mark.filterwarnings("ignore")
async def test_generated_requests_never_make_a_server_error(api):
    """schemathesis draws requests from the document, valid and not, for every operation."""
    import schemathesis

    url, _app, _engine = api
    schema = schemathesis.openapi.from_dict(document())
    failures: list[str] = []

    def fuzz() -> int:
        calls = 0
        for result, mode in itertools.product(list(schema.get_all_operations()), schemathesis.GenerationMode):
            operation = result.ok()

            @settings(max_examples=10, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(mode))
            def call(case) -> None:
                nonlocal calls
                response = case.call(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
                calls += 1
                if response.status_code >= 500 and not (operation.path == "/readyz" and response.status_code == 503):
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

            try:
                call()
            except Unsatisfiable:  # nothing to get wrong (e.g. GET /healthz has no input): no invalid requests
                assert mode == schemathesis.GenerationMode.NEGATIVE
        return calls

    calls = await asyncio.to_thread(fuzz)
    assert calls > 300 and failures == [], "\n".join(failures)
