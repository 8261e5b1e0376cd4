"""Per-user and per-channel rate limits for questions: sliding windows over recent asks."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable


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
        user_wait = self.per_user.wait(user_id)
        if user_wait:
            return user_wait
        channel_wait = self.per_channel.wait(channel_id)
        if channel_wait:
            self.per_user._hits[user_id].pop()  # not answered, so not counted against the user
        return channel_wait
