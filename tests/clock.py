"""A clock for the services in tests, instead of sleeping between two timestamps."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

TICK = timedelta(milliseconds=1)


class FakeClock:
    """The real time, moved on by ``advance``, and never the same instant twice: a reading
    is at least ``TICK`` after the one before. So two events get different timestamps, and a
    reading taken between them lies strictly between, without sleeping; and a test makes
    things "older than now" (gc's grace, retention) by advancing the clock, not by waiting.
    Readings may run a few ticks ahead of ``datetime.now()``: compare them with each other."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.last = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()  # a live server reads it from its own thread

    def __call__(self) -> datetime:
        with self._lock:
            self.last = max(datetime.now(UTC) + self.offset, self.last + TICK)
            return self.last

    def advance(self, by: timedelta = timedelta(seconds=1)) -> None:
        with self._lock:
            self.offset += by
