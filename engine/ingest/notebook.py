"""Jupyter notebooks: markdown cells parsed as Markdown, code cells kept whole as code blocks."""

from __future__ import annotations

import json
import re

from engine.ingest.document import Block, ParsedDocument, Section, title_from_path
from engine.ingest.markdown import parse_markdown


class NotebookError(ValueError):
    """The file is not a readable notebook."""


def parse_notebook(path: str, text: str) -> ParsedDocument:
    try:
        cells = json.loads(text)["cells"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise NotebookError(f"not a Jupyter notebook: {error}") from None
    sections: list[Section] = [Section(())]
    title = ""
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if not source.strip():
            continue
        if cell.get("cell_type") == "markdown":
            if not title and (h1 := re.search(r"^# (.+)$", source, re.MULTILINE)):
                title = h1.group(1).strip()
            for section in parse_markdown(path, source).sections:
                blocks = [Block(b.text, 0, 0, b.is_code) for b in section.blocks]
                heading = section.heading_path if section.heading_path else sections[-1].heading_path
                sections.append(Section(heading, blocks))
        elif cell.get("cell_type") == "code":
            sections[-1].blocks.append(Block(source, 0, 0, is_code=True))
    sections = [s for s in sections if s.blocks]
    return ParsedDocument(path, title or title_from_path(path), "notebook", sections, has_lines=False)
