"""Per-user and per-channel rate limits for questions: sliding windows over recent asks, and at most one
"slow down" notice per user (or channel) for as long as the wait it announced."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Hashable

NOTICES_REMEMBERED = 10_000


@dataclass
class SlidingWindow:
    limit: int
    seconds: float
    clock: Callable[[], float] = time.monotonic
    _hits: dict[int, deque] = field(default_factory=dict)

    def wait(self, key: int) -> float:
        """0 if ``key`` may ask now (and count it), else seconds until it may."""
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= self.seconds:
            hits.popleft()
        if len(hits) >= self.limit:
            return self.seconds - (now - hits[0])
        hits.append(now)
        return 0.0


@dataclass
class QuestionLimits:
    per_user: SlidingWindow
    per_channel: SlidingWindow

    def check(self, user_id: int, channel_id: int) -> float:
        """0 if the question may be answered, else seconds to wait (nothing is counted then)."""
        return self.limited(user_id, channel_id)[0]

    def limited(self, user_id: int, channel_id: int) -> tuple[float, tuple[str, int] | None]:
        """``(0, None)`` if the question may be answered (and it is counted), else the seconds to wait and whose
        limit it hit: ``("user", id)`` or ``("channel", id)``."""
        user_wait = self.per_user.wait(user_id)
        if user_wait:
            return user_wait, ("user", user_id)
        channel_wait = self.per_channel.wait(channel_id)
        if channel_wait:
            self.per_user._hits[user_id].pop()  # not answered, so not counted against the user
            return channel_wait, ("channel", channel_id)
        return 0.0, None


@dataclass
class Notices:
    """At most one notice per key (a user, a channel) until the wait it announced is over: a user who keeps
    posting while limited is told once, not once per message."""

    clock: Callable[[], float] = time.monotonic
    _until: dict[Hashable, float] = field(default_factory=dict)

    def due(self, key: Hashable, seconds: float) -> bool:
        """True (and remembered for ``seconds``) if no notice for ``key`` is still standing."""
        now = self.clock()
        if self._until.get(key, float("-inf")) > now:
            return False
        if len(self._until) >= NOTICES_REMEMBERED:
            self._until = {k: until for k, until in self._until.items() if until > now}
        self._until[key] = now + seconds
        return True
