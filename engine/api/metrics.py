"""Prometheus metrics for the engine: requests, latencies, answers, abstentions, provider errors."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

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

    def answered(self, answer, channel: str) -> None:
        self.answers.labels(channel, answer.model, str(answer.abstained).lower()).inc()
        if answer.abstained:
            self.abstentions.labels(channel).inc()
        for reason in answer.fallback_reasons:
            self.provider_errors.labels(reason.split(" ", 1)[0].rstrip(":")).inc()
        self.answer_latency.labels(channel).observe(answer.latency_ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)
