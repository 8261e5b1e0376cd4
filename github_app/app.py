"""``GitHubApp``: the App in one object: receive deliveries, queue them, run the workers, approve drafts.

It runs inside ``firstreply serve`` (sharing the engine's database) or alone under
``firstreply github-app`` (asking a remote engine over HTTP, or one in the same process).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from engine.metrics import Metrics
from github_app import sansio
from github_app.api import GitHubClient
from github_app.config import AppConfig
from github_app.handlers import Handlers, Reingest
from github_app.metrics import GitHubMetrics
from github_app.models import GitHubReply
from github_app.review import GitHubReview
from github_app.store import GitHubStore
from github_app.worker import Worker

log = logging.getLogger(__name__)
HTTP_TIMEOUT_SECONDS = 30
BURST_QUIET_SECONDS = 0.05  # a worker starts new work once no delivery arrived for this long…
BURST_DEFER_SECONDS = 5.0  # …or after this long at most


class GitHubApp:
    def __init__(self, config: AppConfig, answerer, metrics: Metrics | None = None, reingest: Reingest | None = None) -> None:
        """``metrics``: the engine's, when it runs in this process (the default: the in-process engine's); the App
        adds its ``firstreply_github_*`` series to that registry, or keeps them in its own. ``reingest``: what
        brings a knowledge base up to date after a push (given by whoever holds the engine: ``firstreply serve``)."""
        self.config = config
        self.answerer = answerer
        self.reingest = reingest
        # None for a remote engine (EngineClient): the App keeps its series in its own registry then
        self.engine_metrics = metrics if metrics is not None else answerer.metrics
        self.metrics = GitHubMetrics.on(self.engine_metrics.registry if self.engine_metrics is not None else None)
        self.store: GitHubStore | None = None
        self.client: GitHubClient | None = None
        self.handlers: Handlers | None = None
        self._session: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._last_delivery = float("-inf")  # loop time of the newest delivery received

    async def start(self, store: GitHubStore, *, workers: bool = True) -> "GitHubApp":
        self.store = store
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS))
        self.client = GitHubClient(self.config, self._session)
        self.handlers = Handlers(self.config, store, self.client, self.answerer, self.reingest)
        if self.engine_metrics is not None:
            self.engine_metrics.on_scrape(self.count_queue)
        if workers:
            self._tasks = [asyncio.create_task(self.worker(f"w{i}").run_forever(), name=f"github-worker-{i}")
                           for i in range(self.config.workers)]
        return self

    async def count_queue(self) -> None:
        """Set the queue gauge from the database (at scrape time)."""
        if self.store is None or self._session is None or self._session.closed:
            return  # not started, or closed
        for status, count in (await self.store.count_by_status()).items():
            self.metrics.github_queue.labels(status).set(count)

    def review_extension(self) -> GitHubReview:
        """The App's part of the engine's review pages; posting a draft from there wakes this App's workers."""
        assert self.store is not None, "start() first"
        return GitHubReview(self.store, wake=self.wake)

    def worker(self, name: str | None = None) -> Worker:
        assert self.store is not None and self.handlers is not None, "start() first"
        return Worker(self.config, self.store, self.handlers, self._wake, name, metrics=self.metrics,
                      before_claim=self.yield_to_deliveries)

    async def yield_to_deliveries(self) -> None:
        """Let a burst of deliveries be acknowledged first: before a worker takes a new job, wait while
        deliveries keep arriving (each acknowledgement shares the event loop with answering), for at most
        ``BURST_DEFER_SECONDS``, so a steady stream never starves the workers. Jobs already running go on."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BURST_DEFER_SECONDS
        while loop.time() < deadline and loop.time() - self._last_delivery < BURST_QUIET_SECONDS:
            await asyncio.sleep(BURST_QUIET_SECONDS / 2)

    def wake(self) -> None:
        """Tell idle workers there is work (they also poll, for work queued by other processes)."""
        self._wake.set()

    async def retry(self, job_id: int) -> bool:
        """Give a failed job a fresh round of attempts; False if no failed job has that id."""
        assert self.store is not None
        if not await self.store.requeue(job_id):
            return False
        self.wake()
        return True

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()

    async def receive(self, headers, body: bytes) -> tuple[int, dict]:
        """Check and acknowledge one delivery: (HTTP status, JSON body). Queued work starts at once."""
        assert self.store is not None
        self._last_delivery = asyncio.get_running_loop().time()
        try:
            event = sansio.parse_delivery(headers, body, self.config.webhook_secret)
        except sansio.Rejected as rejected:
            log.warning("webhook delivery %r rejected (%s): %s", str(headers.get("x-github-delivery", "?"))[:100],
                        rejected.status, rejected.reason)
            # Metric labels only from a verified delivery, and only known event names: an unsigned sender
            # must not be able to add series to /metrics.
            label = "unverified" if rejected.status == 401 else sansio.event_label(headers.get("x-github-event"))
            self.metrics.webhook_deliveries.labels(label, f"rejected_{rejected.status}").inc()
            return rejected.status, {"error": rejected.reason}
        routed = sansio.route(event.event, event.data, self.config.slug, self.config.sources)
        if routed.kind is None:
            self.metrics.webhook_deliveries.labels(sansio.event_label(event.event), "ignored").inc()
            return 200, {"status": "pong" if event.event == "ping" else "ignored", "reason": routed.reason}
        job = await self.store.enqueue(event.delivery_id, event.event, event.data.get("action"), routed.kind, event.data,
                                       sansio.job_key(event.event, event.data))
        if job is None:
            log.info("delivery %s was already received; not processed again", event.delivery_id)
            self.metrics.webhook_deliveries.labels(event.event, "duplicate").inc()
            return 200, {"status": "duplicate", "delivery": event.delivery_id}
        self.metrics.webhook_deliveries.labels(event.event, "queued").inc()
        self.wake()
        return 202, {"status": "queued", "job": job}

    async def approve(self, reply_id: int, by: str, body: str | None = None) -> GitHubReply | None:
        """Approve a draft (optionally corrected) and queue it for posting; None if there is no such reply,
        :class:`github_app.store.ReplyConflict` if it isn't a draft (already approved, posted…)."""
        assert self.store is not None
        reply = await self.store.approve_reply(reply_id, by, body)
        if reply is not None:
            self.wake()
        return reply
