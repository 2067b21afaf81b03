"""Metric points buffered in memory and sent in batches from a background thread.

Logging a metric must cost a training loop nothing: ``add`` only appends to a queue under
a lock. A daemon thread sends a batch when ``max_points`` are waiting or the oldest has
waited ``max_delay`` seconds. Points are sent oldest first, one batch at a time, so the
order per metric name is kept, and a point leaves the queue only once ``send`` returned:
when sending fails the points stay, the thread retries with growing pauses, and the next
``flush()`` or ``close()`` retries too and raises the error if it persists.

Nothing is lost on a normal exit or an uncaught exception: an ``atexit`` hook flushes every
buffer still open. The hook holds buffers weakly; a buffer dropped without ``close()`` is
drained by its thread. Threads outlive their buffer and serve the next one (a few are
kept): a run that lasts milliseconds must not pay for starting one.
"""

from __future__ import annotations

import array
import atexit
import base64
import functools
import itertools
import logging
import numbers
import os
import queue
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NamedTuple

from modelkeep.domain.numbers import INT64_MAX
from modelkeep.errors import InvalidInput

logger = logging.getLogger(__name__)

MAX_NAME = 250
"""Characters in a metric name."""
MAX_STEP = INT64_MAX
"""The largest step a database BIGINT holds."""
RETRY_DELAYS = (0.5, 2.0, 5.0)
"""Pauses in seconds between attempts to send a batch; the last one repeats in the
background until the server answers again."""
MAX_IDLE_THREADS = 4
"""Sending threads kept waiting for the next buffer once theirs is closed."""
THREAD_NAME = "modelkeep-metrics"

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
    return _new_point(MetricPoint, (name, whole, number, when))


_new_point = tuple.__new__
"""Builds a MetricPoint from a tuple without the Python-level ``__new__`` of a NamedTuple
(a third of the cost of a point)."""


_KNOWN_NAMES: set[str] = set()
"""Names already checked (bounded): checking one costs more than the rest of a point."""


def pack_points(points: Sequence[MetricPoint]) -> dict[str, Any]:
    """Points for the wire, packed: the distinct names, then per point the index of its
    name and its step, value and time as little-endian arrays (int32, int64, float64,
    float64) in base64. Exact, NaN and infinities included, and about ten times cheaper
    to encode and decode than the same numbers written out in JSON."""
    if not points:
        return {"names": [], "index": "", "steps": "", "values": "", "at": ""}
    names_col, steps, values, at = zip(*points, strict=True)
    names: dict[str, int] = {}
    index = [names.setdefault(name, len(names)) for name in names_col]
    return {
        "names": list(names),
        "index": _packed("i", index),
        "steps": _packed("q", steps),
        "values": _packed("d", values),
        "at": _packed("d", at),
    }


def _packed(code: str, items: Iterable[Any]) -> str:
    column = array.array(code, items)
    if sys.byteorder == "big":
        column.byteswap()
    return base64.b64encode(column.tobytes()).decode("ascii")


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
        # A plain lock, entered directly on the hot path (a Condition's own ``with`` is
        # a Python-level call more per point).
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        # Held by whoever is sending, so batches go out one at a time, oldest first.
        self._send_lock = threading.Lock()
        self._pending: deque[MetricPoint] = deque()
        # Monotonic time since which the oldest pending point has waited (set when the
        # queue stops being empty, and after a send that leaves points: a bound that is at
        # most one send late, without reading the clock for every point).
        self._oldest_since = 0.0
        self._sent = 0
        self._failures = 0  # consecutive failed background attempts
        self._not_before = 0.0  # monotonic time before which the thread does not retry
        self._closed = False  # add refused
        self._draining = False  # the buffer is gone: send what is left, then end the thread
        self._stopping = False
        self._started = False

    # -- called by the user's threads ---------------------------------------------------

    def add_one(self, point: MetricPoint) -> None:
        """``add_many`` for one point, without its generator: the hot path of a loop."""
        with self._lock:
            if self._closed:
                raise _ended()
            pending = self._pending
            pending.append(point)
            size = len(pending)
            if size == 1 or size == self._max_points:
                self._wake(size)

    def add_many(self, points: Iterable[MetricPoint]) -> None:
        # Read the points before locking: a generator (the user's code) may be slow or raise.
        batch = list(points)
        with self._lock:
            if self._closed:
                raise _ended()
            before = len(self._pending)
            self._pending.extend(batch)
            # Wake the thread only when its timer must start or a batch just filled (not
            # on every point while it is busy sending a full one).
            if before == 0 or before < self._max_points <= len(self._pending):
                self._wake(before + 1)

    def _wake(self, size: int) -> None:
        """Start the timer (``size`` 1: the first point waiting) or send a full batch;
        called holding the lock."""
        if size == 1:
            self._oldest_since = time.monotonic()
        self._start_thread()
        self._cond.notify_all()

    def pending(self) -> list[MetricPoint]:
        with self._lock:
            return list(self._pending)

    def flush(self) -> None:
        """Send, in this thread, everything added before the call; raise if that fails."""
        with self._lock:
            target = self._sent + len(self._pending)
        with self._send_lock:
            while batch := self._peek(target):
                self._send_with_retries(self._send, batch)
                self._confirm(len(batch))

    def close(self, last: Send | None = None) -> None:
        """Refuse more points, send the rest, stop the thread; with ``last``, the final
        batch (empty if nothing is left) goes through ``last`` instead of ``send``."""
        with self._cond:
            self._closed = True
        try:
            if last is None:
                self.flush()
            else:
                self._send_rest(last)
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
            return list(itertools.islice(self._pending, self._max_points))

    def _send_rest(self, last: Send) -> None:
        """Send what is left of a closed buffer, its final batch through ``last``."""
        with self._send_lock:
            while True:
                with self._cond:
                    batch = list(itertools.islice(self._pending, self._max_points))
                    final = len(self._pending) == len(batch)
                self._send_with_retries(last if final else self._send, batch)
                self._confirm(len(batch))
                if final:
                    return

    def _confirm(self, count: int) -> None:
        with self._cond:
            for _ in range(count):
                self._pending.popleft()
            self._sent += count
            if self._pending:
                self._oldest_since = time.monotonic()
            self._failures = 0
            self._not_before = 0.0

    def _send_with_retries(self, send: Send, batch: list[MetricPoint]) -> None:
        for attempt, delay in enumerate((*self._retry_delays, None), start=1):
            try:
                send(batch)
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
        """Start sending on first use (called holding the condition)."""
        if not self._started and not self._stopping:
            self._started = True
            _workers.start(self._run)

    def _stop_thread(self) -> None:
        """Tell the thread to end; no need to wait: everything was sent (or kept) under
        the send lock, and it sends nothing once stopping."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

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
        due = now if full else self._oldest_since + self._max_delay
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


class _Workers:
    """Daemon threads that outlive their buffer and serve the next one: a run lasting a
    few milliseconds would otherwise spend a tenth of them starting a thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []

    def forget(self) -> None:
        """In a forked child: the parent's threads do not exist there."""
        self._lock = threading.Lock()
        self._idle = []

    def start(self, job: Callable[[], None]) -> None:
        """Run ``job`` in an idle thread, or a new one."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            name = f"{THREAD_NAME}-idle"
            threading.Thread(target=self._serve, args=(inbox,), name=name, daemon=True).start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
        me = threading.current_thread()
        while True:
            job = inbox.get()
            me.name = THREAD_NAME
            try:
                job()
            except Exception:  # _run catches send errors; anything else is a bug
                logger.exception("the metric sending thread failed")
            del job  # keep no buffer's queue alive while idle
            me.name = f"{THREAD_NAME}-idle"
            with self._lock:
                if len(self._idle) >= MAX_IDLE_THREADS:
                    return
                self._idle.append(inbox)


_workers = _Workers()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_workers.forget)
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

    def adder(self) -> Callable[[MetricPoint], None]:
        """``add`` with one call less per point, for a loop logging millions (it does not
        keep the buffer alive: the buffer's collection still drains it)."""
        return self._core.add_one

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

    def close(self, last: Send | None = None) -> None:
        """Flush and stop the thread. Calling it again retries points a failure kept.

        ``last`` sends the final batch (possibly empty, and called exactly once when
        closing succeeds) in place of ``send``: a run ends with its last points in one
        call, where a flush then an end would cost two."""
        self._core.close(last)
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
