"""Metric points buffered in memory and sent in batches from a background thread.

Logging a metric must cost a training loop nothing: ``add`` only appends to a queue under
a lock. A daemon thread sends a batch when ``max_points`` are waiting or the oldest has
waited ``max_delay`` seconds. Points are sent oldest first, one batch at a time, so the
order per metric name is kept, and a point leaves the queue only once ``send`` returned:
when sending fails the points stay, the thread retries with growing pauses, and the next
``flush()`` or ``close()`` retries too and raises the error if it persists.

Nothing is lost on a normal exit or an uncaught exception: an ``atexit`` hook flushes every
buffer still open. The hook holds buffers weakly; a buffer dropped without ``close()`` is
drained by its thread, which then ends.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import logging
import numbers
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import NamedTuple

from modelkeep.errors import InvalidInput

logger = logging.getLogger(__name__)

MAX_NAME = 250
"""Characters in a metric name."""
MAX_STEP = 2**63 - 1
"""The largest step a database BIGINT holds."""
RETRY_DELAYS = (0.5, 2.0, 5.0)
"""Pauses in seconds between attempts to send a batch; the last one repeats in the
background until the server answers again."""
JOIN_TIMEOUT = 10.0
"""Seconds ``close`` waits for the thread to end (it is a daemon: it cannot hold up exit)."""

Send = Callable[[list["MetricPoint"]], None]


class MetricPoint(NamedTuple):
    """One point (a tuple: a training loop makes millions, and a frozen dataclass costs
    several times more to build)."""

    name: str
    step: int
    value: float
    """NaN and ±inf are allowed and kept as such."""
    at: float
    """When it was logged, in seconds since 1970 (UTC), as ``time.time()`` gives it."""

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)


def check_metric(
    name: str, value: object, step: object, *, at: datetime | None = None
) -> MetricPoint:
    """A valid point, or InvalidInput saying what is wrong and what the limit is."""
    when = time.time() if at is None else _utc(at).timestamp()
    # fast paths: a training loop logs the same few names with plain floats and ints
    if name not in _KNOWN_NAMES:
        _check_name(name)
        if len(_KNOWN_NAMES) < 10_000:
            _KNOWN_NAMES.add(name)
    number = value if type(value) is float else _check_value(name, value)
    whole = step if type(step) is int and 0 <= step <= MAX_STEP else _check_step(name, step)
    return MetricPoint(name, whole, number, when)


_KNOWN_NAMES: set[str] = set()
"""Names already checked (bounded): checking one costs more than the rest of a point."""


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidInput(f"a metric name must be text, not {type(name).__name__}")
    if len(name) > MAX_NAME:
        raise InvalidInput(
            f"metric name {name[:40]!r}... is {len(name)} characters long; "
            f"the limit is {MAX_NAME} characters",
            f"use a name of at most {MAX_NAME} characters",
        )
    if not name.strip() or not name.isprintable():
        raise InvalidInput(
            f"metric name {name!r} is empty or holds control characters",
            "use printable text without line breaks, tabs or control characters",
        )
    return name


def _check_value(name: str, value: object) -> float:
    # bool is an int to Python, but logging True as 1.0 is almost always a mistake;
    # numpy's bool_ is no numbers.Real, so it is refused by the same test.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(
            f"metric {name!r}: value {value!r} ({type(value).__name__}) is not a number",
            "log an int or a float (NaN and infinity are allowed); "
            "for a tensor or an array of one element, log .item()",
        )
    try:
        return float(value)
    except OverflowError:
        raise InvalidInput(
            f"metric {name!r}: value {value!r} is too large for a float",
            "log values a float can hold (up to about 1.8e308 in magnitude)",
        ) from None


def _check_step(name: str, step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInput(
            f"metric {name!r}: step {step!r} is not a whole number",
            "give the step as an int of 0 or more",
        )
    whole = int(step)
    if not 0 <= whole <= MAX_STEP:
        raise InvalidInput(
            f"metric {name!r}: step {whole} is out of range; the limit is 0 to {MAX_STEP}",
            "give the step as an int of 0 or more",
        )
    return whole


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput(
            f"metric time {at.isoformat()} has no time zone", "give an aware datetime"
        )
    return at.astimezone(UTC)


def _ended() -> InvalidInput:
    return InvalidInput(
        "the run has ended: no more metric points can be logged to it",
        "start a new run to log more metrics",
    )


class _Core:
    """The queue and its sending thread. Kept apart from ``MetricBuffer`` so that the
    thread, which must reference the queue, does not keep the user's buffer alive."""

    def __init__(
        self, send: Send, max_points: int, max_delay: float, retry_delays: Sequence[float]
    ) -> None:
        self._send = send
        self._max_points = max_points
        self._max_delay = max_delay
        self._retry_delays = tuple(retry_delays)
        self._cond = threading.Condition()
        # Held by whoever is sending, so batches go out one at a time, oldest first.
        self._send_lock = threading.Lock()
        self._pending: deque[tuple[float, MetricPoint]] = deque()  # (monotonic add time, point)
        self._added = 0
        self._sent = 0
        self._failures = 0  # consecutive failed background attempts
        self._not_before = 0.0  # monotonic time before which the thread does not retry
        self._closed = False  # add refused
        self._draining = False  # the buffer is gone: send what is left, then end the thread
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- called by the user's threads ---------------------------------------------------

    def add_one(self, point: MetricPoint) -> None:
        """``add_many`` for one point, without its generator: the hot path of a loop."""
        now = time.monotonic()
        with self._cond:
            if self._closed:
                raise _ended()
            self._pending.append((now, point))
            self._added += 1
            size = len(self._pending)
            if size == 1 or size == self._max_points:
                self._start_thread()
                self._cond.notify_all()

    def add_many(self, points: Iterable[MetricPoint]) -> None:
        # Read the points before locking: a generator (the user's code) may be slow or raise.
        batch = list(points)
        now = time.monotonic()
        with self._cond:
            if self._closed:
                raise _ended()
            before = len(self._pending)
            self._pending.extend((now, point) for point in batch)
            self._added += len(batch)
            # Wake the thread only when its timer must start or a batch just filled (not
            # on every point while it is busy sending a full one).
            if before == 0 or before < self._max_points <= len(self._pending):
                self._start_thread()
                self._cond.notify_all()

    def pending(self) -> list[MetricPoint]:
        with self._cond:
            return [point for _, point in self._pending]

    def flush(self) -> None:
        """Send, in this thread, everything added before the call; raise if that fails."""
        with self._cond:
            target = self._added
        with self._send_lock:
            while batch := self._peek(target):
                self._send_with_retries(batch)
                self._confirm(len(batch))

    def close(self) -> None:
        with self._cond:
            self._closed = True
        try:
            self.flush()
        finally:
            self._stop_thread()

    def drain(self) -> None:
        """The buffer was garbage collected: let the thread send the rest, then end."""
        with self._cond:
            self._closed = self._draining = True
            self._cond.notify_all()

    # -- sending ------------------------------------------------------------------------

    def _peek(self, target: int | None = None) -> list[MetricPoint]:
        """The next batch, oldest first; empty once everything up to ``target`` is sent."""
        with self._cond:
            if target is not None and self._sent >= target:
                return []
            return [p for _, p in itertools.islice(self._pending, self._max_points)]

    def _confirm(self, count: int) -> None:
        with self._cond:
            for _ in range(count):
                self._pending.popleft()
            self._sent += count
            self._failures = 0
            self._not_before = 0.0

    def _send_with_retries(self, batch: list[MetricPoint]) -> None:
        for attempt, delay in enumerate((*self._retry_delays, None), start=1):
            try:
                self._send(batch)
                return
            except Exception as exc:
                if delay is None:
                    logger.error(
                        "sending %d metric points failed %d times; they are kept: %s",
                        len(batch),
                        attempt,
                        exc,
                    )
                    raise
                time.sleep(delay)

    # -- the background thread ----------------------------------------------------------

    def _start_thread(self) -> None:
        """Start the thread on first use (called holding the condition)."""
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._run, name="modelkeep-metrics", daemon=True)
            self._thread.start()

    def _stop_thread(self) -> None:
        with self._cond:
            self._stopping = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT)

    def _run(self) -> None:
        while self._wait_until_due():
            with self._send_lock:
                batch = self._peek()
                if not batch:
                    continue  # a flush sent it meanwhile
                try:
                    self._send(batch)
                except Exception as exc:
                    self._note_failure(len(batch), exc)
                    continue
                self._confirm(len(batch))

    def _wait_until_due(self) -> bool:
        """Wait until a batch should be sent (True) or the thread should end (False)."""
        with self._cond:
            while not self._stopping and (self._pending or not self._draining):
                wait = self._seconds_until_due(time.monotonic())
                if wait is not None and wait <= 0:
                    return True
                self._cond.wait(wait)
            return False

    def _seconds_until_due(self, now: float) -> float | None:
        """None when nothing waits (sleep until woken)."""
        if not self._pending:
            return None
        full = len(self._pending) >= self._max_points or self._draining
        due = now if full else self._pending[0][0] + self._max_delay
        return max(due, self._not_before) - now

    def _note_failure(self, count: int, exc: Exception) -> None:
        with self._cond:
            self._failures += 1
            delay = self._retry_delays[min(self._failures, len(self._retry_delays)) - 1]
            self._not_before = time.monotonic() + delay
        logger.warning(
            "sending %d metric points failed (attempt %d), retrying in %g s; nothing is lost: %s",
            count,
            self._failures,
            delay,
            exc,
        )


_open: weakref.WeakSet[_Core] = weakref.WeakSet()


def _track(core: _Core) -> None:
    """Remember an open buffer, for the exit hook (registered with the first buffer, not
    at import time)."""
    _register_exit_hook()
    _open.add(core)


@functools.cache
def _register_exit_hook() -> None:
    atexit.register(_close_open_buffers)


def _close_open_buffers() -> None:
    """On interpreter exit, send what every open buffer still holds."""
    for core in list(_open):
        try:
            core.close()
        except Exception as exc:
            logger.error("metric points were lost at exit: %s", exc)


class MetricBuffer:
    """Collects metric points and sends them in batches from a background thread.

    ``send`` is called from one thread at a time, with at most ``max_points`` points, in
    the order they were added. Use as a context manager, or call ``close()`` at the end.
    """

    def __init__(
        self,
        send: Send,
        *,
        max_points: int = 5000,
        max_delay: float = 1.0,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        if max_points < 1 or not max_delay > 0 or not retry_delays:
            raise InvalidInput(
                "a metric buffer needs max_points >= 1, max_delay > 0 and a retry delay"
            )
        self._core = _Core(send, max_points, max_delay, retry_delays)
        _track(self._core)
        # Called when this buffer is garbage collected, never at exit (the hook does that).
        weakref.finalize(self, self._core.drain).atexit = False

    def add(self, point: MetricPoint) -> None:
        """Queue one point; never waits for I/O. InvalidInput once the buffer is closed."""
        self._core.add_one(point)

    def add_many(self, points: Iterable[MetricPoint]) -> None:
        self._core.add_many(points)

    @property
    def pending(self) -> list[MetricPoint]:
        """The points not sent yet, oldest first."""
        return self._core.pending()

    def flush(self) -> None:
        """Block until every point added before the call is sent; raise ``send``'s error
        if it still fails after the retries (the points are then kept)."""
        self._core.flush()

    def close(self) -> None:
        """Flush and stop the thread. Calling it again retries points a failure kept."""
        self._core.close()
        if not self._core.pending():
            _open.discard(self._core)

    def __enter__(self) -> MetricBuffer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # The user's exception is the one to see; points a failed send kept stay for the
        # exit hook.
        try:
            self.close()
        except Exception as close_error:
            logger.error("metric points could not be sent: %s", close_error)
