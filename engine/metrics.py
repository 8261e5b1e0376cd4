"""Prometheus metrics, one registry per engine: HTTP, answers, every stage of answering (retrieval,
provider), the GitHub App's deliveries and queue, Discord events and tuning jobs."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
        self.webhook_deliveries = Counter("firstreply_github_deliveries_total", "GitHub webhook deliveries by outcome",
                                          ["event", "outcome"], registry=self.registry)
        self.github_jobs = Counter("firstreply_github_jobs_total", "GitHub jobs run, by kind and result", ["kind", "result"],
                                   registry=self.registry)
        self.github_queue = Gauge("firstreply_github_queue_jobs", "GitHub jobs in the queue, by status", ["status"],
                                  registry=self.registry)
        self.discord_events = Counter("firstreply_discord_events_total", "Discord events the bot handled", ["event"],
                                      registry=self.registry)
        self.tuning_jobs = Gauge("firstreply_tuning_jobs", "Tuning jobs, by status", ["status"], registry=self.registry)

    def answered(self, answer, channel: str) -> None:
        self.answers.labels(channel, answer.model, str(answer.abstained).lower()).inc()
        if answer.abstained:
            self.abstentions.labels(channel).inc()
        for reason in answer.fallback_reasons:
            self.provider_errors.labels(reason.split(" ", 1)[0].rstrip(":")).inc()
        self.answer_latency.labels(channel).observe(answer.latency_ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)
