"""reStructuredText: sections from underlined (and overlined) titles, blocks from paragraphs.

A full docutils parse loses exact source lines for most nodes and fails on Sphinx-only
directives, so this reads the structure the way a person does: titles are a line of text
with an adornment line of one repeated punctuation character under it; heading levels follow
the order in which adornment styles first appear; indented bodies after ``::`` or a
directive stay with the paragraph that introduced them.
"""

from __future__ import annotations

import re

from engine.ingest.document import Block, ParsedDocument, SectionBuilder, title_from_path

_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")
_DIRECTIVE = re.compile(r"^\s*\.\. [\w:-]+::")
_CODE_DIRECTIVE = re.compile(r"^\s*\.\. (code-block|code|sourcecode|literalinclude|ipython|doctest)::")


def _is_title(lines: list[str], i: int) -> bool:
    if i + 1 >= len(lines):
        return False
    text, under = lines[i].rstrip(), lines[i + 1].rstrip()
    return bool(text.strip()) and not text.startswith(" ") and bool(_ADORNMENT.match(under)) and len(under) >= len(text.strip())


def parse_rst(path: str, text: str, source_type: str = "docs") -> ParsedDocument:
    lines = text.splitlines()
    styles: list[tuple[str, bool]] = []
    sections = SectionBuilder()
    title = ""
    block_lines: list[str] = []
    block_start = 0
    block_is_code = False
    literal_next = False

    def flush(end_line: int) -> None:
        nonlocal block_lines, block_is_code
        body = "\n".join(block_lines).strip("\n")
        if body.strip():
            sections.add(Block(body, block_start, end_line, is_code=block_is_code))
        block_lines, block_is_code = [], False

    i = 0
    while i < len(lines):
        line = lines[i]
        overline = bool(_ADORNMENT.match(line)) and i + 2 < len(lines) and _is_title(lines, i + 1) and lines[i + 2].rstrip()[:1] == line[:1]
        if overline or _is_title(lines, i):
            title_index = i + 1 if overline else i
            heading = lines[title_index].strip()
            style = (lines[title_index + 1].strip()[0], overline)
            if style not in styles:
                styles.append(style)
            level = styles.index(style)
            flush(i)
            if not title:
                title = heading
            sections.heading(level, heading)
            i = title_index + 2
            literal_next = False
            continue
        indented = line.startswith((" ", "\t"))
        if not line.strip():
            if block_lines and not (literal_next or block_is_code):
                flush(i)
            elif block_lines:
                block_lines.append(line)
            i += 1
            continue
        if block_lines and not indented and (literal_next or block_is_code):
            flush(i)  # the indented literal body has ended
            literal_next = False
        if not block_lines:
            block_start = i + 1
            block_is_code = bool(_CODE_DIRECTIVE.match(line))
            literal_next = line.rstrip().endswith("::") or bool(_DIRECTIVE.match(line))
        elif not indented and (line.rstrip().endswith("::") or _DIRECTIVE.match(line)):
            literal_next = True
            block_is_code = block_is_code or bool(_CODE_DIRECTIVE.match(line))
        block_lines.append(line)
        i += 1
    flush(len(lines))
    title = title or title_from_path(path)
    return ParsedDocument(path=path, title=title, source_type=source_type, sections=sections.finish(title))
