"""An answer's Markdown as safe HTML for the pages: rendered with markdown-it-py, cleaned with nh3.

Answers quote the project's docs, so they carry Markdown (lists, fences, emphasis, links) and
often MDX/JSX components (``<Banner type="info">…</Banner>``, ``<Tabs>``) that mean nothing
outside the docs site. Those components are reduced to their text before rendering; raw HTML is
never passed through (markdown-it's ``html`` option stays off), and the result goes through nh3
with a short list of tags anyway, so an answer can't inject markup or script whatever an LLM or
a document says. Links keep only http(s) addresses, paths on this site and in-page anchors; they
open in a new tab. A pure function of the text: no I/O.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Sequence

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

if TYPE_CHECKING:
    from engine.answer.model import Answer

# The tags markdown-it produces for CommonMark plus tables and strikethrough; nothing else survives.
TAGS = {"p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a",
        "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td"}
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}  # no style: the pages' CSP forbids inline styles
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A JSX/MDX component: a tag whose name starts with a capital letter (HTML's own are lower case),
# e.g. <Banner type="warning">, </Banner>, <Tabs.Item label="a"/>; attribute values may hold ">".
_COMPONENT = re.compile(r"</?[A-Z][\w.:-]*(?:\s+(?:[^<>\"'{}]|\"[^\"]*\"|'[^']*'|\{[^{}]*\})*)?/?>")
# MDX's own statements at the start of a line: imports and exports of the docs site's code.
_MDX_STATEMENT = re.compile(r"^(?:import|export)\s.+?(?:from\s+['\"][^'\"]+['\"]|=.*)\s*;?\s*$")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(["table", "strikethrough"])


def strip_components(text: str) -> str:
    """``text`` with MDX/JSX component tags and MDX import/export lines removed, their content kept.

    Code (fenced blocks and inline code spans) is left exactly as written: a code sample that shows
    a component is the answer, not markup to drop."""
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence) and not line.strip(" `~"):
                fence = None
            out.append(line)
            continue
        if opened:
            fence = opened.group(1)
            out.append(line)
            continue
        if _MDX_STATEMENT.match(line):
            continue
        pieces, last = [], 0
        for code in _INLINE_CODE.finditer(line):  # components inside `code` stay
            pieces.append(_COMPONENT.sub("", line[last:code.start()]))
            pieces.append(code.group())
            last = code.end()
        pieces.append(_COMPONENT.sub("", line[last:]))
        stripped = "".join(pieces)
        if stripped.strip() or not line.strip():
            out.append(stripped)
        elif out and out[-1].strip():  # a line that was only a tag: keep paragraphs apart, once
            out.append("")
    return "\n".join(out)


def allowed_href(url: str) -> bool:
    """Whether an answer may link to ``url``: http(s), a path on this site, or an anchor on the page."""
    url = url.strip()
    if url.lower().startswith(("https://", "http://")):
        return True
    return url.startswith("#") or (url.startswith("/") and not url.startswith("//") and "\\" not in url)


def _attribute(tag: str, name: str, value: str) -> str | None:
    if tag == "a" and name == "href":
        return value if allowed_href(value) else None
    return value


def _unlink_refused(tokens: Sequence[Token]) -> None:
    """Links to anywhere else (another scheme, a path relative to the docs' own folder that would 404
    here) are reduced to their text."""
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        kept, dropping = [], []
        for child in token.children:
            if child.type == "link_open":
                refused = not allowed_href(str(child.attrGet("href") or ""))
                dropping.append(refused)
                if refused:
                    continue
            elif child.type == "link_close" and dropping:
                if dropping.pop():
                    continue
            kept.append(child)
        token.children = kept


def render(text: str) -> str:
    """The answer ``text`` (Markdown, maybe MDX) as sanitised HTML."""
    env: dict[str, Any] = {}
    tokens = _markdown.parse(strip_components(text or ""), env)
    _unlink_refused(tokens)
    html = _markdown.renderer.render(tokens, _markdown.options, env)
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, attribute_filter=_attribute,
                     url_schemes={"http", "https"}, link_rel="noopener noreferrer",
                     set_tag_attribute_values={"a": {"target": "_blank"}}, strip_comments=True)


def answer_payload(answer: Answer) -> dict[str, Any]:
    """An answer as the API and the Ask page send it: its fields, and ``html``, its text rendered."""
    return {**answer.as_dict(), "html": render(answer.text)}
