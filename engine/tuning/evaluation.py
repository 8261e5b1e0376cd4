"""Comparing two models on a tuning job's held-out slice, side by side, before one is activated.

Each model answers every held-out question through the real answer pipeline (retrieval, the
same prompt, abstention), with nothing logged. Scored: how close each answer is to the
maintainers' answer (cosine similarity of their embeddings), how often an answer cites its
sources, and how often the model abstains.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from engine.answer.model import Question
from engine.answer.pipeline import AnswerPipeline, PipelineSettings
from engine.tuning.dataset import Example


class _NothingLogged:
    """An evaluation's answers are not users' answers: no history, no log."""

    async def history(self, *_args, **_kwargs):
        return []

    async def log_answer(self, *_args, **_kwargs) -> None:
        return None


@dataclass
class Score:
    model: str
    questions: int
    similarity: float  # mean cosine similarity to the approved answers
    citation_rate: float  # share of (non-abstained) answers citing a source
    abstention_rate: float

    def as_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


async def score(chain, search, embedder, settings: PipelineSettings, examples: list[Example]) -> Score:
    pipeline = AnswerPipeline(search, chain, _NothingLogged(), settings)
    similarities, cited, abstained = [], 0, 0
    for example in examples:
        answer = await pipeline.answer(Question(example.question, channel="api"))
        if answer.abstained:
            abstained += 1
            similarities.append(0.0)
            continue
        cited += bool(answer.citations)
        vectors = np.asarray(embedder.encode([answer.text, example.output]), dtype=float)
        a, b = vectors[0], vectors[1]
        similarities.append(float(a @ b / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0)))
    n = len(examples) or 1
    answered = len(examples) - abstained
    return Score(chain.primary.name, len(examples), sum(similarities) / n, cited / answered if answered else 0.0,
                 abstained / n)
