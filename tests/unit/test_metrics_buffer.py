"""check_metric's limits; MetricBuffer's batching, retries, ordering and exit hook."""

from __future__ import annotations

import gc
import json
import math
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from modelkeep.client.metrics_buffer import (
    MAX_IDLE_THREADS,
    MAX_NAME,
    MetricBuffer,
    MetricPoint,
    check_metric,
    pack_points,
)
from modelkeep.errors import InvalidInput

FAST_RETRIES = (0.01, 0.01, 0.01)


class Recorder:
    """A ``send`` that records batches and checks it is never called concurrently."""

    def __init__(self, fail_times: int = 0) -> None:
        self.batches: list[list[MetricPoint]] = []
        self.fail_times = fail_times
        self.calls = 0
        self._busy = threading.Lock()

    def __call__(self, batch: list[MetricPoint]) -> None:
        assert self._busy.acquire(blocking=False), "send called concurrently"
        try:
            self.calls += 1
            if self.calls <= self.fail_times:
                raise ConnectionError(f"server unavailable (call {self.calls})")
            self.batches.append(list(batch))
        finally:
            self._busy.release()

    @property
    def points(self) -> list[MetricPoint]:
        return [p for batch in self.batches for p in batch]


def points(name: str, count: int) -> list[MetricPoint]:
    return [check_metric(name, step * 0.5, step) for step in range(count)]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# -- check_metric ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_kept(value: float) -> None:
    got = check_metric("loss", value, 0).value
    assert got == value or (math.isnan(got) and math.isnan(value))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3.0), (0.25, 0.25), (np.float32(0.5), 0.5), (np.int64(7), 7.0), (np.float64(1.5), 1.5)],
)
def test_numbers_become_floats(value: object, expected: float) -> None:
    point = check_metric("acc", value, np.int64(4))
    assert (point.value, point.step) == (expected, 4)
    assert type(point.value) is float and type(point.step) is int


@pytest.mark.parametrize("value", [True, np.bool_(True), "0.5", None, [1.0], 10**400])
def test_values_that_are_not_numbers_are_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match=r"not a number|too large"):
        check_metric("acc", value, 0)


def test_a_huge_name_is_refused_naming_the_limit() -> None:
    with pytest.raises(InvalidInput, match=f"the limit is {MAX_NAME} characters") as caught:
        check_metric("x" * 10_000, 1.0, 0)
    assert "10000 characters" in caught.value.message
    assert len(caught.value.message) < 200, "the message must not repeat the whole name"


def test_a_name_at_the_limit_is_accepted() -> None:
    assert check_metric("é" * MAX_NAME, 1.0, 0).name == "é" * MAX_NAME


@pytest.mark.parametrize("name", ["", "   ", "loss\n", "a\x00b", "tab\there", 5])
def test_bad_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidInput):
        check_metric(name, 1.0, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("step", [-1, 1.0, "3", True, 2**63])
def test_bad_steps_are_refused(step: object) -> None:
    with pytest.raises(InvalidInput, match="step"):
        check_metric("loss", 1.0, step)


def test_times_are_aware_utc() -> None:
    assert check_metric("loss", 1.0, 0).time.tzinfo is UTC
    paris = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert check_metric("loss", 1.0, 0, at=paris).time == datetime(2024, 5, 1, 10, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="time zone"):
        check_metric("loss", 1.0, 0, at=datetime(2024, 5, 1))  # noqa: DTZ001


# -- MetricBuffer -----------------------------------------------------------------------


def test_concurrent_adds_are_each_sent_once_in_order_per_name() -> None:
    send = Recorder()
    buffer = MetricBuffer(send, max_points=100, max_delay=0.01)
    per_thread = 2000

    def log(name: str) -> None:
        for point in points(name, per_thread):
            buffer.add(point)

    threads = [threading.Thread(target=log, args=(f"m{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    buffer.flush()

    by_name: dict[str, list[int]] = defaultdict(list)
    for point in send.points:
        by_name[point.name].append(point.step)
    assert by_name == {f"m{i}": list(range(per_thread)) for i in range(8)}
    assert all(len(batch) <= 100 for batch in send.batches)
    assert buffer.pending == []
    buffer.close()


def test_points_are_sent_in_batches_of_at_most_max_points() -> None:
    send = Recorder()
    with MetricBuffer(send, max_points=10, max_delay=60) as buffer:
        buffer.add_many(points("loss", 95))
        buffer.flush()

    assert [len(b) for b in send.batches] == [10] * 9 + [5]
    assert [p.step for p in send.points] == list(range(95))


def test_the_thread_sends_after_max_delay_without_a_flush() -> None:
    send = Recorder()
    with MetricBuffer(send, max_points=1000, max_delay=0.05) as buffer:
        buffer.add_many(points("loss", 3))
        wait_for(lambda: len(send.points) == 3)
        assert len(send.batches) == 1


def test_the_thread_sends_a_full_batch_at_once() -> None:
    send = Recorder()
    with MetricBuffer(send, max_points=5, max_delay=60) as buffer:
        buffer.add_many(points("loss", 5))
        wait_for(lambda: len(send.points) == 5)


def test_a_send_that_fails_twice_then_succeeds_loses_nothing() -> None:
    send = Recorder(fail_times=2)
    with MetricBuffer(send, max_delay=60, retry_delays=FAST_RETRIES) as buffer:
        buffer.add_many(points("loss", 5))
        buffer.flush()

    assert [p.step for p in send.points] == list(range(5))
    assert send.calls == 3


def test_the_thread_retries_failed_sends_in_the_background(
    caplog: pytest.LogCaptureFixture,
) -> None:
    send = Recorder(fail_times=2)
    with MetricBuffer(send, max_delay=0.01, retry_delays=FAST_RETRIES) as buffer:
        buffer.add_many(points("loss", 5))
        wait_for(lambda: len(send.points) == 5)

    assert send.calls == 3
    assert "nothing is lost" in caplog.text


def test_a_send_that_always_fails_raises_on_flush_and_keeps_the_points() -> None:
    send = Recorder(fail_times=10**9)
    buffer = MetricBuffer(send, max_delay=60, retry_delays=FAST_RETRIES)
    logged = points("loss", 4)
    buffer.add_many(logged)

    with pytest.raises(ConnectionError, match="server unavailable"):
        buffer.flush()
    assert buffer.pending == logged
    with pytest.raises(ConnectionError):
        buffer.close()
    assert buffer.pending == logged

    send.fail_times = 0  # the server is back: closing again sends what was kept
    buffer.close()
    assert send.points == logged
    assert buffer.pending == []


def test_adding_after_close_is_refused() -> None:
    buffer = MetricBuffer(Recorder())
    buffer.close()
    buffer.close()  # idempotent

    with pytest.raises(InvalidInput, match="the run has ended"):
        buffer.add(check_metric("loss", 1.0, 0))
    with pytest.raises(InvalidInput, match="the run has ended"):
        buffer.add_many(points("loss", 2))


def test_points_logged_before_an_exception_in_user_code_are_sent() -> None:
    send = Recorder()

    def train(buffer: MetricBuffer) -> None:
        buffer.add_many(points("loss", 7))
        raise RuntimeError("training diverged")

    with (
        pytest.raises(RuntimeError, match="training diverged"),
        MetricBuffer(send, max_delay=60) as b,
    ):
        train(b)

    assert [p.step for p in send.points] == list(range(7))


def test_non_finite_values_pass_through_unchanged() -> None:
    send = Recorder()
    with MetricBuffer(send) as buffer:
        for step, value in enumerate([math.nan, math.inf, -math.inf]):
            buffer.add(check_metric("loss", value, step))

    values = [p.value for p in send.points]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf]


def test_a_buffer_dropped_without_close_is_collected_and_drained() -> None:
    send = Recorder()
    buffer = MetricBuffer(send, max_delay=60)
    buffer.add_many(points("loss", 3))
    alive = weakref.ref(buffer)

    del buffer
    gc.collect()

    assert alive() is None, "the background thread keeps the buffer alive"
    wait_for(lambda: len(send.points) == 3)
    wait_for(lambda: not any(t.name == "modelkeep-metrics" for t in threading.enumerate()))


SCRIPT = """
import json, sys
from modelkeep.client.metrics_buffer import MetricBuffer, check_metric

def send(batch):
    with open(sys.argv[1], "a") as out:
        for p in batch:
            out.write(json.dumps([p.name, p.step, repr(p.value)]) + "\\n")

buffer = MetricBuffer(send, max_points=100, max_delay=60)
for step in range(1000):
    buffer.add(check_metric("loss", float(step), step))
buffer.add(check_metric("loss", float("nan"), 1000))
if sys.argv[2] == "raise":
    raise RuntimeError("the script failed")
"""


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["normal", "raise"])
def test_a_script_that_forgets_to_close_loses_nothing_at_exit(tmp_path: Path, ending: str) -> None:
    out = tmp_path / "points.jsonl"

    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(out), ending],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == (0 if ending == "normal" else 1), done.stderr
    assert ("the script failed" in done.stderr) == (ending == "raise")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [["loss", s, repr(float(s))] for s in range(1000)] + [["loss", 1000, "nan"]]


# -- closing with a last send (a run's end carries its last points) -----------------------


def test_close_with_last_sends_full_batches_then_the_rest_through_last() -> None:
    send, last = Recorder(), Recorder()
    buffer = MetricBuffer(send, max_points=10, max_delay=60)
    buffer.add_many(points("loss", 25))

    buffer.close(last)

    assert [len(b) for b in send.batches] == [10, 10]
    assert [[p.step for p in b] for b in last.batches] == [list(range(20, 25))]
    assert buffer.pending == []


def test_close_with_last_calls_it_once_even_with_nothing_left() -> None:
    send, last = Recorder(), Recorder()
    buffer = MetricBuffer(send, max_delay=60)
    buffer.add_many(points("loss", 3))
    buffer.flush()

    buffer.close(last)

    assert last.batches == [[]]
    assert len(send.points) == 3


def test_a_last_send_that_fails_keeps_the_points_for_a_later_close() -> None:
    send, last = Recorder(), Recorder(fail_times=10**9)
    buffer = MetricBuffer(send, max_delay=60, retry_delays=FAST_RETRIES)
    logged = points("loss", 4)
    buffer.add_many(logged)

    with pytest.raises(ConnectionError):
        buffer.close(last)
    assert buffer.pending == logged and last.calls == len(FAST_RETRIES) + 1

    buffer.close()  # what the exit hook does
    assert send.points == logged


def test_sending_threads_are_reused_not_one_per_buffer() -> None:
    senders: list[threading.Thread] = []  # kept alive: each object is a distinct thread

    def send(batch: list[MetricPoint]) -> None:
        senders.append(threading.current_thread())

    for _ in range(30):
        with MetricBuffer(send, max_delay=0.001) as buffer:
            buffer.add(check_metric("loss", 1.0, 0))
            wait_for(lambda: not buffer.pending)
    assert len(senders) == 30
    assert len({id(t) for t in senders}) <= MAX_IDLE_THREADS + 1
    assert all(t.daemon for t in senders)


@pytest.mark.parametrize("value", [1.5, -0.0, 1e-300, math.inf, -math.inf, 2.0**60])
def test_packed_points_round_trip_exactly(value: float) -> None:
    from modelkeep.entrypoints.api.tracking_routes import PackedPoints, _unpack

    logged = [check_metric("b", value, 2**62), check_metric("a", math.nan, 0)]
    packed = PackedPoints.model_validate_json(json.dumps(pack_points(logged)))

    rows = _unpack(packed)

    assert [r[:3] for r in rows[:1]] == [("b", 2**62, value)] and rows[1][:2] == ("a", 0)
    assert math.isnan(rows[1][2]) and [r[3] for r in rows] == [p.at for p in logged]
    assert _unpack(PackedPoints.model_validate(pack_points([]))) == []
