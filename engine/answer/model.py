"""The question every frontend asks and the answer the engine gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.store.text import text_problem  # a question must be text the tokenizer and the store take

if TYPE_CHECKING:  # not imported at run time: `firstreply ask` reads a served answer without numpy
    from engine.index.retriever import Hit

CHANNELS = ("discord", "github", "api", "web")


@dataclass(frozen=True)
class Question:
    text: str
    channel: str = "api"  # discord | github | api | web
    conversation_id: str | None = None  # a Discord thread, a GitHub discussion node id
    user_id: str | None = None  # stored only as a salted hash
    title: str | None = None
    kb: str | None = None
    request_id: str | None = None
    link: str | None = None  # where it was asked: a Discord message, a GitHub discussion or comment

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
        for name in ("text", "conversation_id", "user_id", "title", "link"):
            value = getattr(self, name)
            problem = text_problem(value) if isinstance(value, str) else None
            if problem:  # refused here, before it can reach (and spoil) a batch shared with other questions
                raise ValueError(f"the question's {name} {problem}")


@dataclass(frozen=True, slots=True)
class Citation:
    number: int
    title: str
    url: str
    path: str
    heading: str = ""

    def label(self) -> str:
        return f"{self.title} › {self.heading}" if self.heading else self.title


@dataclass
class Answer:
    text: str
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    confidence: float = 0.0
    model: str = "extractive"
    id: str | None = None
    conversation_id: str | None = None
    escalation: str | None = None  # what to do next when the engine abstained
    latency_ms: int = 0
    fallback_reasons: list[str] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "model": self.model,
            "conversation_id": self.conversation_id,
            "escalation": self.escalation,
            "latency_ms": self.latency_ms,
            "fallback_reasons": self.fallback_reasons,
            "citations": [
                {"number": c.number, "title": c.title, "heading": c.heading, "url": c.url, "path": c.path}
                for c in self.citations
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Answer":
        return cls(
            text=data["text"], abstained=data["abstained"], confidence=data["confidence"], model=data["model"],
            id=data.get("id"), conversation_id=data.get("conversation_id"), escalation=data.get("escalation"),
            latency_ms=data.get("latency_ms", 0), fallback_reasons=list(data.get("fallback_reasons", [])),
            citations=[Citation(c["number"], c["title"], c["url"], c.get("path", ""), c.get("heading", "")) for c in data["citations"]],
        )
