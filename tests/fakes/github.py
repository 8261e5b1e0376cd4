"""A loopback fake of the GitHub API parts the App uses, strict where GitHub is strict.

- ``POST /app/installations/{id}/access_tokens``: checks the RS256 JWT (signature with the
  App's public key, ``iss`` = App id, lifetime at most 10 minutes) and issues a token; 404 for
  an installation that doesn't exist (``add_installation`` makes one).
- ``GET /app/installations/{id}`` and ``GET /repos/{owner}/{repo}/installation`` (JWT): the
  installation, or 404, as GitHub answers them.
- ``POST /graphql``: checks the token, validates every document against GitHub's published
  schema (``../shared/fixtures/github/graphql/schema.graphql``) with graphql-core, refuses
  string literals in documents (values must travel as variables), and executes it with
  graphql-core against in-memory discussions, so results have exactly the schema's shape.

Faults can be injected into the ``addDiscussionComment`` mutation (a 502 before or after the
comment is created, a secondary rate limit with or without ``Retry-After``), and a request can be held forever (so a test
can kill the App while it waits).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import jwt
from aiohttp import web
from graphql import GraphQLSchema, StringValueNode, build_schema, execute, parse, validate, visit
from graphql.language import Visitor

SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "github" / "graphql" / "schema.graphql"


@lru_cache(maxsize=1)
def github_schema() -> GraphQLSchema:
    # GitHub's schema trips two newer SDL rules (a field declared twice on EnterpriseOwnerInfo,
    # deprecated implementations of non-deprecated interface fields); GitHub serves it as is,
    # so the fake accepts it as is: build without SDL validation and mark it validated.
    schema = build_schema(SCHEMA.read_text(), assume_valid_sdl=True)
    schema._validation_errors = []  # type: ignore[attr-defined]
    return schema


class _StringLiterals(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def enter_string_value(self, node: StringValueNode, *_args):
        self.found.append(node.value)


class NotFound(Exception):
    """What GitHub answers for a node that doesn't exist (deleted): ``data`` null there, and an error of type
    ``NOT_FOUND`` ("Could not resolve to a Discussion with the number of 7.")."""


@dataclass
class Fault:
    status: int
    headers: dict = field(default_factory=dict)
    after_commit: bool = False  # the comment is created, then the error is returned (GitHub timing out late)
    message: str = "Server Error"


#: What GitHub answers when a secondary rate limit is hit: 403, this message, requests still left in the
#: primary limit, and no Retry-After (GitHub's docs: wait at least a minute, then back off exponentially).
SECONDARY_LIMIT_MESSAGE = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
                           "If you reach out to GitHub Support for help, please include the request ID ABCD:1234.")


def secondary_limit() -> Fault:
    return Fault(403, {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4987", "X-RateLimit-Used": "13",
                       "X-RateLimit-Resource": "graphql"}, message=SECONDARY_LIMIT_MESSAGE)


class FakeGitHub:
    def __init__(self, app_id: int, public_key_pem: bytes, slug: str) -> None:
        self.app_id, self.public_key, self.slug = app_id, public_key_pem, slug
        self.tokens: dict[str, int] = {}  # token -> installation id
        self.token_lifetime = timedelta(hours=1)  # GitHub's
        self.exchanges = 0
        self.discussions: dict[str, dict] = {}  # node id -> discussion
        self.by_number: dict[tuple[str, int], str] = {}  # (owner/name, number) -> node id
        self.comments: dict[str, dict] = {}  # node id -> comment
        self.documents: list[tuple[str, dict]] = []  # every (query, variables) received
        self.mutation_faults: list[Fault] = []
        self.hold: str | None = None  # "query" or "mutation": never answer such a request
        self.holding = asyncio.Event()  # set once a request is being held
        self.released = asyncio.Event()  # set to let held requests end (so the server can shut down)
        self._ids = 0
        self.url = ""
        self.installations: dict[int, dict] = {}  # id -> GitHub's installation object, plus "_repositories"
        self.rest_calls: list[str] = []  # every App-authenticated REST call, as "GET /path"

    # -- state -----------------------------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}_{self._ids:06d}"

    def add_discussion(self, repository: str, number: int, node_id: str, *, title: str, body: str,
                       category: tuple[str, str] = ("q-a", "Q&A"), author: str = "octocat", author_type: str = "User",
                       locked: bool = False) -> dict:
        discussion = {
            "__typename": "Discussion", "id": node_id, "number": number, "title": title, "body": body,
            "url": f"https://github.com/{repository}/discussions/{number}", "locked": locked,
            "category": {"slug": category[0], "name": category[1]},
            "author": {"__typename": author_type, "login": author}, "_comments": [],
        }
        discussion["comments"] = lambda _info, **_kw: {"nodes": list(discussion["_comments"])}
        self.discussions[node_id] = discussion
        self.by_number[(repository, number)] = node_id
        return discussion

    def add_installation(self, installation_id: int, account: str, repositories: list[str] | None = None) -> dict:
        """The App installed on ``account``: on the named repositories ("selected"), or on all of them (None)."""
        installation = {
            "id": installation_id, "account": {"login": account, "id": installation_id + 1000, "type": "Organization"},
            "app_id": self.app_id, "app_slug": self.slug, "target_type": "Organization",
            "repository_selection": "all" if repositories is None else "selected",
            "permissions": {"discussions": "write", "metadata": "read"}, "events": ["discussion", "discussion_comment"],
            "suspended_at": None, "_repositories": repositories,
        }
        self.installations[installation_id] = installation
        return installation

    def _covers(self, installation: dict, full_name: str) -> bool:
        owner = full_name.split("/", 1)[0]
        if installation["_repositories"] is None:
            return owner.lower() == installation["account"]["login"].lower()
        return full_name.lower() in {r.lower() for r in installation["_repositories"]}

    def add_discussion_from_payload(self, payload: dict) -> dict:
        """The discussion a ``discussion`` webhook payload describes, as GraphQL would return it."""
        d = payload["discussion"]
        user = d.get("user") or {}
        return self.add_discussion(payload["repository"]["full_name"], d["number"], d["node_id"], title=d["title"],
                                   body=d.get("body") or "", category=(d["category"]["slug"], d["category"]["name"]),
                                   author=user.get("login", "ghost"), author_type=user.get("type", "User"),
                                   locked=bool(d.get("locked")))

    def add_comment(self, discussion_id: str, body: str, *, author: str = "octocat", author_type: str = "User",
                    reply_to: str | None = None, node_id: str | None = None) -> dict:
        discussion = self.discussions[discussion_id]
        comment = {"__typename": "DiscussionComment", "id": node_id or self._next_id("DC"), "body": body,
                   "author": {"__typename": author_type, "login": author}, "discussion": discussion, "_replies": [],
                   "replyTo": self.comments[reply_to] if reply_to else None}
        comment["url"] = f"{discussion['url']}#discussioncomment-{comment['id']}"
        comment["replies"] = lambda _info, **_kw: {"nodes": list(comment["_replies"])}
        self.comments[comment["id"]] = comment
        (self.comments[reply_to]["_replies"] if reply_to else discussion["_comments"]).append(comment)
        return comment

    def bot_comments(self) -> list[dict]:
        return [c for c in self.comments.values() if c["author"]["login"] == self.slug]

    # -- GraphQL resolvers (graphql-core's default resolver calls these with info and the arguments) --

    def repository(self, _info, owner: str, name: str, **_kw):
        full = f"{owner}/{name}"

        def discussion(_info, number: int):
            found = self.discussions.get(self.by_number.get((full, number), ""))
            if found is None:
                raise NotFound(f"Could not resolve to a Discussion with the number of {number}.")
            return found

        return {"discussion": discussion}

    def node(self, _info, id: str):  # noqa: A002 - the schema's argument name
        found = self.discussions.get(id) or self.comments.get(id)
        if found is None:
            raise NotFound(f"Could not resolve to a node with the global id of '{id}'")
        return found

    def delete_discussion(self, node_id: str) -> None:
        discussion = self.discussions.pop(node_id)
        self.by_number = {k: v for k, v in self.by_number.items() if v != node_id}
        for comment in discussion["_comments"]:
            self.comments.pop(comment["id"], None)

    def addDiscussionComment(self, _info, input: dict):  # noqa: N802,A002 - the schema's names
        discussion = self.discussions.get(input["discussionId"])
        if discussion is None:
            raise NotFound(f"Could not resolve to a node with the global id of '{input['discussionId']}'")
        if discussion["locked"]:
            raise ValueError("Discussion is locked")
        reply_to = input.get("replyToId")
        if reply_to is not None:
            parent = self.comments.get(reply_to)
            if parent is None or parent["discussion"] is not discussion:
                raise ValueError("replyToId must be a comment in this discussion")
            if parent["replyTo"] is not None:
                raise ValueError("Replies can only be made to top-level comments")
        comment = self.add_comment(discussion["id"], input["body"], author=self.slug, author_type="Bot", reply_to=reply_to)
        return {"comment": comment}

    # -- HTTP -------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/app/installations/{id}/access_tokens", self._token)
        app.router.add_get("/app/installations/{id}", self._installation)
        app.router.add_get("/repos/{owner}/{repo}/installation", self._repository_installation)
        app.router.add_post("/graphql", self._graphql)
        return app

    @staticmethod
    def _error(status: int, message: str, headers: dict | None = None) -> web.Response:
        return web.json_response({"message": message, "documentation_url": "https://docs.github.com/rest"},
                                 status=status, headers=headers)

    @staticmethod
    def _public(installation: dict) -> dict:
        return {k: v for k, v in installation.items() if not k.startswith("_")}

    async def _installation(self, request: web.Request) -> web.Response:
        if (refused := self._check_jwt(request)) is not None:
            return refused
        self.rest_calls.append(f"GET {request.path}")
        installation = self.installations.get(int(request.match_info["id"])) if request.match_info["id"].isdigit() else None
        if installation is None:
            return self._error(404, "Not Found")
        return web.json_response(self._public(installation))

    async def _repository_installation(self, request: web.Request) -> web.Response:
        if (refused := self._check_jwt(request)) is not None:
            return refused
        self.rest_calls.append(f"GET {request.path}")
        full_name = f"{request.match_info['owner']}/{request.match_info['repo']}"
        for installation in self.installations.values():
            if self._covers(installation, full_name):
                return web.json_response(self._public(installation))
        return self._error(404, "Not Found")

    def _check_jwt(self, request: web.Request) -> web.Response | None:
        """GitHub's checks of an App JWT: RS256 with the App's key, ``iss`` the App id, at most 10 minutes."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return self._error(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]},
                                leeway=60)
        except jwt.PyJWTError as error:
            return self._error(401, f"A JSON web token could not be decoded: {error}")
        if str(claims["iss"]) != str(self.app_id):
            return self._error(401, "'Issuer' claim ('iss') must be the App's id")
        if claims["exp"] - claims["iat"] > 660 or claims["iat"] > time.time() + 60:
            return self._error(401, "'Expiration time' claim ('exp') is too far in the future")
        return None

    async def _token(self, request: web.Request) -> web.Response:
        if (refused := self._check_jwt(request)) is not None:
            return refused
        if int(request.match_info["id"]) not in self.installations:
            return self._error(404, "Not Found")
        self.exchanges += 1
        value = "ghs_" + secrets.token_hex(18)
        self.tokens[value] = int(request.match_info["id"])
        expires = (datetime.now(timezone.utc) + self.token_lifetime).strftime("%Y-%m-%dT%H:%M:%SZ")
        return web.json_response({"token": value, "expires_at": expires, "permissions": {"discussions": "write"}},
                                 status=201)

    async def _graphql(self, request: web.Request) -> web.Response:
        _scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if token not in self.tokens:
            return self._error(401, "Bad credentials")
        body = await request.json()
        query, variables = body.get("query", ""), body.get("variables") or {}
        self.documents.append((query, variables))
        try:
            document = parse(query)
        except Exception as error:  # a syntax error: GitHub answers 200 with errors
            return web.json_response({"errors": [{"message": str(error)}]})
        errors = [{"message": e.message} for e in validate(github_schema(), document)]
        literals = _StringLiterals()
        visit(document, literals)
        if literals.found:
            errors.append({"message": f"string literals in the document (use variables): {literals.found}"})
        if errors:
            return web.json_response({"errors": errors})
        is_mutation = query.lstrip().startswith("mutation")
        if self.hold == ("mutation" if is_mutation else "query"):
            if is_mutation:  # GitHub created the comment; the App never hears back
                execute(github_schema(), document, root_value=self, variable_values=variables)
            self.holding.set()
            await self.released.wait()
            return self._error(502, "Server Error")
        fault = self.mutation_faults.pop(0) if is_mutation and self.mutation_faults else None
        if fault is not None and not fault.after_commit:
            return self._error(fault.status, fault.message, fault.headers)
        result = execute(github_schema(), document, root_value=self, variable_values=variables)
        if fault is not None:
            return self._error(fault.status, fault.message, fault.headers)
        payload: dict = {"data": result.data}
        if result.errors:
            payload["errors"] = [{"type": "NOT_FOUND" if isinstance(e.original_error, NotFound) else "UNPROCESSABLE",
                                  "path": e.path, "locations": [{"line": l.line, "column": l.column} for l in e.locations or []],
                                  "message": e.message} for e in result.errors]
        return web.Response(text=json.dumps(payload), content_type="application/json")
