"""Page-level retrieval metrics (Recall@k, MRR@10) over labelled questions.

Ranked chunks are collapsed to distinct pages in rank order; Recall@k is the share of a
question's relevant pages found in the top k pages, MRR@10 the reciprocal rank of the first
relevant page within ten. Figures are averaged over the questions that have labels.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any, Callable, Sequence, TypedDict

from engine.index.retriever import collapse_to_pages

CUTOFFS = (1, 3, 5, 10)


class EvalDataError(ValueError):
    """The queries or qrels file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class LabelledQuery:
    id: str
    question: str
    title: str | None
    relevant: frozenset[str]


def load_queries(queries_path: Path, qrels_path: Path) -> list[LabelledQuery]:
    relevant: dict[str, set[str]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if not reader.fieldnames or not {"query-id", "doc-path"} <= set(reader.fieldnames):
            raise EvalDataError(f"{qrels_path}: needs a header with 'query-id' and 'doc-path' columns")
        for row in reader:
            if row["query-id"] and row["doc-path"]:
                relevant.setdefault(row["query-id"].strip(), set()).add(row["doc-path"].strip())
    queries = []
    with queries_path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                query_id, question = str(record["id"]), str(record["question"])
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise EvalDataError(f"{queries_path}:{number}: expected JSON with 'id' and 'question' ({error})") from None
            if query_id in relevant:
                queries.append(LabelledQuery(query_id, question, record.get("title"), frozenset(relevant[query_id])))
    if not queries:
        raise EvalDataError(f"no question in {queries_path} has a label in {qrels_path}")
    return queries


def recall_at(pages: Sequence[str], relevant: frozenset[str], k: int) -> float:
    return len(relevant & set(pages[:k])) / len(relevant)


def reciprocal_rank(pages: Sequence[str], relevant: frozenset[str], k: int = 10) -> float:
    return next((1.0 / rank for rank, page in enumerate(pages[:k], start=1) if page in relevant), 0.0)


class QueryScore(TypedDict):
    """How retrieval did on one labelled question."""

    id: str
    recall: dict[int, float]  # by cutoff
    rr: float  # reciprocal rank of the first relevant page within 10
    top: list[str]  # the first five pages
    relevant: list[str]


@dataclass
class RetrievalReport:
    queries: int
    recall: dict[int, float]
    mrr_at_10: float
    per_query: list[QueryScore] = field(default_factory=list)

    def as_dict(self, with_queries: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"queries": self.queries, **{f"recall@{k}": round(v, 4) for k, v in self.recall.items()},
                "mrr@10": round(self.mrr_at_10, 4)}
        if with_queries:
            data["per_query"] = self.per_query
        return data


def evaluate(queries: list[LabelledQuery], ranked_paths: Callable[[LabelledQuery], list[str]]) -> RetrievalReport:
    """Score a ranking function (question -> chunk paths in rank order) on labelled questions."""
    per_query: list[QueryScore] = []
    for query in queries:
        pages = collapse_to_pages(ranked_paths(query))
        per_query.append({
            "id": query.id,
            "recall": {k: recall_at(pages, query.relevant, k) for k in CUTOFFS},
            "rr": reciprocal_rank(pages, query.relevant),
            "top": pages[:5],
            "relevant": sorted(query.relevant),
        })
    return RetrievalReport(
        queries=len(queries),
        recall={k: mean(q["recall"][k] for q in per_query) for k in CUTOFFS},
        mrr_at_10=mean(q["rr"] for q in per_query),
        per_query=per_query,
    )
