"""Every key the engine's web application and its requests carry, in one place.

An app key names what the app holds (``request.app[ENGINE]``); a request key what one request
carries through the middlewares (``request[CALLER]``). A composition root that mounts its own
routes on the engine's app defines its own keys beside its routes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp
import jinja2
from aiohttp import web

from engine.api.ratelimit import TokenBuckets
from engine.metrics import Metrics

if TYPE_CHECKING:  # engine.api.sessions reads request headers through engine.api.http, which needs these keys
    from engine.api.auth import Caller, KnownKey
    from engine.api.sessions import Sessions, WebSession
    from engine.service import Engine
    from engine.tuning.runner import TuningRunner

# -- the app ----------------------------------------------------------------------------------------------------
ENGINE: web.AppKey[Engine] = web.AppKey("engine")  # the engine the routes answer with
METRICS = web.AppKey("metrics", Metrics)
LIMITS = web.AppKey("limits", TokenBuckets)  # per-caller rate limits
KEY_DIGESTS: web.AppKey[list[KnownKey]] = web.AppKey("key_digests")  # the configured API keys, hashed
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions")  # the pages' signed cookies
TEMPLATES = web.AppKey("templates", jinja2.Environment)
# The document /openapi.json serves (a root that mounts routes may replace it).
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
TUNING_RUNNER: web.AppKey[TuningRunner] = web.AppKey("tuning_runner")  # once started
TUNING_TASK: web.AppKey[tuple[asyncio.Task[None], aiohttp.ClientSession]] = web.AppKey("tuning_task")  # and session
GOLDEN_REPAIR: web.AppKey[asyncio.Task[None]] = web.AppKey("golden_repair")
OPEN_PATHS: web.AppKey[set[str]] = web.AppKey("open_paths")  # paths that need no credential (engine.api.auth.open_route)

# -- one request ------------------------------------------------------------------------------------------------
REQUEST_ID = web.RequestKey("request_id", str)
CALLER: web.RequestKey[Caller] = web.RequestKey("caller")
SESSION: web.RequestKey[WebSession] = web.RequestKey("session")
