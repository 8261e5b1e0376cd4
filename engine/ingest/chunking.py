"""Structure-following chunking sized to the embedding model.

Blocks are packed, in order, into chunks that fit the model's maximum sequence length once
the context header (page title and heading path) is added, so the embedding never silently
truncates. A block is split only when it alone is too big: code by lines, prose by
sentences. Chunk ids hash the path, heading path and text, so an unchanged chunk keeps its
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
#: Bump when what ``Chunk.embedding_text`` produces changes: every chunk is then embedded again.
EMBEDDING_TEXT_VERSION = 2
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
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


def _split_block(block: Block, budget: int, count: TokenCounter) -> Iterator[Block]:
    """Split one oversized block into pieces that each fit the budget."""
    if block.is_code or not block.start_line:
        units = [(line, block.start_line + i if block.start_line else 0) for i, line in enumerate(block.text.split("\n"))]
        joiner = "\n"
    else:
        units = [(s, block.start_line) for s in _SENTENCE_END.split(block.text)]
        joiner = " "
    piece: list[str] = []
    piece_tokens = 0
    piece_start = units[0][1] if units else block.start_line
    last_line = piece_start
    for text, line in units:
        tokens = count(text) + 1
        if tokens > budget:  # one enormous line or sentence: cut it by words
            words = text.split(" ")
            step = max(1, len(words) * budget // (tokens + 1))
            for i in range(0, len(words), step):
                yield Block(" ".join(words[i : i + step]), line, line, block.is_code)
            piece, piece_tokens, piece_start = [], 0, line
            continue
        if piece and piece_tokens + tokens > budget:
            yield Block(joiner.join(piece), piece_start, last_line, block.is_code)
            piece, piece_tokens, piece_start = [], 0, line
        piece.append(text)
        piece_tokens += tokens
        last_line = line if block.is_code else block.end_line
    if piece:
        yield Block(joiner.join(piece), piece_start, last_line if block.is_code else block.end_line, block.is_code)


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
            tokens = count_tokens(block.text)
            pieces = [block] if tokens <= budget else list(_split_block(block, budget, count_tokens))
            for piece in pieces:
                piece_tokens = tokens if piece is block else count_tokens(piece.text)
                if pending and pending_tokens + piece_tokens > budget:
                    emit(section.heading_path, pending)
                    pending, pending_tokens = [], 0
                pending.append(piece)
                pending_tokens += piece_tokens
        emit(section.heading_path, pending)
    return chunks
