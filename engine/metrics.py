"""Prometheus metrics, one registry per engine: HTTP, answers, every stage of answering (retrieval,
provider), Discord events and tuning jobs.

A frontend in the same process adds its own series to :attr:`Metrics.registry` (the GitHub App: its deliveries,
jobs and queue, in ``github_app.metrics``), and gauges it reads at scrape time through :meth:`Metrics.on_scrape`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from engine.answer.model import Answer

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("firstreply_http_requests_total", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram("firstreply_http_request_seconds", "HTTP request latency", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.answers = Counter("firstreply_answers_total", "Answers given", ["channel", "model", "abstained"], registry=self.registry)
        self.abstentions = Counter("firstreply_abstentions_total", "Answers where the engine abstained", ["channel"],
                                   registry=self.registry)
        self.provider_errors = Counter("firstreply_provider_errors_total", "Provider calls that failed and fell back",
                                       ["provider"], registry=self.registry)
        self.answer_latency = Histogram("firstreply_answer_seconds", "Time to answer, retrieval to log", ["channel"],
                                        buckets=LATENCY_BUCKETS, registry=self.registry)
        self.retrieval_latency = Histogram("firstreply_retrieval_seconds", "Hybrid retrieval for one question",
                                           buckets=LATENCY_BUCKETS, registry=self.registry)
        self.provider_latency = Histogram("firstreply_provider_seconds", "Provider chain time for one answer", ["provider"],
                                          buckets=LATENCY_BUCKETS, registry=self.registry)
        self.retrieval_steps = Counter("firstreply_retrieval_steps_total",
                                       "Model-assisted retrieval steps (rewrite, hyde, rerank), by outcome: used, "
                                       "timeout, error, garbled", ["step", "outcome"], registry=self.registry)
        self.discord_events = Counter("firstreply_discord_events_total", "Discord events the bot handled", ["event"],
                                      registry=self.registry)
        self.tuning_jobs = Gauge("firstreply_tuning_jobs", "Tuning jobs, by status", ["status"], registry=self.registry)
        self._scrape_hooks: list[Callable[[], Awaitable[None]]] = []

    def on_scrape(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Have ``hook`` awaited before each scrape (it sets gauges read from a database, e.g. a queue's length)."""
        self._scrape_hooks.append(hook)

    async def refresh(self) -> None:
        """Run the scrape hooks: what ``/metrics`` does before :meth:`render`."""
        for hook in self._scrape_hooks:
            await hook()

    def answered(self, answer: Answer, channel: str) -> None:
        self.answers.labels(channel, answer.model, str(answer.abstained).lower()).inc()
        if answer.abstained:
            self.abstentions.labels(channel).inc()
        for reason in answer.fallback_reasons:
            self.provider_errors.labels(reason.split(" ", 1)[0].rstrip(":")).inc()
        self.answer_latency.labels(channel).observe(answer.latency_ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)
