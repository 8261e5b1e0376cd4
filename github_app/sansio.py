"""The App's protocol decisions as plain functions over plain data (gidgethub's sans-I/O style).

Checking a delivery, choosing what a delivery asks of us, deciding whether a discussion gets
an answer, and writing the reply: nothing here does I/O, so all of it is tested directly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from gidgethub.sansio import Event

from engine.answer.model import Answer
from github_app.config import ReplyPolicy

MAX_COMMENT_CHARS = 65_536  # GitHub refuses longer comment bodies
MAX_QUESTION_CHARS = 8000  # what the engine accepts


class Rejected(Exception):
    """A delivery we refuse: ``status`` is the HTTP status to answer with, ``reason`` says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def verify_signature(body: bytes, signature: str, secret: str) -> None:
    """Check ``X-Hub-Signature-256`` (``sha256=`` and the HMAC-SHA256 of the raw body, lower-case hex) in
    constant time; raise :class:`Rejected` (401) otherwise.

    Only ``sha256=`` is accepted: gidgethub's ``validate_event`` also takes ``sha1=``, which
    GitHub sends only in the old ``X-Hub-Signature`` header. Any odd value (non-ASCII, the wrong
    length) is a 401 like any other mismatch, never an error.
    """
    scheme, _, digest = signature.partition("=")
    if scheme != "sha256" or not _SHA256_HEX.fullmatch(digest):
        raise Rejected(401, "X-Hub-Signature-256 must be sha256= and the HMAC-SHA256 of the body")
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(digest.encode("ascii"), expected.encode("ascii")):
        raise Rejected(401, "the signature does not match the webhook secret")


def parse_delivery(headers, body: bytes, secret: str) -> Event:
    """Verify ``X-Hub-Signature-256`` over the raw body, then decode it; raise :class:`Rejected` otherwise.

    ``headers`` is any mapping with case-insensitive (or lower-case) keys.
    """
    signature = headers.get("x-hub-signature-256")
    if not signature:
        raise Rejected(401, "missing X-Hub-Signature-256")
    verify_signature(body, signature, secret)
    for name in ("X-GitHub-Event", "X-GitHub-Delivery"):
        if not headers.get(name.lower()):
            raise Rejected(400, f"missing {name} header")
    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise Rejected(415, "set the webhook's content type to application/json")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Rejected(400, "the payload must be a JSON object")
    return Event(data, event=headers["x-github-event"], delivery_id=headers["x-github-delivery"])


#: Event names a metric may carry (what the App subscribes to, and what every App gets); any other is "other".
KNOWN_EVENTS = frozenset({"ping", "discussion", "discussion_comment", "installation", "installation_repositories",
                          "installation_target", "github_app_authorization", "meta"})


def event_label(event: str | None) -> str:
    """The ``event`` label for a delivery's metrics: a known event name, or ``other`` (never the raw header)."""
    return event if event in KNOWN_EVENTS else "other"


# -- what a delivery asks of us -------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    kind: str | None  # the job to queue, or None to acknowledge and do nothing
    reason: str


def is_own(login: str | None, slug: str) -> bool:
    """Whether a login is this App's bot (``slug[bot]`` in webhooks and REST, ``slug`` in GraphQL)."""
    return bool(login) and login.lower() in {slug, f"{slug}[bot]"}


def is_bot(user: dict | None) -> bool:
    user = user if isinstance(user, dict) else {}
    return user.get("type") == "Bot" or user.get("__typename") == "Bot" or str(user.get("login", "")).endswith("[bot]")


def _object(value) -> dict:
    return value if isinstance(value, dict) else {}


def route(event: str, payload: dict, slug: str) -> Route:
    """Decide from the delivery alone what work it asks for (the worker decides the rest with fresh data)."""
    action = payload.get("action")
    if event == "ping":
        return Route(None, "pong")
    if event == "discussion":
        if action == "created":
            return Route("discussion_created", "a new discussion")
        if action == "answered":
            return Route("discussion_answered", "an answer was chosen")
        return Route(None, f"discussion {action}: nothing to do (edits never trigger a second answer)")
    if event == "discussion_comment":
        comment = _object(payload.get("comment"))
        user = _object(comment.get("user"))
        if action != "created":
            return Route(None, f"discussion_comment {action}: nothing to do")
        if is_own(str(user.get("login") or ""), slug) or is_bot(user):
            return Route(None, "a comment by a bot")
        body = comment.get("body")
        if not mentions(body if isinstance(body, str) else "", slug):
            return Route(None, f"the comment does not mention @{slug}")
        return Route("mention", f"a comment mentioning @{slug}")
    if event == "installation":
        return Route("installation", f"installation {action}")
    if event == "installation_repositories":
        return Route("installation_repositories", f"installation_repositories {action}")
    return Route(None, f"event {event!r} is not handled")


def job_key(event: str, payload: dict) -> str | None:
    """Work on one discussion, or one installation, is done in order: this names which one."""
    discussion, installation = _object(payload.get("discussion")), _object(payload.get("installation"))
    if event in ("discussion", "discussion_comment") and discussion.get("node_id"):
        return f"discussion:{discussion['node_id']}"[:200]
    if event.startswith("installation") and installation.get("id") is not None:
        return f"installation:{installation['id']}"[:200]
    return None


# -- whether a discussion gets an answer ----------------------------------------------------------


@dataclass(frozen=True)
class Discussion:
    """What the decision needs to know about a discussion (from GraphQL, or a webhook payload)."""

    id: str
    number: int
    title: str
    body: str
    url: str
    locked: bool
    category_slug: str
    category_name: str
    author_login: str | None
    author_is_bot: bool

    @classmethod
    def from_graphql(cls, node: dict) -> "Discussion":
        author = node.get("author") or {}
        category = node.get("category") or {}
        return cls(node["id"], node["number"], node.get("title") or "", node.get("body") or "", node.get("url") or "",
                   bool(node.get("locked")), category.get("slug") or "", category.get("name") or "",
                   author.get("login"), is_bot(author))


_CHECKBOX = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+\[([ xX])\]\s+(.*?)\s*$", re.MULTILINE)


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def opted_in(body: str, opt_in_text: str) -> bool:
    """Whether the author ticked the form's opt-in box (``- [x] I want an AI-generated answer…``)."""
    wanted = _normal(opt_in_text)
    return any(mark in "xX" and wanted in _normal(label) for mark, label in _CHECKBOX.findall(body))


def should_answer(discussion: Discussion, policy: ReplyPolicy, slug: str) -> tuple[bool, str]:
    if discussion.author_is_bot or is_own(discussion.author_login, slug):
        return False, "the author is a bot"
    if discussion.locked:
        return False, "the discussion is locked"
    if not policy.answers_category(discussion.category_slug, discussion.category_name):
        return False, f"category {discussion.category_name!r} is not answered"
    if policy.opt_in and not opted_in(discussion.body, policy.opt_in_text):
        return False, "the author did not ask for an AI answer"
    return True, "answer"


_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def question_text(title: str, body: str, policy: ReplyPolicy) -> str:
    """The question as the engine should read it: title and body, without form furniture."""
    body = _HTML_COMMENT.sub("", body)
    wanted = _normal(policy.opt_in_text)
    body = _CHECKBOX.sub(lambda m: "" if wanted in _normal(m.group(2)) else m.group(0), body)
    text = f"{title.strip()}\n\n{body.strip()}".strip()
    return text[:MAX_QUESTION_CHARS]


# -- mentions of the App ----------------------------------------------------------------------------

_FENCED = re.compile(r"(^|\n)(```|~~~).*?(\n\2[^\n]*(?=\n|$)|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")


def _without_code(text: str) -> str:
    return _INLINE_CODE.sub(" ", _FENCED.sub("\n", text))


def _mention(slug: str) -> re.Pattern:
    return re.compile(rf"(?<![\w@/.-])@{re.escape(slug)}(?:\[bot\])?(?![\w-])", re.IGNORECASE)


def mentions(body: str, slug: str) -> bool:
    """Whether a comment mentions ``@slug`` outside code (a mention in a code sample asks nothing)."""
    return bool(_mention(slug).search(_without_code(body)))


def strip_mention(body: str, slug: str) -> str:
    """The comment as a question: without the mention (and hidden comments), spaces tidied."""
    text = _mention(slug).sub(" ", _HTML_COMMENT.sub("", body))
    return re.sub(r"[ \t]{2,}", " ", text).strip()[:MAX_QUESTION_CHARS]


# -- the reply ------------------------------------------------------------------------------------

_AT = re.compile(r"(?<![\w`])@(?=[A-Za-z0-9])")


def defuse_mentions(text: str) -> str:
    """Keep a model's ``@user`` or ``@org/team`` from pinging anyone: a zero-width joiner after the @.

    Code is left alone (GitHub doesn't notify from code, and a decorator must stay ``@property``).
    """
    pieces, last = [], 0
    for code in re.finditer(f"{_FENCED.pattern}|{_INLINE_CODE.pattern}", text, re.DOTALL):
        pieces.append(_AT.sub("@\u200d", text[last:code.start()]))
        pieces.append(code.group(0))
        last = code.end()
    pieces.append(_AT.sub("@\u200d", text[last:]))
    return "".join(pieces)


def marker(trigger_id: str) -> str:
    """An invisible tag in every reply, so a retry can see that the reply was already posted."""
    return f"<!-- firstreply:{trigger_id} -->"


def with_marker(body: str, trigger_id: str) -> str:
    """The body as it is posted: with the trigger's marker, added when a maintainer's rewrite has none."""
    tag = marker(trigger_id)
    if tag in body:
        return body
    room = MAX_COMMENT_CHARS - len(tag) - 2
    body = body.rstrip()
    if len(body) > room:
        body = body[: room - 1].rstrip() + "…"
    return f"{body}\n\n{tag}"


def has_reply(comments: list[dict], trigger_id: str, slug: str) -> dict | None:
    """The App's existing reply to this trigger among ``comments`` (GraphQL nodes), if any."""
    tag = marker(trigger_id)
    for comment in comments:
        if tag in (comment.get("body") or "") and is_own((comment.get("author") or {}).get("login"), slug):
            return comment
    return None


def _escape_label(text: str) -> str:
    return re.sub(r"([\[\]\\])", r"\\\1", text)


def footer(policy: ReplyPolicy) -> str:
    return (f"<sub>🤖 This is an AI-generated first reply, written from the project's documentation; it can be wrong. "
            f"{policy.maintainer_hint}</sub>")


def format_reply(answer: Answer, policy: ReplyPolicy, trigger_id: str) -> str:
    """The comment: the answer, its sources as links, the AI footer and the marker, within GitHub's limit."""
    sources = "\n".join(f"{c.number}. [{_escape_label(c.label())}]({c.url})" for c in answer.citations)
    tail = (f"\n\n**Sources**\n{sources}" if sources else "") + f"\n\n---\n{footer(policy)}\n\n{marker(trigger_id)}"
    text = defuse_mentions(answer.text.strip())
    room = MAX_COMMENT_CHARS - len(tail) - 1
    if len(text) > room:
        text = text[: room - 1].rstrip() + "…"
    return text + tail


def abstain_note(policy: ReplyPolicy, trigger_id: str) -> str:
    return ("I couldn't find a confident answer to this in the project's documentation, so I'll leave it to the "
            f"maintainers.\n\n---\n{footer(policy)}\n\n{marker(trigger_id)}")
