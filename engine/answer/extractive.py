"""The offline answerer: the passages that answer the question, quoted and cited.

It needs no model and no key, so it is the default and the last fallback. It picks the
most relevant passages of the top hits (distinct pages first), trims each to the paragraphs
that share the most terms with the question (keeping a code block that illustrates them),
and cites each with its link. When the best passage is not similar enough to the question,
it says so instead of guessing.
"""

from __future__ import annotations

from engine.answer.model import Answer, citation_for
from engine.index.keywords import keyword_terms
from engine.index.retriever import Hit

ABSTAIN_TEXT = (
    "I couldn't find anything in the documentation I have that answers this, so I'd rather not guess. "
    "A maintainer or someone from the community may know."
)
MAX_PASSAGES = 3
MAX_PASSAGE_CHARS = 700


def confidence_of(hits: list[Hit]) -> float:
    """How sure retrieval is: the best cosine similarity between the question and a hit."""
    return max((h.dense for h in hits if h.dense is not None), default=0.0)


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
        # a code example right after an explanation belongs with it
        if i + 1 < len(paragraphs) and paragraphs[i + 1].lstrip().startswith("```") and size + len(paragraphs[i + 1]) <= max_chars * 1.5:
            chosen.add(i + 1)
            size += len(paragraphs[i + 1])
        if size >= max_chars // 2:
            break
    passage = "\n\n".join(paragraphs[i] for i in sorted(chosen))
    if len(passage) > max_chars * 1.5 and "```" not in passage:
        passage = passage[: max_chars].rsplit(" ", 1)[0] + " …"
    return passage


def extractive_answer(question: str, hits: list[Hit], threshold: float) -> Answer:
    confidence = confidence_of(hits)
    if not hits or confidence < threshold:
        return Answer(ABSTAIN_TEXT, abstained=True, confidence=confidence, hits=hits)
    terms = set(keyword_terms(question))
    chosen: list[Hit] = []
    for hit in hits:  # distinct pages first: three views of one page say less than three pages
        if len(chosen) < MAX_PASSAGES and hit.chunk.path not in {h.chunk.path for h in chosen}:
            chosen.append(hit)
    sections, citations = [], []
    for number, hit in enumerate(chosen, start=1):
        passage = best_passage(terms, hit.chunk.text)
        if not passage:
            continue
        citation = citation_for(number, hit)
        citations.append(citation)
        sections.append(f"**{citation.label()}** [{number}]\n{passage}")
    text = "Here is what the documentation says:\n\n" + "\n\n".join(sections)
    return Answer(text, citations=citations, confidence=confidence, hits=hits)
