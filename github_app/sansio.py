"""The App's protocol decisions as plain functions over plain data (gidgethub's sans-I/O style).

Checking a delivery, choosing what a delivery asks of us, deciding whether a discussion gets
an answer, and writing the reply: nothing here does I/O, so all of it is tested directly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from gidgethub.sansio import Event
from markdown_it import MarkdownIt
from markdown_it.token import Token

from engine.config import KB_NAME, RepositorySource, versioned_kb_name
from engine.protocol import MAX_QUESTION_CHARS, Answer
from github_app.config import ReplyPolicy

MAX_COMMENT_CHARS = 65_536  # GitHub refuses longer comment bodies


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


def parse_delivery(headers: Mapping[str, str], body: bytes, secret: str) -> Event:
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
                          "installation_target", "github_app_authorization", "meta", "push"})


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
    return bool(login and login.lower() in {slug, f"{slug}[bot]"})


def is_bot(user: dict[str, Any] | None) -> bool:
    user = user if isinstance(user, dict) else {}
    return user.get("type") == "Bot" or user.get("__typename") == "Bot" or str(user.get("login", "")).endswith("[bot]")


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def route(event: str, payload: dict[str, Any], slug: str, sources: Mapping[str, RepositorySource] | None = None) -> Route:
    """Decide from the delivery alone what work it asks for (the worker decides the rest with fresh data).
    ``sources``: the repositories whose pushes re-ingest a knowledge base (``FIRSTREPLY_GITHUB_SOURCES``)."""
    action = payload.get("action")
    if event == "ping":
        return Route(None, "pong")
    if event == "push":
        update = source_update(payload, sources or {})
        if isinstance(update, str):
            return Route(None, update)
        return Route("reingest", f"a push to {update.ref or 'the default branch'} of {update.repository}")
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


@dataclass(frozen=True)
class SourceUpdate:
    """What a push asks for: bring knowledge base ``kb`` up to date with ``url`` at ``ref`` (None: the default branch)."""

    repository: str  # owner/name, as the push names it
    kb: str
    url: str
    ref: str | None


def source_update(payload: dict[str, Any], sources: Mapping[str, RepositorySource]) -> SourceUpdate | str:
    """The re-ingest a ``push`` delivery asks for, or why it asks for none (a string). A push to the default
    branch of a bound repository re-ingests its knowledge base; one to a listed branch, or a tag when tags are
    on, ingests that ref into its own versioned knowledge base (``<kb>-<ref>``); a deleted ref, anything else."""
    repository = _object(payload.get("repository"))
    full_name = str(repository.get("full_name") or "")
    source = sources.get(full_name.lower())
    if source is None:
        return f"pushes to {full_name or 'this repository'} re-ingest nothing (not in FIRSTREPLY_GITHUB_SOURCES)"
    ref = payload.get("ref")
    if not isinstance(ref, str) or not ref.startswith(("refs/heads/", "refs/tags/")):
        return f"push to {ref!r}: not a branch or tag"
    if payload.get("deleted"):
        return f"{ref} was deleted: nothing to ingest"
    url = source.url or repository.get("clone_url")
    if not isinstance(url, str) or not url:
        return f"the push names no clone_url for {full_name}; set its url in FIRSTREPLY_GITHUB_SOURCES"
    name = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
    if ref.startswith("refs/heads/"):
        if name == repository.get("default_branch"):
            return SourceUpdate(full_name, source.kb, url, None)
        if name not in source.branches:
            return f"pushes to branch {name!r} are ignored (only the default branch, and those listed, are ingested)"
    elif not source.tags:
        return f"tag {name!r} ignored (tags are ingested only when the repository's source has tags on)"
    kb = versioned_kb_name(source.kb, name)
    if not KB_NAME.match(kb):
        return f"{ref} gives no usable knowledge base name"
    return SourceUpdate(full_name, kb, url, name)


def job_key(event: str, payload: dict[str, Any]) -> str | None:
    """Work on one discussion, one installation, or one repository's pushes is done in order: this names which one."""
    discussion, installation = _object(payload.get("discussion")), _object(payload.get("installation"))
    if event == "push" and _object(payload.get("repository")).get("full_name"):
        return f"source:{str(payload['repository']['full_name']).lower()}"[:200]
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
    def from_graphql(cls, node: dict[str, Any]) -> "Discussion":
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


# -- Markdown as GitHub renders it ----------------------------------------------------------------
#
# What is code, what is raw HTML and what is a live mention is decided by how the text renders
# (CommonMark, which GitHub's Markdown extends), not by the raw characters: an escaped backtick
# opens no code span, an indented block is code, a ``<!--`` outside code opens an HTML comment.
# markdown-it-py parses blocks (their line ranges are exact); code spans inside a block are found
# by CommonMark's own rule, and every result is checked against markdown-it's rendering, with a
# stricter fallback when the two disagree.

_MARKDOWN = MarkdownIt("commonmark")


def _normal_newlines(text: str) -> str:
    """Line ends as CommonMark reads them (so offsets agree with markdown-it's line map)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")


def _code_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """CommonMark code spans in ``text[start:end]``: a backtick run opens one unless escaped, and it closes
    at the next run of exactly the same length (no escapes inside); an unmatched run is literal text."""
    spans, i = [], start
    while i < end:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char != "`":
            i += 1
            continue
        j = i
        while j < end and text[j] == "`":
            j += 1
        k, close = j, None
        while k < end:
            if text[k] != "`":
                k += 1
                continue
            m = k
            while m < end and text[m] == "`":
                m += 1
            if m - k == j - i:
                close = m
                break
            k = m
        if close is None:
            i = j
        else:
            spans.append((i, close))
            i = close
    return spans


def _code_ranges(text: str, tokens: Sequence[Token] | None = None) -> list[tuple[int, int]]:
    """Where ``text`` (newlines normalised) is code when rendered: fenced and indented blocks, code spans."""
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    ranges: list[tuple[int, int]] = []
    for token in tokens if tokens is not None else _MARKDOWN.parse(text):
        if token.map is None:
            continue
        begin, finish = starts[token.map[0]], min(starts[token.map[1]], len(text))
        if token.type in ("fence", "code_block"):
            ranges.append((begin, finish))
        elif token.type == "inline":
            ranges.extend(_code_spans(text, begin, finish))
    return sorted(ranges)


def _outside_code(text: str, change: Callable[[str], str], ranges: list[tuple[int, int]]) -> str:
    pieces: list[str] = []
    last = 0
    for begin, finish in ranges:
        if begin < last:
            continue
        pieces.append(change(text[last:begin]))
        pieces.append(text[begin:finish])
        last = finish
    pieces.append(change(text[last:]))
    return "".join(pieces)


def _without_code(text: str) -> str:
    """The text (newlines normalised) with its code, as rendered, blanked out."""
    text = _normal_newlines(text)
    chars = list(text)
    for begin, finish in _code_ranges(text):
        chars[begin:finish] = " " * (finish - begin)
    return "".join(chars)


# -- mentions of the App ----------------------------------------------------------------------------


def _mention(slug: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w@/.-])@{re.escape(slug)}(?:\[bot\])?(?![\w-])", re.IGNORECASE)


def mentions(body: str, slug: str) -> bool:
    """Whether a comment mentions ``@slug`` outside code (a mention in a code sample asks nothing)."""
    return bool(_mention(slug).search(_without_code(body)))


def strip_mention(body: str, slug: str) -> str:
    """The comment as a question: without the mention (and hidden comments), spaces tidied."""
    text = _mention(slug).sub(" ", _HTML_COMMENT.sub("", body))
    return re.sub(r"[ \t]{2,}", " ", text).strip()[:MAX_QUESTION_CHARS]


# -- the reply ------------------------------------------------------------------------------------

_AT = re.compile(r"(?<!\w)@(?=[A-Za-z0-9])")  # a mention GitHub would notify (not an e-mail address)
_AT_ENTITY = re.compile(r"&(?:#0*64|#[xX]0*40|commat);")  # renders as "@"
# Raw HTML as CommonMark sees it: an open or closing tag, a comment, a declaration, a processing
# instruction. An autolink (<https://…>, <me@example.com>) is not HTML and stays.
_RAW_HTML = re.compile(r"<(?=[A-Za-z/!?])(?![A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*>)(?![^\s<>@]+@[^\s<>@]+>)")


def _rendered(text: str) -> tuple[list[Token], str]:
    """markdown-it's tokens for ``text``, and the text it renders outside code (for the checks below)."""
    tokens = _MARKDOWN.parse(text)
    words = []
    for token in tokens:
        for child in token.children or []:
            if child.type in ("text", "text_special"):
                words.append(child.content)
            elif child.type in ("softbreak", "hardbreak", "code_inline", "html_inline"):
                words.append("\n")
        words.append("\n")
    return tokens, "".join(words)


def neutralise_html(text: str) -> str:
    """The answer without raw HTML: ``<`` that would open a tag, a comment (``<!--`` would hide everything up to
    the marker: sources and footer included) or a declaration becomes ``&lt;``, which renders as ``<``.
    Code is left as it is (``<`` is literal there); autolinks stay links."""
    text = _normal_newlines(text)
    safe = _outside_code(text, lambda part: _RAW_HTML.sub("&lt;", part), _code_ranges(text))
    if any(t.type == "html_block" or any(c.type == "html_inline" for c in t.children or [])
           for t in _MARKDOWN.parse(safe)):  # a construct the code finder read otherwise: escape every "<"
        safe = text.replace("<", "&lt;")
    return safe


def defuse_mentions(text: str) -> str:
    """Keep a model's ``@user`` or ``@org/team`` from pinging anyone: a zero-width joiner after the @.

    By what renders: code (spans, fenced and indented blocks) is left alone (GitHub doesn't notify
    from code, and a decorator must stay ``@property``); an escaped backtick is not code, so the
    mention after it is defused; ``&#64;`` renders as ``@`` and is treated as one.
    """
    text = _normal_newlines(text)

    def defuse(part: str) -> str:
        return _AT.sub("@\u200d", _AT_ENTITY.sub("@", part))

    safe = _outside_code(text, defuse, _code_ranges(text))
    if _AT.search(_rendered(safe)[1]):  # the code finder and the renderer disagree: defuse code too
        safe = defuse(text)
    return safe


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


def has_reply(comments: list[dict[str, Any]], trigger_id: str, slug: str) -> dict[str, Any] | None:
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
    text = defuse_mentions(neutralise_html(answer.text.strip()))
    room = MAX_COMMENT_CHARS - len(tail) - 1
    if len(text) > room:
        text = text[: room - 1].rstrip() + "…"
    return text + tail


def abstain_note(policy: ReplyPolicy, trigger_id: str) -> str:
    return ("I couldn't find a confident answer to this in the project's documentation, so I'll leave it to the "
            f"maintainers.\n\n---\n{footer(policy)}\n\n{marker(trigger_id)}")
