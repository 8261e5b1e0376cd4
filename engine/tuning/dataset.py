"""Training sets from golden records: built as the live engine would prompt, validated, split, exported.

Each example's input is the question as the engine would send it: the same system instruction,
the passages retrieval finds for it (never the golden record's own chunk, which would hand the
model its answer), fenced as untrusted data. The ``plain`` variant is the bare question. The
output is the maintainers' answer. Validation drops what a provider would refuse, and says why.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable

from engine.answer.pipeline import passages_from
from engine.answer.prompt import SYSTEM_INSTRUCTION, build_prompt
from engine.index.golden import GOLDEN_PREFIX
from engine.llm.registry import TuningLimits, tuning_backend

if TYPE_CHECKING:
    from engine.index.retriever import Hit
    from engine.store.models import GoldenRecord

VARIANTS = ("rag", "plain")
PLAIN_SYSTEM = "You are firstreply, a helpful assistant answering questions from the community of an open-source project."


#: Each tunable provider's limits, as its module declares them in the provider registry.
LIMITS = TuningLimits()


def too_few_examples(provider: str, count: int, what: str) -> str | None:
    """Why ``count`` examples (``what`` they are) can't tune a ``provider`` model, or None when they are enough:
    the one minimum check, made before a job is queued and again on the examples left after validation."""
    minimum = LIMITS[provider].min_examples
    return None if count >= minimum else f"too few examples: {count} {what}, {provider} tuning needs at least {minimum}"


@dataclass(frozen=True)
class Example:
    record_id: int
    question: str
    system: str
    input: str
    output: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rough_tokens(text: str) -> int:
    return len(text) // 4


async def build_examples(records: Iterable[GoldenRecord], search: Callable[..., Awaitable[list[Hit]]], *,
                         variant: str = "rag", k: int = 5, budget: int = 6000,
                         count: Callable[[str], int] = _rough_tokens) -> list[Example]:
    """One example per golden record (``records``: objects with id, question, answer)."""
    examples = []
    for record in records:
        if variant == "plain":
            examples.append(Example(record.id, record.question.strip(), PLAIN_SYSTEM, record.question.strip(),
                                    record.answer.strip()))
            continue
        own = f"{GOLDEN_PREFIX}{record.id}"
        hits = [h for h in await search(record.question, k=k + 1) if h.chunk.path != own][:k]
        built = build_prompt(passages_from(hits), [], record.question.strip(), budget=budget, count=count)
        examples.append(Example(record.id, record.question.strip(), built.system or SYSTEM_INSTRUCTION, built.prompt,
                                record.answer.strip()))
    return examples


def validate(examples: list[Example], provider: str) -> tuple[list[Example], list[dict[str, Any]]]:
    """Keep what the provider accepts; every dropped example comes with its reason."""
    limits = LIMITS[provider]
    kept, dropped, seen = [], [], set()
    for example in examples:
        reason = None
        if not example.output.strip():
            reason = "empty answer"
        elif not example.input.strip():
            reason = "empty question"
        elif len(example.system) + len(example.input) > limits.max_input_chars:
            reason = f"input longer than {limits.max_input_chars} characters"
        elif len(example.output) > limits.max_output_chars:
            reason = f"answer longer than {limits.max_output_chars} characters"
        else:
            key = (example.input.strip().lower(), example.output.strip().lower())
            if key in seen:
                reason = "duplicate of an earlier example"
            seen.add(key)
        if reason:
            dropped.append({"record_id": example.record_id, "reason": reason})
        else:
            kept.append(example)
    return kept, dropped


def split_holdout(examples: list[Example], fraction: float) -> tuple[list[Example], list[Example]]:
    """A stable held-out slice: chosen by a hash of the record id, so reruns hold out the same records."""
    if fraction <= 0 or len(examples) < 2:
        return list(examples), []
    ranked = sorted(examples, key=lambda e: hashlib.sha256(str(e.record_id).encode()).hexdigest())
    held = max(1, round(len(examples) * fraction))
    heldout_ids = {e.record_id for e in ranked[:held]}
    return ([e for e in examples if e.record_id not in heldout_ids], [e for e in examples if e.record_id in heldout_ids])


def provider_rows(examples: list[Example], provider: str) -> list[dict[str, Any]]:
    """Each provider's own example shape: the dataset format its tuning backend declares."""
    return tuning_backend(provider).rows(examples)


def export(examples: list[Example], provider: str, fmt: str = "jsonl") -> str:
    rows = provider_rows(examples, provider)
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["input", "output"])
        for e in examples:
            writer.writerow([f"{e.system}\n\n{e.input}", e.output])
        return out.getvalue()
    raise ValueError("the format must be jsonl or csv")
