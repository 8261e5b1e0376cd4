"""The answer the engine returns to every frontend."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.index.retriever import Hit


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
    hits: list[Hit] = field(default_factory=list)
    model: str = "extractive"

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "model": self.model,
            "citations": [
                {"number": c.number, "title": c.title, "heading": c.heading, "url": c.url, "path": c.path}
                for c in self.citations
            ],
        }


def citation_for(number: int, hit: Hit) -> Citation:
    chunk = hit.chunk
    heading = chunk.heading_path[-1] if chunk.heading_path else ""
    return Citation(number, chunk.title, chunk.url, chunk.path, heading)
