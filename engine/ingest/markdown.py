"""Markdown and MDX: front matter, heading sections, and top-level blocks with line ranges.

markdown-it-py gives every top-level block its source line map, so blocks keep the author's
original text (code fences included) and exact line numbers for links.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from engine.ingest.document import Block, ParsedDocument, SectionBuilder, title_from_path

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*\r?\n", re.DOTALL)
_MDX_IMPORT = re.compile(r"^(import|export)\s.+$")
_parser = MarkdownIt("commonmark").enable("table")


def parse_front_matter(text: str) -> tuple[dict[str, str], int]:
    """Return the simple ``key: value`` pairs of a leading front-matter block and its line count."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, 0
    fields: dict[str, str] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "\t", "-")):
            fields[key.strip().lower()] = value.strip().strip("'\"")
    return fields, match.group(0).count("\n")


def parse_markdown(path: str, text: str, source_type: str = "docs") -> ParsedDocument:
    front, skip = parse_front_matter(text)
    lines = text.splitlines()
    body = "\n" * skip + "\n".join(lines[skip:])  # keep line numbers aligned with the file
    title = front.get("title", "")
    sections = SectionBuilder()
    tokens = _parser.parse(body)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.level != 0 or token.map is None or token.type.endswith("_close"):
            index += 1
            continue
        start, end = token.map
        if token.type == "heading_open":
            level = int(token.tag[1])
            heading = tokens[index + 1].content.strip() if index + 1 < len(tokens) else ""
            heading = re.sub(r"[`*_]", "", heading)
            if level == 1 and not title:
                title = heading
            sections.heading(level, heading)
            index += 3
            continue
        chunk_text = "\n".join(lines[start:end]).strip("\n")
        if all(_MDX_IMPORT.match(x) for x in chunk_text.splitlines() if x.strip()):
            index += 1  # MDX import/export lines are build plumbing, not content
            continue
        if chunk_text.strip():
            is_code = token.type in {"fence", "code_block"}
            sections.add(Block(chunk_text, start + 1, end, is_code=is_code))
        index += 1
    title = title or title_from_path(path)
    return ParsedDocument(
        path=path,
        title=title,
        source_type=source_type,
        sections=sections.finish(title),
        description=front.get("desc") or front.get("description", ""),
    )
