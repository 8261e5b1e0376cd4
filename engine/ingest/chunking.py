"""Structure-following chunking sized to the embedding model.

Blocks are packed, in order, into chunks that fit the model's maximum sequence length once
the context header (page title and heading path) is added, so the embedding never silently
truncates. Sizes are measured on the text that is embedded (markup stripped), not on the
stored text. A block is split only when it alone is too big, and then along its own
structure: a table between rows, with its header row repeated at the top of every piece; a
list between items, never inside one; code by lines; prose by sentences. Chunk ids hash the path, heading path and text, so an unchanged chunk keeps its
id (and its embedding) across re-ingests even when other parts of its file change.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Iterator

from engine.ingest.document import Block, ParsedDocument
from engine.ingest.links import LinkBuilder

TokenCounter = Callable[[str], int]
#: Bump when what ``Chunk.embedding_text`` produces changes, or how text is cut into chunks: every
#: file is then chunked and embedded again (3: sizes measured on embedded text, tables and lists split
#: along rows and items; 4: a ragged table rule row is a rule, a prose piece's line range is its own).
EMBEDDING_TEXT_VERSION = 4
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
#: A table's rule row: pipes, dashes, colons and spaces only (a stray empty cell after it, "|---|---|   |", as written).
_TABLE_RULE = re.compile(r"^\s*\|?[\s:|-]*-[\s:|-]*\|?\s*$")
_LIST_ITEM = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])(\s+|$)")
_MARKUP = [
    (re.compile(r"\[([^\]]*)\]\([^)]*\)"), r"\1"),  # [text](target) -> text
    (re.compile(r"</?[A-Za-z][\w.-]*(\s[^<>]*)?/?>"), " "),  # HTML and JSX tags
    (re.compile(r"^\s*\|?[\s:|-]*-[\s:|-]*\|?\s*$", re.MULTILINE), " "),  # table rules
    (re.compile(r"```[\w+-]*"), " "),  # fence markers
    (re.compile(r"[ \t]+"), " "),
]


def strip_markup(text: str) -> str:
    """The words of a chunk without the markup around them, for embedding and keyword indexing.

    Link targets, tags and table rules carry no meaning for the model but use up its window.
    """
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return text.strip()
#: [CLS] and [SEP] (or their equivalents) take two positions of every sequence.
SPECIAL_TOKENS = 2


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    path: str
    title: str
    heading_path: tuple[str, ...]
    text: str
    start_line: int
    end_line: int
    source_type: str
    url: str
    description: str = ""

    @property
    def header(self) -> str:
        return context_header(self.title, self.heading_path)

    @property
    def embedding_text(self) -> str:
        """The text that is embedded and keyword-indexed: context header, then the body's words."""
        return f"{self.header}\n\n{strip_markup(self.text)}"


def context_header(title: str, heading_path: tuple[str, ...]) -> str:
    return " > ".join((title, *heading_path))


def embedded_tokens(text: str, count: TokenCounter) -> int:
    """Tokens that ``text`` takes once its markup is stripped, as it is embedded."""
    return count(strip_markup(text))


def _table_parts(lines: list[str]) -> tuple[list[str], list[int]] | None:
    """A Markdown table's header lines (header row and rule) and the line indexes of its rows; None if not a table."""
    if len(lines) < 3 or "|" not in lines[0] or not _TABLE_RULE.match(lines[1]) or "|" not in lines[1]:
        return None
    return lines[:2], list(range(2, len(lines)))


def _list_items(lines: list[str]) -> list[tuple[int, int]] | None:
    """The ``(first, last)`` line indexes of each top-level item of a Markdown list; None if not a list."""
    first = _LIST_ITEM.match(lines[0]) if lines else None
    if first is None:
        return None
    indent = len(first.group(1))
    starts = [i for i, line in enumerate(lines)
              if (m := _LIST_ITEM.match(line)) and len(m.group(1)) <= indent]
    if len(starts) < 2:
        return None
    return [(start, (starts[n + 1] if n + 1 < len(starts) else len(lines)) - 1) for n, start in enumerate(starts)]


def _pack(groups: list[tuple[str, int, int]], budget: int, count: TokenCounter, header: str = "") -> Iterator[Block]:
    """Pack whole groups (text, first line, last line) into blocks within the budget, ``header`` atop each.

    A group too big on its own is cut as prose (by sentences), the header still atop each piece."""
    header_tokens = embedded_tokens(header, count) + 1 if header else 0
    room = max(8, budget - header_tokens)
    piece: list[tuple[str, int, int]] = []
    size = 0

    def block_of(items: list[tuple[str, int, int]]) -> Block:
        body = "\n".join(text for text, _, _ in items)
        return Block(f"{header}\n{body}" if header else body, items[0][1], items[-1][2])

    for text, start, end in groups:
        tokens = embedded_tokens(text, count) + 1
        if tokens > room:
            if piece:
                yield block_of(piece)
                piece, size = [], 0
            for part in _split_block(Block(text, start, end), room, count, structured=False):
                yield block_of([(part.text, part.start_line, part.end_line)])
            continue
        if piece and size + tokens > room:
            yield block_of(piece)
            piece, size = [], 0
        piece.append((text, start, end))
        size += tokens
    if piece:
        yield block_of(piece)


def _split_block(block: Block, budget: int, count: TokenCounter, structured: bool = True) -> Iterator[Block]:
    """Split one oversized block into pieces that each fit the budget."""
    lines = block.text.split("\n")
    line_of = (lambda i: block.start_line + i) if block.start_line else (lambda i: 0)
    if structured and not block.is_code:
        table = _table_parts(lines)
        if table is not None:  # between rows, each piece under the table's own header
            header, rows = table
            yield from _pack([(lines[i], line_of(i), line_of(i)) for i in rows], budget, count, "\n".join(header))
            return
        items = _list_items(lines)
        if items is not None:  # between items, never inside one
            yield from _pack([("\n".join(lines[a:b + 1]), line_of(a), line_of(b)) for a, b in items], budget, count)
            return
    if block.is_code or not block.start_line:
        units = [(line, block.start_line + i if block.start_line else 0) for i, line in enumerate(block.text.split("\n"))]
        joiner = "\n"
    else:
        units = _sentences_with_lines(block.text, block.start_line)
        joiner = " "
    piece: list[str] = []
    piece_tokens = 0
    piece_start = units[0][1] if units else block.start_line
    last_line = piece_start
    for text, line in units:
        tokens = embedded_tokens(text, count) + 1
        if tokens > budget:  # one enormous line or sentence: cut it by words
            words = text.split(" ")
            step = max(1, len(words) * budget // (tokens + 1))
            for i in range(0, len(words), step):
                yield Block(" ".join(words[i : i + step]), line, line, block.is_code)
            piece, piece_tokens = [], 0
            continue
        if piece and piece_tokens + tokens > budget:
            yield Block(joiner.join(piece), piece_start, last_line, block.is_code)
            piece, piece_tokens = [], 0
        if not piece:
            piece_start = line
        piece.append(text)
        piece_tokens += tokens
        last_line = line + text.count("\n")
    if piece:
        yield Block(joiner.join(piece), piece_start, last_line, block.is_code)


def _sentences_with_lines(text: str, start_line: int) -> list[tuple[str, int]]:
    """Prose cut into sentences, each with the line it starts on, so a piece's line range is its own."""
    units, start = [], 0
    for end in [m.start() for m in _SENTENCE_END.finditer(text)] + [len(text)]:
        sentence = text[start:end]
        if sentence:
            units.append((sentence, start_line + text.count("\n", 0, start)))
        start = end
        while start < len(text) and text[start].isspace():
            start += 1
    return units


def chunk_document(
    doc: ParsedDocument,
    count_tokens: TokenCounter,
    max_tokens: int,
    links: LinkBuilder | None = None,
) -> list[Chunk]:
    links = links or LinkBuilder()
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}

    def emit(heading_path: tuple[str, ...], blocks: list[Block]) -> None:
        text = "\n\n".join(b.text for b in blocks).strip()
        if not text:
            return
        lined = [b for b in blocks if b.start_line]
        start = min((b.start_line for b in lined), default=0)
        end = max((b.end_line for b in lined), default=0)
        header = context_header(doc.title, heading_path)
        digest = hashlib.sha256(f"{doc.path}\0{header}\0{text}".encode()).hexdigest()[:20]
        seen[digest] = seen.get(digest, 0) + 1
        chunk_id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
        heading = heading_path[-1] if heading_path and doc.source_type in {"docs", "example"} else None
        url = links.url(doc.path, start if doc.has_lines else 0, end if doc.has_lines else 0, heading)
        chunks.append(Chunk(chunk_id, doc.path, doc.title, heading_path, text, start, end, doc.source_type, url, doc.description))

    for section in doc.sections:
        header_tokens = count_tokens(context_header(doc.title, section.heading_path))
        budget = max(16, max_tokens - SPECIAL_TOKENS - header_tokens - 2)
        pending: list[Block] = []
        pending_tokens = 0
        for block in section.blocks:
            tokens = embedded_tokens(block.text, count_tokens) + 1  # one more for the gap between blocks
            if tokens <= budget:
                pieces = [block]
            else:
                # A lead-in that ends in ":" ("The following options are available:") stays with the first piece.
                lead = pending[-1] if pending and not pending[-1].is_code and pending[-1].text.rstrip().endswith(":") else None
                lead_tokens = embedded_tokens(lead.text, count_tokens) + 1 if lead else 0
                if lead and lead_tokens <= budget // 3:
                    pending.pop()
                    emit(section.heading_path, pending)
                    pending, pending_tokens = [lead], lead_tokens
                else:
                    lead_tokens = 0
                pieces = list(_split_block(block, budget - lead_tokens, count_tokens))
            for piece in pieces:
                piece_tokens = tokens if piece is block else embedded_tokens(piece.text, count_tokens) + 1
                if pending and pending_tokens + piece_tokens > budget:
                    emit(section.heading_path, pending)
                    pending, pending_tokens = [], 0
                pending.append(piece)
                pending_tokens += piece_tokens
        emit(section.heading_path, pending)
    return chunks
