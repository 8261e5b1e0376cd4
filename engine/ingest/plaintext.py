"""Plain text: one section of blank-line-separated paragraphs."""

from __future__ import annotations

from engine.ingest.document import Block, ParsedDocument, Section, title_from_path


def paragraphs(lines: list[str], first_line: int = 1) -> list[Block]:
    """Split lines into blank-line-separated blocks, keeping 1-based line numbers."""
    blocks: list[Block] = []
    start = None
    for offset, line in enumerate(lines + [""]):
        if line.strip() and start is None:
            start = offset
        elif not line.strip() and start is not None:
            blocks.append(Block("\n".join(lines[start:offset]), first_line + start, first_line + offset - 1))
            start = None
    return blocks


def parse_text(path: str, text: str, source_type: str = "text") -> ParsedDocument:
    lines = text.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    title = first if 0 < len(first) <= 80 else title_from_path(path)
    return ParsedDocument(path=path, title=title, source_type=source_type, sections=[Section((), paragraphs(lines))])
