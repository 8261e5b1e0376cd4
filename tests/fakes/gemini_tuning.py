"""A loopback fake of Gemini's tuning REST API (v1beta) and of Google's OAuth token endpoint.

- ``POST /token``: the JWT-bearer grant google-auth's service-account credentials make; the
  assertion's RS256 signature is checked with the service account's public key, and an
  access token is issued.
- ``POST /v1beta/tunedModels`` (bearer token required, never an API key): checks the body's
  shape (display_name, base_model, tuning_task.hyperparameters, training_data.examples with
  text_input/output) and answers with a long-running operation.
- ``GET /v1beta/tunedModels/{id}/operations/{op}``: progress advances by ``step`` percent per
  poll; a model scripted to fail ends with the operation's error.
- ``GET /v1beta/tunedModels/{id}``, ``DELETE`` it, ``POST …/permissions``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import jwt
from aiohttp import web

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # what google-auth puts in ``aud``, as Google expects


@dataclass
class TunedModel:
    name: str
    body: dict
    percent: float = 0.0
    fail_with: str | None = None
    deleted: bool = False
    permissions: list[dict] = field(default_factory=list)


@dataclass
class FakeGeminiTuning:
    public_key: bytes = b""  # the service account's, to check the token requests' assertions
    step: float = 50.0  # percent per poll
    fail_next: str | None = None  # the next created model fails with this message
    models: dict[str, TunedModel] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    refused_without_token: int = 0
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self.token)
        app.router.add_post("/v1beta/tunedModels", self.create)
        app.router.add_get("/v1beta/tunedModels/{id}/operations/{op}", self.operation)
        app.router.add_get("/v1beta/tunedModels/{id}", self.get)
        app.router.add_delete("/v1beta/tunedModels/{id}", self.delete)
        app.router.add_post("/v1beta/tunedModels/{id}/permissions", self.permit)
        return app

    @staticmethod
    def error(status: int, message: str) -> web.Response:
        names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND"}
        return web.json_response({"error": {"code": status, "message": message, "status": names.get(status, "UNKNOWN")}},
                                 status=status)

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = jwt.decode(form.get("assertion", ""), self.public_key, algorithms=["RS256"],
                                audience=GOOGLE_TOKEN_AUDIENCE, options={"require": ["iss", "aud", "exp", "iat"]})
        except jwt.PyJWTError as error:
            return web.json_response({"error": "invalid_grant", "error_description": str(error)}, status=400)
        if "generative-language" not in claims.get("scope", ""):
            return web.json_response({"error": "invalid_scope"}, status=400)
        value = "ya29." + secrets.token_hex(8)
        self.tokens.add(value)
        return web.json_response({"access_token": value, "expires_in": 3599, "token_type": "Bearer"})

    def _authorised(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        ok = scheme == "Bearer" and token in self.tokens
        self.refused_without_token += not ok
        return ok

    def _model(self, request: web.Request) -> TunedModel | None:
        model = self.models.get(f"tunedModels/{request.match_info['id']}")
        return None if model is None or model.deleted else model

    async def create(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self.error(401, "Request had invalid authentication credentials.")
        body = await request.json()
        examples = (((body.get("tuning_task") or {}).get("training_data") or {}).get("examples") or {}).get("examples")
        if not body.get("base_model", "").startswith("models/") or not isinstance(examples, list) or not examples:
            return self.error(400, "base_model and tuning_task.training_data.examples are required")
        if any(set(e) != {"text_input", "output"} for e in examples):
            return self.error(400, "each example has text_input and output")
        name = f"tunedModels/{body.get('display_name', 'model').lower().replace(' ', '-')}-{secrets.token_hex(3)}"
        self.models[name] = TunedModel(name, body, fail_with=self.fail_next)
        self.fail_next = None
        return web.json_response({"name": f"{name}/operations/op-{secrets.token_hex(3)}",
                                  "metadata": {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.CreateTunedModelMetadata",
                                               "totalSteps": 40, "tunedModel": name}})

    async def operation(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self.error(401, "Request had invalid authentication credentials.")
        model = self._model(request)
        if model is None:
            return self.error(404, "operation not found")
        model.percent = min(100.0, model.percent + self.step)
        operation = {"name": f"{model.name}/operations/{request.match_info['op']}",
                     "metadata": {"totalSteps": 40, "completedSteps": int(40 * model.percent / 100),
                                  "completedPercent": model.percent, "tunedModel": model.name,
                                  "snapshots": [{"step": 1, "epoch": 1, "meanLoss": 1.9}]}}
        if model.percent >= 100:
            operation["done"] = True
            if model.fail_with:
                operation["error"] = {"code": 3, "message": model.fail_with}
            else:
                operation["response"] = {"name": model.name, "state": "ACTIVE"}
        return web.json_response(operation)

    async def get(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self.error(401, "Request had invalid authentication credentials.")
        model = self._model(request)
        if model is None:
            return self.error(404, "tuned model not found")
        state = "FAILED" if model.fail_with and model.percent >= 100 else "ACTIVE" if model.percent >= 100 else "CREATING"
        return web.json_response({"name": model.name, "state": state, "baseModel": model.body["base_model"]})

    async def delete(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self.error(401, "Request had invalid authentication credentials.")
        model = self._model(request)
        if model is None:
            return self.error(404, "tuned model not found")
        model.deleted = True
        return web.json_response({})

    async def permit(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self.error(401, "Request had invalid authentication credentials.")
        model = self._model(request)
        body = await request.json()
        if model is None:
            return self.error(404, "tuned model not found")
        if body.get("role") != "READER" or body.get("grantee_type") not in ("EVERYONE", "USER", "GROUP"):
            return self.error(400, "grantee_type and role are required")
        model.permissions.append(body)
        return web.json_response({"name": f"{model.name}/permissions/p-{len(model.permissions)}", **body})
