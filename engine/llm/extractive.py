"""The offline extractive answerer as a provider: quotes the passages that answer the question.

It needs no model and no key, so it is the default and the last link of every fallback
chain. From the numbered passages of the request it takes the best one per page (at most
three), keeps the paragraphs that share the most terms with the question — and the code
example right after them — and cites each as ``[n]`` like a model would.
"""

from __future__ import annotations

from typing import AsyncIterator

from engine.index.keywords import keyword_terms
from engine.llm.base import Generation, GenerationRequest, StreamEvent, estimate_tokens

MAX_PASSAGES = 3
MAX_PASSAGE_CHARS = 700


def _paragraphs(text: str) -> list[str]:
    parts, current, in_fence = [], [], False
    for line in text.split("\n"):
        if line.strip().startswith("```"):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if current:
                parts.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        parts.append("\n".join(current))
    return parts


def best_passage(question_terms: set[str], text: str, max_chars: int = MAX_PASSAGE_CHARS) -> str:
    """The paragraphs of ``text`` that best match the question, in their original order."""
    paragraphs = _paragraphs(text)
    if not paragraphs:
        return ""

    def overlap(paragraph: str) -> float:
        terms = set(keyword_terms(paragraph))
        return len(terms & question_terms) / (1 + len(terms) ** 0.5)

    ranked = sorted(range(len(paragraphs)), key=lambda i: -overlap(paragraphs[i]))
    chosen: set[int] = set()
    size = 0
    for i in ranked:
        if chosen and overlap(paragraphs[i]) == 0:
            break  # the rest share nothing with the question
        if size and size + len(paragraphs[i]) > max_chars:
            continue
        chosen.add(i)
        size += len(paragraphs[i])
        follows = paragraphs[i + 1] if i + 1 < len(paragraphs) else ""
        if follows.lstrip().startswith("```") and size + len(follows) <= max_chars * 1.5:
            chosen.add(i + 1)  # a code example right after an explanation belongs with it
            size += len(follows)
        if size >= max_chars // 2:
            break
    passage = "\n\n".join(paragraphs[i] for i in sorted(chosen))
    if len(passage) > max_chars * 1.5 and "```" not in passage:
        passage = passage[:max_chars].rsplit(" ", 1)[0] + " …"
    return passage


class ExtractiveProvider:
    name = "extractive"
    context_window = 1_000_000

    async def generate(self, request: GenerationRequest) -> Generation:
        terms = set(keyword_terms(request.question or request.prompt))
        sections, seen_pages = [], set()
        for passage in request.context:  # best first; one passage per page, three pages at most
            page = passage.url.split("#")[0]
            if len(sections) == MAX_PASSAGES or page in seen_pages:
                continue
            seen_pages.add(page)
            quoted = best_passage(terms, passage.text)
            if quoted:
                sections.append(f"**{passage.title}** [{passage.number}]\n{quoted}")
        text = "Here is what the documentation says:\n\n" + "\n\n".join(sections) if sections else ""
        return Generation(text, self.name, "stop", None, None)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        generation = await self.generate(request)
        for index, paragraph in enumerate(generation.text.split("\n\n")):
            yield StreamEvent(text=paragraph if index == 0 else "\n\n" + paragraph)
        yield StreamEvent(done=True, generation=generation)

    async def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def estimate_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        return None
