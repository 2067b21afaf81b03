"""A run as the SDK sees it: ``with mk.start_run(experiment=..., seed=...) as run:``.

Starting a run captures, with no code from the user, the git commit, branch and dirty
state (the uncommitted diff uploaded as a blob), the Python version, the installed
packages as a lock file (a blob), the host and the command line. Metric points are
buffered and sent in batches by a background thread; leaving the ``with`` block sends
what is left and ends the run: ``finished``, or ``failed`` with the exception's message
(``killed`` for Ctrl-C), and the exception goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from modelkeep.client import capture
from modelkeep.client.files import collect
from modelkeep.client.metrics_buffer import MetricBuffer, MetricPoint, check_metric
from modelkeep.domain import runs as run_rules
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.runs import Code, Environment, NewRun, Run
from modelkeep.domain.versions import Scalar, Version

if TYPE_CHECKING:
    from modelkeep.client.backend import Backend
    from modelkeep.client.client import Client


def captured_run(
    put_bytes: Callable[[bytes], str],
    experiment: str,
    *,
    params: Mapping[str, Scalar] | None = None,
    seed: int | None = None,
    name: str | None = None,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> NewRun:
    """What a run starting now, here, records about its code and environment."""
    git = capture.capture_git(cwd or Path.cwd(), environ=environ)
    env = capture.capture_environment()
    diff_digest = put_bytes(git.diff) if git.dirty and git.diff else None
    return NewRun(
        experiment=experiment,
        params=dict(params or {}),
        seed=seed,
        name=name,
        code=Code(git.commit, git.branch, git.dirty if git.commit else None, diff_digest),
        environment=Environment(
            python=env.python,
            packages_digest=put_bytes(env.packages),
            hostname=env.hostname,
            platform=env.platform,
            command=env.command,
        ),
        notes=git.notes,
    ).validated()


class ActiveRun:
    """A running run: log to it, then leave the ``with`` block (or call ``end``)."""

    def __init__(self, client: Client, backend: Backend, run: Run) -> None:
        self._client = client
        self._backend = backend
        self.id = run.id
        self._buffer = MetricBuffer(lambda points: backend.log_points(self.id, points))
        self._add_point = self._buffer.adder()
        self._steps: dict[str, int] = {}
        """The highest step logged per metric name (the next one without ``step``)."""
        self._ended = False

    # logging ----------------------------------------------------------------------------

    def log_param(self, key: str, value: Scalar) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Scalar]) -> None:
        self._backend.log_params(self.id, params)

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """One point; without ``step``, the metric's next step (0, 1, 2, ...)."""
        # The hot path of a training loop: inlined, with no call it can do without.
        last = self._steps.get(name, -1)
        point = check_metric(name, value, last + 1 if step is None else step)
        if point.step > last:
            self._steps[name] = point.step
        self._add_point(point)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        points = [
            check_metric(n, v, self._next_step(n) if step is None else step)
            for n, v in metrics.items()
        ]
        for point in points:
            if point.step > self._steps.get(point.name, -1):
                self._steps[point.name] = point.step
        self._buffer.add_many(points)

    def _next_step(self, name: str) -> int:
        return self._steps.get(name, -1) + 1

    def use_dataset(self, ref: str) -> None:
        """Record that the run read this dataset version (``NAME@REF``)."""
        self._backend.use_dataset(self.id, ref)

    def log_artifact(self, path: str | os.PathLike[str]) -> FileEntry:
        """Store a file (or a directory's files) and attach it to the run."""
        local = collect([path])
        entries = self._backend.upload(local, None)
        for entry in entries:
            self._backend.log_artifact(self.id, entry)
        return entries[0]

    def push_model(
        self, model: str, paths: Sequence[str | os.PathLike[str]], **options: Any
    ) -> Version:
        """Push a model version linked to this run (its params, metrics, datasets, code
        and environment show through the link; nothing is copied)."""
        self._buffer.flush()
        return self._client.push(model, paths, run=self.id, **options)

    # the end ----------------------------------------------------------------------------

    def flush(self) -> None:
        self._buffer.flush()

    def end(self, status: str = run_rules.FINISHED, error: str | None = None) -> Run:
        """End the run (once: later calls change nothing) and answer it as stored."""
        self._finish(status, error)
        return self._backend.get_run(self.id)

    def _finish(self, status: str, error: str | None) -> None:
        """Send the points still buffered together with the end of the run: one call, one
        transaction. If that fails the run is ended without them (they stay in the
        buffer for the exit hook) and the error goes on."""
        if self._ended:
            return

        def last(points: Sequence[MetricPoint]) -> None:
            self._backend.finish_run(self.id, status, error, points)

        try:
            self._buffer.close(last)
        except Exception:
            self._backend.finish_run(self.id, status, error, ())
            self._ended = True
            raise
        self._ended = True

    def info(self) -> Run:
        self._buffer.flush()
        return self._backend.get_run(self.id)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # No read-back of the run: nobody receives it here.
        if exc is None:
            self._finish(run_rules.FINISHED, None)
        elif isinstance(exc, KeyboardInterrupt):
            self._finish(run_rules.KILLED, "interrupted (KeyboardInterrupt)")
        else:
            self._finish(run_rules.FAILED, f"{type(exc).__name__}: {exc}")
