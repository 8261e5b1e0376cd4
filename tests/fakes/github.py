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
  ``repository.discussions`` and a discussion's ``comments`` are connections as GitHub's: ``first``/``last``
  required and at most 100, opaque keyset cursors (``after``/``before``), ``pageInfo``, ``orderBy``; a
  discussion's ``updatedAt`` moves when it is edited, commented on or answered. ``rateLimit`` reports
  the GraphQL points left, and a query over them is refused as GitHub refuses it.

Faults can be injected into queries (``query_faults``: e.g. a 403 with ``Retry-After``) and into the ``addDiscussionComment`` mutation (a 502 before or after the
comment is created, a secondary rate limit with or without ``Retry-After``), and a request can be held forever (so a test
can kill the App while it waits).
"""

from __future__ import annotations

import asyncio
import base64
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


def _connection(name: str, items: list, key, *, first=None, last=None, after=None, before=None, **_filters) -> dict:
    """One page of a GitHub connection over ``items`` (already in order), keyset cursors on ``key(item)``."""
    if first is None and last is None:
        raise ValueError(f"You must provide a `first` or `last` value to properly paginate the `{name}` connection.")
    for value, arg in ((first, "first"), (last, "last")):
        if value is not None and not 0 <= value <= 100:
            raise ValueError(f"Requesting {value} records on the `{name}` connection exceeds the `{arg}` limit of 100 records.")
    keys = [key(item) for item in items]

    def position(cursor: str, arg: str) -> int:
        try:
            decoded = json.loads(base64.b64decode(cursor.encode(), validate=True).decode().removeprefix("cursor:v2:"))
        except (ValueError, UnicodeDecodeError):
            raise ValueError(f"`{arg}` does not appear to be a valid cursor.") from None
        # keyset: the first item after the cursor's key (items may have moved since the cursor was made)
        return next((i for i, k in enumerate(keys) if k > decoded), len(keys)), decoded

    start, end = 0, len(items)
    if after is not None:
        start = position(after, "after")[0]
    if before is not None:
        _, decoded = position(before, "before")
        end = next((i for i, k in enumerate(keys) if k >= decoded), len(keys))
    window = list(range(start, max(start, end)))
    if first is not None:
        has_next, window = len(window) > first, window[:first]
    else:
        has_next = end < len(items)
    has_previous = start > 0
    if last is not None:
        has_previous, window = len(window) > last or start > 0, window[-last:] if last else []
    cursor = lambda i: base64.b64encode(("cursor:v2:" + json.dumps(keys[i])).encode()).decode()  # noqa: E731
    return {"nodes": [items[i] for i in window], "edges": [{"node": items[i], "cursor": cursor(i)} for i in window],
            "totalCount": len(items),
            "pageInfo": {"hasNextPage": has_next, "hasPreviousPage": has_previous,
                         "startCursor": cursor(window[0]) if window else None,
                         "endCursor": cursor(window[-1]) if window else None}}


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
        self.query_faults: list[Fault] = []
        self.repositories: set[str] = set()  # owner/name, lower-case: those given a discussion or an installation
        self.rate_limit = {"limit": 5000, "remaining": 5000, "used": 0, "reset_in": 3600}  # GraphQL points
        self._clock = 0  # seconds after 2026-01-01: each change to a discussion moves its updatedAt
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

    def _now(self) -> str:
        self._clock += 1
        return (datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=self._clock)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def touch(self, discussion_id: str) -> None:
        """The discussion changed (edited, commented on, answered): its ``updatedAt`` moves, as on GitHub."""
        self.discussions[discussion_id]["updatedAt"] = self._now()

    def edit_discussion(self, discussion_id: str, **fields) -> None:
        self.discussions[discussion_id].update(fields)
        self.touch(discussion_id)

    def mark_answer(self, comment_id: str) -> None:
        """The author (or a maintainer) marks a top-level comment as the answer."""
        comment = self.comments[comment_id]
        if comment["replyTo"] is not None:
            raise ValueError("only a top-level comment can be the answer")
        comment["discussion"]["answer"] = comment
        comment["discussion"]["answerChosenAt"] = self._now()
        self.touch(comment["discussion"]["id"])

    def add_discussion(self, repository: str, number: int, node_id: str, *, title: str, body: str,
                       category: tuple[str, str] = ("q-a", "Q&A"), author: str = "octocat", author_type: str = "User",
                       locked: bool = False) -> dict:
        now = self._now()
        discussion = {
            "__typename": "Discussion", "id": node_id, "number": number, "title": title, "body": body,
            "url": f"https://github.com/{repository}/discussions/{number}", "locked": locked,
            "category": {"slug": category[0], "name": category[1]}, "createdAt": now, "updatedAt": now,
            "author": {"__typename": author_type, "login": author}, "_comments": [], "answer": None,
            "answerChosenAt": None, "_repository": repository,
        }
        discussion["isAnswered"] = lambda _info, **_kw: discussion["answer"] is not None
        discussion["comments"] = lambda _info, **kw: _connection("comments", list(discussion["_comments"]),
                                                                 lambda c: c["_seq"], **kw)
        self.discussions[node_id] = discussion
        self.by_number[(repository, number)] = node_id
        self.repositories.add(repository.lower())
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
        self.repositories.update(r.lower() for r in repositories or [])
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
                    reply_to: str | None = None, node_id: str | None = None, association: str = "NONE") -> dict:
        """A comment (or, with ``reply_to``, a reply); ``association`` is GitHub's ``authorAssociation`` of its
        author with the repository (``OWNER``, ``MEMBER``, ``COLLABORATOR``, ``CONTRIBUTOR``, ``NONE``, …)."""
        discussion = self.discussions[discussion_id]
        self._ids += 1
        comment = {"__typename": "DiscussionComment", "id": node_id or f"DC_{self._ids:06d}", "body": body,
                   "author": {"__typename": author_type, "login": author}, "discussion": discussion, "_replies": [],
                   "replyTo": self.comments[reply_to] if reply_to else None, "authorAssociation": association,
                   "_seq": self._ids}
        comment["url"] = f"{discussion['url']}#discussioncomment-{comment['id']}"
        comment["replies"] = lambda _info, **kw: _connection("replies", list(comment["_replies"]), lambda c: c["_seq"], **kw)
        self.comments[comment["id"]] = comment
        (self.comments[reply_to]["_replies"] if reply_to else discussion["_comments"]).append(comment)
        self.touch(discussion_id)
        return comment

    def add_token(self, token: str) -> None:
        """A personal access token GitHub accepts (not tied to an installation)."""
        self.tokens[token] = 0

    def bot_comments(self) -> list[dict]:
        return [c for c in self.comments.values() if c["author"]["login"] == self.slug]

    # -- GraphQL resolvers (graphql-core's default resolver calls these with info and the arguments) --

    def repository(self, _info, owner: str, name: str, **_kw):
        full = f"{owner}/{name}"
        if full.lower() not in self.repositories:
            raise NotFound(f"Could not resolve to a Repository with the name '{full}'.")

        def discussion(_info, number: int):
            found = self.discussions.get(self.by_number.get((full, number), ""))
            if found is None:
                raise NotFound(f"Could not resolve to a Discussion with the number of {number}.")
            return found

        def discussions(_info, orderBy: dict | None = None, answered: bool | None = None, categoryId=None,
                        states=None, **page):
            order = orderBy or {"field": "UPDATED_AT", "direction": "DESC"}
            field = "updatedAt" if order["field"] == "UPDATED_AT" else "createdAt"
            found = [d for d in self.discussions.values() if d["_repository"] == full
                     and (answered is None or (d["answer"] is not None) == answered)]
            found.sort(key=lambda d: (d[field], d["id"]), reverse=order["direction"] == "DESC")
            if order["direction"] == "DESC":  # cursors are positions here (nothing here reads this order page by page)
                rank = {d["id"]: i for i, d in enumerate(found)}
                return _connection("discussions", found, lambda d: rank[d["id"]], **page)
            return _connection("discussions", found, lambda d: [d[field], d["id"]], **page)

        return {"discussion": discussion, "discussions": discussions}

    def rateLimit(self, _info, dryRun: bool = False):  # noqa: N802,N803 - the schema's names
        reset = (datetime.now(timezone.utc) + timedelta(seconds=self.rate_limit["reset_in"])).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"cost": 1, "limit": self.rate_limit["limit"], "remaining": self.rate_limit["remaining"],
                "used": self.rate_limit["used"], "resetAt": reset, "nodeCount": 0}

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
        if not is_mutation and self.query_faults:
            fault = self.query_faults.pop(0)
            return self._error(fault.status, fault.message, fault.headers)
        if self.rate_limit["remaining"] <= 0:  # GitHub: 200, an error of type RATE_LIMITED
            return web.json_response({"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]},
                                     headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Resource": "graphql"})
        self.rate_limit["remaining"] -= 1
        self.rate_limit["used"] += 1
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
