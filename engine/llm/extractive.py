"""The offline extractive answerer as a provider: quotes the passages that answer the question.

It needs no model and no key, so it is the default and the last link of every fallback
chain. Its passages are whole sections (:mod:`engine.index.sections`), and it reads each as
whole *units* — a paragraph together with the list, table or code it introduces ("…via two
ways:"), a subheading with what it names, a whole list (a step that ends in ":" with its
code), a whole table, a code example — never a fragment of one. Units are scored by the
question's terms (those of the sentences that ask "…?", the thread's title among them, count
double; words of asking count nothing), each weighted by how rare it is among the passages,
with a bonus when the passage's heading matches. Pages (one page whatever its links look
like) are quoted in retrieval's order, three sections at most, the weak ones left out
(retrieval's best page never): from each, its first section's best unit with the code
example, explanation or steps that belong with it; a later section of the same page that
matches the question better follows it, or replaces it when it scores twice as high. Each is
cited as ``[n]`` like a model would. A table is quoted compacted (no padding), whole when it
fits, else its header and the rows that match best, in the table's order; a quote never ends
on a lead-in ("…as follows:") whose list or code isn't quoted.

It abstains (returns no text, so the engine says it couldn't find the answer) when no unit
shares a meaningful term with the question, or when the question is about a product the
passages never name ("What is Strapi's GraphQL depth limit?" asked of Payload's docs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, AsyncIterator, Callable

from engine.index.keywords import keyword_terms
from engine.llm.base import ContextPassage, Generation, GenerationRequest, StreamEvent, estimate_tokens
from engine.markdown import FENCE, split_blocks

if TYPE_CHECKING:
    from engine.llm.registry import ProviderKind

MAX_PASSAGES = 3
MAX_PASSAGE_CHARS = 1200  # what one page's quote aims at; a whole unit may run to twice that
#: A page is quoted only when its best unit scores at least this share of the best page's.
RELATIVE_FLOOR = 0.3
HEADING_WEIGHT = 1.5
#: A page's later section replaces its first when it scores this many times higher (else it follows it).
SECTION_SWITCH = 2.0
#: A row of a table too long to quote whole is kept when it scores at least this share of the best row's.
ROW_FLOOR = 0.3

_LIST_ITEM = re.compile(r"^\s{0,3}([-*+]|\d{1,9}[.)])\s")
_TABLE_ROW = re.compile(r"^\s*\|")
#: A line that names what follows it: a Markdown heading, or a whole line in bold ("**`local`**").
_SUBHEADING = re.compile(r"#{1,6}\s.*|\*\*[^*\n]+\*\*")
_CAPITALISED = re.compile(r"(?<![\w.@/-])([A-Z][\w.-]*[A-Za-z0-9])(['’]s)?(?![\w/])")
#: Words before a name that make the question *about* that name ("in Django", "does Contentful").
_SUBJECT_CUES = {"in", "does", "do", "did", "is", "are", "about"}
_SENTENCE = re.compile(r"[^.?!\n]*\?")
#: Words of how people ask that say nothing about what they ask (the keyword index keeps them).
_ASKING = set(keyword_terms(
    "how do does did done what which why when where who whom can could would should will shall may might must is are "
    "was were be been am way ways some any anyone someone something anything there here have has had get got want "
    "wanted need needed know knows trying try tried thing things just also really possible best better good hi hello "
    "hey thanks thank please help idea ideas one else still already currently now then after before again cheers "
    "able like make sure i me my you your we our us they them it its this that these those a an the of to in on at "
    "by for from with about into as or and but if so not no yes"
))


@dataclass
class Unit:
    text: str
    kind: str  # prose | list | table | code | lead (prose ending in ":" that introduces what follows) | heading


def _kind(paragraph: str) -> str:
    first = paragraph.lstrip().split("\n", 1)[0]
    if FENCE.match(first):
        return "code"
    if _TABLE_ROW.match(first):
        return "table"
    if _LIST_ITEM.match(first):
        return "list"
    if "\n" not in paragraph.strip() and _SUBHEADING.fullmatch(paragraph.strip()):
        return "heading"
    return "lead" if paragraph.rstrip().endswith(":") else "prose"


def units_of(text: str) -> list[Unit]:
    """The passage as whole units: a loose list is one list, a lead-in carries what it introduces."""
    units: list[Unit] = []
    for paragraph in split_blocks(text):
        kind = _kind(paragraph)
        previous = units[-1] if units else None
        if previous and previous.kind == "heading":
            previous.text += "\n\n" + paragraph  # a subheading and what it names are one unit
            previous.kind = kind
        elif previous and kind == "list" and previous.kind == "list":
            previous.text += "\n\n" + paragraph  # the items of a loose list
        elif previous and previous.kind == "list" and kind in {"code", "table"} and previous.text.rstrip().endswith(":"):
            previous.text += "\n\n" + paragraph  # "1. Add the following code to `server.ts`:" and the code
        elif previous and previous.kind == "lead" and kind not in {"prose", "heading"}:
            previous.text += "\n\n" + paragraph  # "…via two ways:" and the ways
            previous.kind = f"lead+{kind}"
        elif previous and previous.kind.startswith("lead+") and kind == "code" and previous.kind != "lead+code":
            previous.text += "\n\n" + paragraph
        else:
            units.append(Unit(paragraph, kind))
    return units


def question_weights(question: str) -> dict[str, float]:
    """The question's terms, those of the sentences that ask ("…?") counting double: the rest is context."""
    weights = {t: 1.0 for t in keyword_terms(question)}
    for sentence in _SENTENCE.findall(question):
        weights.update({t: 2.0 for t in keyword_terms(sentence)})
    return {t: w for t, w in weights.items() if t not in _ASKING}


def _weights(question: dict[str, float], texts: list[str]) -> dict[str, float]:
    """A question term's weight over the number of passages that hold it (rare terms say more)."""
    held = [set(keyword_terms(t)) for t in texts]
    weights = {}
    for term, weight in question.items():
        n = sum(term in terms for terms in held)
        weights[term] = weight / n if n else 0.0
    return weights


def _score(text: str, weights: dict[str, float]) -> float:
    terms = set(keyword_terms(text))
    matched = sum(w for t, w in weights.items() if t in terms)
    damping: float = (1 + len(terms)) ** 0.25
    return matched / damping


def _compact_row(row: str) -> str:
    """A table row without the padding that aligns its cells in the source (Markdown renders it the same)."""
    if set(row.strip()) <= set("|-: "):
        return re.sub(r"-{3,}", "---", re.sub(r"[ \t]{2,}", " ", row.strip()))
    return re.sub(r"[ \t]{2,}", " ", row.strip())


def _table_excerpt(table: str, weights: dict[str, float], max_chars: int, whole_within: int = 0) -> str:
    """The table compacted: whole when it fits ``whole_within`` characters, else its header and, within about
    ``max_chars``, the rows that match the question nearly as well as the best one by the words that tell rows
    apart (the first rows when none matches), each whole and in the table's own order, and a note of how many
    rows were left out."""
    lines = [_compact_row(line) for line in table.split("\n") if line.strip()]
    head, rows = lines[:2], lines[2:]
    if sum(len(line) + 1 for line in lines) <= max(max_chars, whole_within):
        return "\n".join(lines)
    # A word in most rows is what the whole table is about: it can't tell which row answers.
    held = [set(keyword_terms(row)) for row in rows]
    telling = {t: w for t, w in weights.items() if sum(t in terms for terms in held) * 2 <= len(rows)}
    scores = [_score(row, telling) for row in rows]
    top = max(scores, default=0.0)
    # The rows that match nearly as well as the best one; the first rows when none matches.
    candidates = sorted((i for i in range(len(rows)) if top > 0 and scores[i] >= ROW_FLOOR * top),
                        key=lambda i: -scores[i]) or range(len(rows))
    kept: set[int] = set()
    size = sum(len(line) + 1 for line in head)
    for i in candidates:
        if kept and size + len(rows[i]) > max_chars:
            continue  # a shorter row that matches less may still fit
        kept.add(i)
        size += len(rows[i]) + 1
    omitted = len(rows) - len(kept)
    note = [f"\n({omitted} more row{'s' if omitted != 1 else ''} in the source)"] if omitted else []
    return "\n".join(head + [rows[i] for i in sorted(kept)] + note)


def _shorten(unit: Unit, weights: dict[str, float], max_chars: int) -> str:
    """A unit within about ``max_chars``, cut only between whole rows, items or sentences."""
    if "table" in unit.kind:  # its tables compacted, and cut to the rows that match when still too long
        return "\n\n".join(_table_excerpt(p, weights, max_chars) if _kind(p) == "table" else p
                             for p in split_blocks(unit.text))
    if len(unit.text) <= max_chars * 2 or unit.kind == "code":
        return unit.text
    if unit.kind in {"prose"}:
        sentences = re.split(r"(?<=[.!?])\s+", unit.text)
        kept: list[str] = []
        size = 0
        for sentence in sentences:
            if kept and size + len(sentence) > max_chars:
                break
            kept.append(sentence)
            size += len(sentence) + 1
        return " ".join(kept) + (" …" if len(kept) < len(sentences) else "")
    return unit.text  # a list or a lead with its list: whole, as the steps must be


def _with_companions(units: list[Unit], i: int) -> list[int]:
    """Unit ``i`` and the unit that belongs with it: the explanation an example follows, the example an
    explanation introduces, the steps a paragraph leads to."""
    unit = units[i]
    if unit.kind == "code" and i > 0 and units[i - 1].kind in {"prose", "lead"}:
        return [i - 1, i]  # the explanation an example belongs to
    if unit.kind.startswith("lead+") and len(unit.text.split("\n\n", 1)[0]) < 40 and i > 0 \
            and units[i - 1].kind == "prose":
        return [i - 1, i]  # "Example:" and its code need the explanation before them
    if unit.kind in {"prose", "list"} and i + 1 < len(units) and units[i + 1].kind == "code":
        return [i, i + 1]  # a code example right after an explanation belongs with it
    if unit.kind == "prose" and i + 1 < len(units) and units[i + 1].kind in {"list", "lead+list"}:
        return [i, i + 1]  # the steps or items a paragraph introduces, whole
    return [i]


def quote(question_terms: set[str] | dict[str, float], text: str, max_chars: int = MAX_PASSAGE_CHARS) -> tuple[str, float]:
    """The best unit of ``text`` (and the code example that belongs with it) and its score."""
    weights = question_terms if isinstance(question_terms, dict) else {t: 1.0 for t in question_terms}
    units = units_of(text)
    if not units:
        return "", 0.0
    scores = [_score(u.text, weights) if u.kind not in {"lead", "heading"} else 0.0 for u in units]  # a bare lead-in says nothing
    best = max(range(len(units)), key=lambda i: scores[i])
    if scores[best] <= 0:
        return "", 0.0
    chosen = _with_companions(units, best)
    size = sum(len(units[i].text) for i in chosen)
    # Room left: the next best units, whole and with what belongs with them, in their original order.
    for i in sorted(range(len(units)), key=lambda i: -scores[i]):
        if i in chosen or scores[i] < 0.6 * scores[best] or units[i].kind in {"lead", "heading"}:
            continue
        more = [j for j in _with_companions(units, i) if j not in chosen]
        if size + sum(len(units[j].text) for j in more) > max_chars:
            continue
        chosen += more
        size += sum(len(units[j].text) for j in more)
    parts = [_shorten(units[i], weights, max_chars) for i in sorted(chosen)]
    if parts and parts[-1].rstrip().endswith(":"):
        parts[-1] = _without_dangling_lead(parts[-1])  # what it introduces is not quoted
    passage = "\n\n".join(p for p in parts if p)
    return passage, scores[best] if passage else 0.0


def _without_dangling_lead(text: str) -> str:
    """``text`` less its last sentence, which ends in ":" and introduces something that isn't there."""
    head, _, last = text.rstrip().rpartition("\n")
    sentences = re.split(r"(?<=[.!?])\s+", last)
    kept = " ".join(sentences[:-1]).rstrip()
    if kept and not re.fullmatch(r"\s*([-*+]|\d{1,9}[.)])", kept):
        return f"{head}\n{kept}" if head else kept
    return head.rstrip() if head and not head.rstrip().endswith(":") else ""


def best_passage(question_terms: set[str], text: str, max_chars: int = MAX_PASSAGE_CHARS) -> str:
    """The units of ``text`` that best match the question, whole and in their original order."""
    return quote(set(question_terms) - _ASKING, text, max_chars)[0]


def foreign_subject(question: str, passages: list[ContextPassage]) -> str | None:
    """A name the question is about ("Strapi's …", "… in Django …") that no passage mentions, or None.

    Only the question's own questions (sentences ending in "?") are read, and only a capitalised
    name in the subject's place counts: "import posts from Wordpress" is about importing."""
    known = "\n".join(f"{p.title}\n{p.text}" for p in passages).lower()
    for sentence in _SENTENCE.findall(question):
        for match in _CAPITALISED.finditer(sentence):
            name = match.group(1)
            before = sentence[: match.start()].split()
            if not before:
                continue  # the sentence's first word is capitalised anyway
            cue = before[-1].lower() in _SUBJECT_CUES or match.group(2) is not None
            parts = re.findall(r"[A-Z][a-z]{3,}", name)  # "PayloadCMS" is Payload's own name
            if cue and name.lower() not in known and not (parts != [name] and any(re.search(rf"\b{p.lower()}\b", known) for p in parts)):
                return name
    return None


def page_of(passage: ContextPassage) -> str:
    """The page a passage comes from: its path; else its link without the part that names lines or a heading
    ("…/page.mdx?lines=40-60#L40" and "…/page.mdx#usage" are one page)."""
    return passage.path or re.split(r"[?#]", passage.url, maxsplit=1)[0]


class ExtractiveProvider:
    name = "extractive"
    context_window = 1_000_000

    async def generate(self, request: GenerationRequest) -> Generation:
        return Generation(self.answer_text(request.question or request.prompt, list(request.context)), self.name, "stop")

    @staticmethod
    def answer_text(question: str, context: list[ContextPassage]) -> str:
        """The quoted answer, or "" to abstain."""
        if not context or foreign_subject(question, context):
            return ""
        weights = _weights(question_weights(question), [f"{p.title}\n{p.text}" for p in context])
        first_of_page: dict[str, tuple[float, int, str, ContextPassage]] = {}
        better: dict[str, tuple[float, int, str, ContextPassage]] = {}  # a later section that beats the first
        for rank, passage in enumerate(context):
            quoted, score = quote(weights, passage.text)
            if not quoted:
                continue
            heading = passage.title.split(" › ", 1)[1] if " › " in passage.title else ""
            score += HEADING_WEIGHT * _score(heading, weights) if heading else 0.0
            page = page_of(passage)
            if page not in first_of_page:
                first_of_page[page] = (score, rank, quoted, passage)
            elif score > max(first_of_page[page][0], better.get(page, (0.0,))[0]):
                better[page] = (score, rank, quoted, passage)
        if not first_of_page:
            return ""
        top = max(v[0] for v in (*first_of_page.values(), *better.values()))
        # Pages in retrieval's order (it knows more than shared words: meaning, the title), weak ones left out;
        # a page's first section, then the one of its sections that matches the question better, if any.
        picked = []
        for page, first in sorted(first_of_page.items(), key=lambda item: item[1][1]):
            other = better.get(page)
            if other is not None and other[0] >= SECTION_SWITCH * first[0]:
                # The first section only shared a word or two with the question: the page is quoted by the other.
                first, other = (other[0], first[1], other[2], other[3]), None
            picked += [v for v in (first, other)
                       if v is not None and (v[1] == 0 or v[0] >= RELATIVE_FLOOR * top)]  # retrieval's best page stays
        sections = [f"**{p.title}** [{p.number}]\n{quoted}" for _, _, quoted, p in picked[:MAX_PASSAGES]]
        return "Here is what the documentation says:\n\n" + "\n\n".join(sections)

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


def register_providers(register: Callable[[ProviderKind], None]) -> None:
    """The offline answerer: no model, no key; it ends every fallback chain by itself (engine.llm.chain)."""
    from engine.llm.registry import ProviderKind

    register(ProviderKind("extractive", "extractive", lambda _model, _settings: ExtractiveProvider(),
                          takes_model=False, last_resort=True))
