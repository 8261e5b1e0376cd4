"""Every key the engine's web application and its requests carry, in one place.

An app key names what the app holds (``request.app[ENGINE]``); a request key what one request
carries through the middlewares (``request[CALLER]``). A composition root that mounts its own
routes on the engine's app defines its own keys beside its routes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import jinja2
from aiohttp import web

from engine.api.ratelimit import TokenBuckets
from engine.metrics import Metrics

if TYPE_CHECKING:  # engine.api.sessions reads request headers through engine.api.http, which needs these keys
    from engine.api.sessions import Sessions, WebSession

# -- the app ----------------------------------------------------------------------------------------------------
ENGINE = web.AppKey("engine", object)  # the engine.Engine the routes answer with
METRICS = web.AppKey("metrics", Metrics)
LIMITS = web.AppKey("limits", TokenBuckets)  # per-caller rate limits
KEY_DIGESTS = web.AppKey("key_digests", list)  # the configured API keys, hashed
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions")  # the pages' signed cookies
TEMPLATES = web.AppKey("templates", jinja2.Environment)
OPENAPI = web.AppKey("openapi", dict)  # the document /openapi.json serves (a root that mounts routes may replace it)
TUNING_RUNNER = web.AppKey("tuning_runner", object)  # engine.tuning.runner.TuningRunner, once started
TUNING_TASK = web.AppKey("tuning_task", tuple)  # (its task, its aiohttp session)
GOLDEN_REPAIR = web.AppKey("golden_repair", asyncio.Task)
OPEN_PATHS = web.AppKey("open_paths", set)  # paths that need no credential (engine.api.auth.open_route)

# -- one request ------------------------------------------------------------------------------------------------
REQUEST_ID = web.RequestKey("request_id", str)
CALLER = web.RequestKey("caller", object)  # engine.api.auth.Caller
SESSION: web.RequestKey[WebSession] = web.RequestKey("session")
