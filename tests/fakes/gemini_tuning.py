"""A loopback fake of Gemini's tuning REST API (v1beta) and of Google's OAuth token endpoint.

Bodies are read the way Google's front end reads them: as the proto3 JSON mapping of the
``google.ai.generativelanguage.v1beta`` messages (``TunedModel``, ``Permission``), parsed with
protobuf's own ``json_format`` against the descriptors that the ``google-ai-generativelanguage``
package ships. So an unknown field, a wrong type, an unknown enum value or two members of one
``oneof`` (``learningRate`` and ``learningRateMultiplier``) is a 400 ``INVALID_ARGUMENT`` with
Google's error shape (``google.rpc.Status`` with a ``BadRequest`` detail); both lowerCamelCase
and the proto's own snake_case names are accepted, as the mapping says. What the protos state
only in comments is checked too: a display name of at most 40 characters, a description of at
most 16,384, the required tuning task and examples, the ``tunedModelId`` pattern (an id that
exists is a 409 ``ALREADY_EXISTS``), an email address for USER and GROUP grantees.

- ``POST /token``: the JWT-bearer grant google-auth's service-account credentials make; the
  assertion's RS256 signature is checked with the service account's public key.
- ``POST /v1beta/tunedModels[?tunedModelId=]`` (bearer token required, never an API key):
  answers with a long-running operation.
- ``GET /v1beta/tunedModels/{id}/operations[/{op}]``: progress advances by ``step`` percent per
  look; a model scripted to fail ends with the operation's error.
- ``GET`` and ``DELETE /v1beta/tunedModels/{id}``, ``POST …/permissions``.

Answers are written as proto JSON (lowerCamelCase) from the same messages.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

import jwt
from aiohttp import web
from google.ai.generativelanguage_v1beta.types import Permission as PermissionMessage
from google.ai.generativelanguage_v1beta.types import TunedModel as TunedModelMessage
from google.protobuf import json_format

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # what google-auth puts in ``aud``, as Google expects
TUNED_MODEL_ID = re.compile(r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?")  # CreateTunedModelRequest.tuned_model_id
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class Refused(Exception):
    def __init__(self, status: int, message: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field_name = status, message, field_name


def google_error(status: int, message: str, field_name: str | None = None) -> web.Response:
    error = {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}
    if status == 400:
        violation = {"description": message, **({"field": field_name} if field_name else {})}
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}]
    return web.json_response({"error": error}, status=status)


def parse(message_class, body, what: str):
    """A request body as the proto message it must be (proto3 JSON mapping), or a 400."""
    if not isinstance(body, dict):
        raise Refused(400, f"Invalid JSON payload received. Expected an object for '{what}'.")
    message = message_class.pb()()
    try:
        json_format.ParseDict(body, message)
    except json_format.ParseError as error:
        raise Refused(400, f"Invalid JSON payload received. {error}", what) from None
    return message


@dataclass
class TunedModel:
    name: str
    body: dict  # the create request as proto JSON (lowerCamelCase), whichever names the client used
    operation: str = ""
    percent: float = 0.0
    fail_with: str | None = None
    deleted: bool = False
    permissions: list[dict] = field(default_factory=list)


@dataclass
class FakeGeminiTuning:
    public_key: bytes = b""  # the service account's, to check the token requests' assertions
    step: float = 50.0  # percent per look at the operation
    fail_next: str | None = None  # the next created model fails with this message
    create_errors: list[int] = field(default_factory=list)  # the next creations answer these statuses instead
    lose_next_create: bool = False  # create the next model, but answer 502 as a gateway that timed out would
    permission_errors: list[int] = field(default_factory=list)  # the next grants answer these statuses
    models: dict[str, TunedModel] = field(default_factory=dict)
    create_requests: int = 0  # creations the fake carried out
    tokens: set[str] = field(default_factory=set)
    refused_without_token: int = 0
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._refusals])
        app.router.add_post("/token", self.token)
        app.router.add_post("/v1beta/tunedModels", self.create)
        app.router.add_get("/v1beta/tunedModels/{id}/operations", self.operations)
        app.router.add_get("/v1beta/tunedModels/{id}/operations/{op}", self.operation)
        app.router.add_get("/v1beta/tunedModels/{id}", self.get)
        app.router.add_delete("/v1beta/tunedModels/{id}", self.delete)
        app.router.add_post("/v1beta/tunedModels/{id}/permissions", self.permit)
        return app

    @web.middleware
    async def _refusals(self, request: web.Request, handler):
        try:
            if request.path.startswith("/v1beta/"):
                self._authorise(request)
            return await handler(request)
        except Refused as refused:
            return google_error(refused.status, refused.message, refused.field_name)

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

    def _authorise(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            self.refused_without_token += 1
            raise Refused(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.")

    def _model(self, request: web.Request) -> TunedModel:
        model = self.models.get(f"tunedModels/{request.match_info['id']}")
        if model is None or model.deleted:
            raise Refused(404, f"Tuned model tunedModels/{request.match_info['id']} not found.")
        return model

    @staticmethod
    async def _body(request: web.Request):
        try:
            return await request.json()
        except ValueError:
            raise Refused(400, "Invalid JSON payload received.") from None

    async def create(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if self.create_errors:
            status = self.create_errors.pop(0)
            raise Refused(status, f"fake error {status}")
        unknown = set(request.query) - {"tunedModelId", "tuned_model_id", "alt", "$alt"}
        if unknown:
            raise Refused(400, f"Invalid JSON payload received. Unknown name \"{sorted(unknown)[0]}\": Cannot bind query parameter.")
        message = parse(TunedModelMessage, body, "tuned_model")
        if len(message.display_name) > 40:
            raise Refused(400, "The display name must be up to 40 characters including spaces.", "tuned_model.display_name")
        if len(message.description) > 16384:
            raise Refused(400, "The description must be up to 16384 characters.", "tuned_model.description")
        if not message.base_model.startswith("models/") and not message.HasField("tuned_model_source"):
            raise Refused(400, "tuned_model.base_model is required (models/...).", "tuned_model.base_model")
        examples = message.tuning_task.training_data.examples.examples
        if not message.HasField("tuning_task") or not examples:
            raise Refused(400, "tuned_model.tuning_task.training_data.examples is required.", "tuned_model.tuning_task")
        if any(not e.HasField("text_input") or not e.output for e in examples):
            raise Refused(400, "Each tuning example needs text_input and output.", "tuned_model.tuning_task.training_data")
        hyper = message.tuning_task.hyperparameters
        for name in ("epoch_count", "batch_size", "learning_rate", "learning_rate_multiplier"):
            if hyper.HasField(name) and getattr(hyper, name) <= 0:
                raise Refused(400, f"hyperparameters.{name} must be positive.", f"tuned_model.tuning_task.hyperparameters.{name}")
        wanted = request.query.get("tunedModelId") or request.query.get("tuned_model_id")
        if wanted is not None and not TUNED_MODEL_ID.fullmatch(wanted):
            raise Refused(400, f"tuned_model_id {wanted!r} must match [a-z]([a-z0-9-]{{0,38}}[a-z0-9])?", "tuned_model_id")
        if wanted is None:
            words = re.sub(r"[^a-z0-9]+", "-", message.display_name.lower()).strip("-") or "model"
            wanted = f"{words}-{secrets.token_hex(3)}"
        name = f"tunedModels/{wanted}"
        if name in self.models:
            raise Refused(409, f"Tuned model {name} already exists.")
        self.create_requests += 1
        model = TunedModel(name, json_format.MessageToDict(message), f"{name}/operations/op-{secrets.token_hex(3)}",
                           fail_with=self.fail_next)
        self.models[name] = model
        self.fail_next = None
        if self.lose_next_create:
            self.lose_next_create = False
            return web.json_response({"error": {"code": 502, "message": "Bad Gateway", "status": "UNKNOWN"}}, status=502)
        return web.json_response(self._operation(model))

    @staticmethod
    def _operation(model: TunedModel) -> dict:
        operation = {"name": model.operation,
                     "metadata": {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.CreateTunedModelMetadata",
                                  "tunedModel": model.name, "totalSteps": 40, "completedSteps": int(40 * model.percent / 100),
                                  "completedPercent": model.percent,
                                  "snapshots": [{"step": 1, "epoch": 1, "meanLoss": 1.9}] if model.percent else []}}
        if model.percent >= 100:
            operation["done"] = True
            if model.fail_with:
                operation["error"] = {"code": 3, "message": model.fail_with}
            else:
                operation["response"] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.TunedModel",
                                         "name": model.name, "state": "ACTIVE"}
        return operation

    async def operations(self, request: web.Request) -> web.Response:
        model = self._model(request)
        return web.json_response({"operations": [self._operation(model)]})

    async def operation(self, request: web.Request) -> web.Response:
        model = self._model(request)
        if f"{model.name}/operations/{request.match_info['op']}" != model.operation:
            raise Refused(404, "Operation not found.")
        model.percent = min(100.0, model.percent + self.step)
        return web.json_response(self._operation(model))

    async def get(self, request: web.Request) -> web.Response:
        model = self._model(request)
        state = "FAILED" if model.fail_with and model.percent >= 100 else "ACTIVE" if model.percent >= 100 else "CREATING"
        shown = {k: v for k, v in model.body.items() if k != "tuningTask"}
        task = {k: v for k, v in model.body["tuningTask"].items() if k != "trainingData"}  # training data is input only
        return web.json_response({**shown, "name": model.name, "state": state, "tuningTask": task})

    async def delete(self, request: web.Request) -> web.Response:
        self._model(request).deleted = True
        return web.json_response({})

    async def permit(self, request: web.Request) -> web.Response:
        model = self._model(request)
        body = await self._body(request)
        if self.permission_errors:
            status = self.permission_errors.pop(0)
            raise Refused(status, "The caller does not have permission" if status == 403 else f"fake error {status}")
        permission = parse(PermissionMessage, body, "permission")
        kind = PermissionMessage.GranteeType(permission.grantee_type).name
        if not permission.HasField("role") or permission.role == 0:
            raise Refused(400, "permission.role is required.", "permission.role")
        if not permission.HasField("grantee_type") or permission.grantee_type == 0:
            raise Refused(400, "permission.grantee_type is required.", "permission.grantee_type")
        if kind in ("USER", "GROUP") and "@" not in permission.email_address:
            raise Refused(400, f"An email address is required for grantee type {kind}.", "permission.email_address")
        if kind == "EVERYONE" and permission.HasField("email_address"):
            raise Refused(400, "No email address may be given for grantee type EVERYONE.", "permission.email_address")
        given = json_format.MessageToDict(permission)
        model.permissions.append(given)
        return web.json_response({**given, "name": f"{model.name}/permissions/p-{len(model.permissions)}"})
