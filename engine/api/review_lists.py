"""What the review lists show beyond the rows themselves: the filters a query string asks for,
repeated questions folded into one row, where an audit event's target lives, and the tuning form's
request. Pure functions over plain data and records, no I/O; the pages (:mod:`engine.api.pages`)
and ``/api/v1/answers`` (:mod:`engine.api.review_api`) call them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from engine.answer.model import CHANNELS
from engine.api.http import page_number
from engine.store.models import AnswerRecord
from engine.store.review import VERDICTS, AnswerFilter


def question_key(question: str) -> str:
    """Questions that differ only in case, spacing or a trailing ? are the same question asked again."""
    return " ".join(question.lower().split()).rstrip(" ?!.")


@dataclass
class QuestionGroup:
    """The first row (in the list's order) of a question, and the other answers to the same question."""
    row: AnswerRecord
    repeats: list[AnswerRecord] = field(default_factory=list)

    @property
    def times(self) -> int:
        return 1 + len(self.repeats)


def group_repeats(rows: list[AnswerRecord]) -> list[QuestionGroup]:
    """One group per distinct question on the page, in the order its first row came."""
    groups: dict[str, QuestionGroup] = {}
    for row in rows:
        key = question_key(row.question)
        if key in groups:
            groups[key].repeats.append(row)
        else:
            groups[key] = QuestionGroup(row)
    return list(groups.values())


def audit_link(action: str, target: str | None) -> str | None:
    """The review page an audit event's target is shown on, if it has one."""
    if not target:
        return None
    kind = action.split(".", 1)[0]
    if kind in ("answer", "github"):
        return f"/review/answers/{target}"
    if kind == "golden" and target.isdigit():
        return f"/review/golden/{target}"
    if kind == "model":
        return "/review/tuning"
    return None


class TuningFormError(ValueError):
    """The tuning form was filled in a way no job can be made from; the message says how."""


def tuning_request(form: Mapping[str, object]) -> tuple[str, dict[str, Any]]:
    """The tuning page's form as ``TuningService.create``'s alias and ``base_llm``; it checks them further."""
    alias = str(form.get("alias") or "").strip()
    provider = str(form.get("provider") or "").strip()
    model = str(form.get("model") or "").strip()
    parameters: dict[str, Any] = {}
    epochs = str(form.get("epochs") or "").strip()
    if epochs:
        if not epochs.isdigit() or len(epochs) > 6:
            raise TuningFormError("epochs is a whole number, or empty for the provider's default")
        parameters["n_epochs"] = int(epochs)
    return alias, {"model_provider": provider, "model_name": model, "model_parameters": parameters}


def _flag(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


def kb_query(query: Mapping[str, str]) -> str | None:
    from engine.config import KB_NAME

    value = query.get("kb")
    return value if isinstance(value, str) and KB_NAME.match(value) else None


def answer_filter(query: Mapping[str, str]) -> AnswerFilter:
    """The list's filters from a query string; anything unknown is ignored, not an error."""
    page = page_number(query.get("page"))
    return AnswerFilter(
        channel=query.get("channel") if query.get("channel") in CHANNELS else None,
        verdict=query.get("verdict") if query.get("verdict") in VERDICTS else None,
        votes=query.get("votes") if query.get("votes") in ("down", "up", "none") else None,
        abstained=_flag(query.get("abstained")), accepted=_flag(query.get("accepted")),
        text=(query.get("q") or "").strip()[:200] or None, kb=kb_query(query),
        order="newest" if query.get("order") == "newest" else "down", page=page,
    )
