"""The GitHub App's Prometheus series, on the registry it is given (the engine's, when they share a process).

Names and labels are the ones the engine used to define (dashboards keep working):
``firstreply_github_deliveries_total{event,outcome}``, ``firstreply_github_jobs_total{kind,result}`` and
``firstreply_github_queue_jobs{status}`` (read from the queue at scrape time).
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Gauge

_ON: WeakKeyDictionary[CollectorRegistry, "GitHubMetrics"] = WeakKeyDictionary()


class GitHubMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.webhook_deliveries = Counter("firstreply_github_deliveries_total", "GitHub webhook deliveries by outcome",
                                          ["event", "outcome"], registry=registry)
        self.github_jobs = Counter("firstreply_github_jobs_total", "GitHub jobs run, by kind and result", ["kind", "result"],
                                   registry=registry)
        self.github_queue = Gauge("firstreply_github_queue_jobs", "GitHub jobs in the queue, by status", ["status"],
                                  registry=registry)

    @classmethod
    def on(cls, registry: CollectorRegistry | None = None) -> "GitHubMetrics":
        """The App's series on ``registry`` (a fresh one when None), registered once however many Apps share it."""
        if registry is None:
            return cls(CollectorRegistry())
        if registry not in _ON:
            _ON[registry] = cls(registry)
        return _ON[registry]
