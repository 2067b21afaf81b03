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
from typing import TYPE_CHECKING, Any, Protocol

from modelkeep.client import capture
from modelkeep.client.files import LocalFile, collect
from modelkeep.client.metrics_buffer import MetricBuffer, MetricPoint, check_metric
from modelkeep.domain import runs as run_rules
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.runs import Code, Environment, NewRun, Run
from modelkeep.domain.versions import Scalar, Version

if TYPE_CHECKING:
    from modelkeep.client.client import Client


class RunBackend(Protocol):
    def put_bytes(self, data: bytes) -> str: ...
    def start_run(self, new: NewRun) -> Run: ...
    def get_run(self, run_id: str) -> Run: ...
    def log_params(self, run_id: str, params: Mapping[str, Scalar]) -> Run: ...
    def log_points(self, run_id: str, points: Sequence[MetricPoint]) -> None: ...
    def use_dataset(self, run_id: str, ref: str) -> Run: ...
    def log_artifact(self, run_id: str, entry: FileEntry) -> None: ...
    def upload(self, files: Sequence[LocalFile], progress: Any) -> list[FileEntry]: ...
    def end_run(self, run_id: str, status: str, error: str | None) -> Run: ...


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

    def __init__(self, client: Client, backend: RunBackend, run: Run) -> None:
        self._client = client
        self._backend = backend
        self.id = run.id
        self._buffer = MetricBuffer(lambda points: backend.log_points(self.id, points))
        self._steps: dict[str, int] = {}
        self._ended: Run | None = None

    # logging ----------------------------------------------------------------------------

    def log_param(self, key: str, value: Scalar) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Scalar]) -> None:
        self._backend.log_params(self.id, params)

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """One point; without ``step``, the metric's next step (0, 1, 2, ...)."""
        self._buffer.add(check_metric(name, value, self._step(name, step)))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._buffer.add_many([check_metric(n, v, self._step(n, step)) for n, v in metrics.items()])

    def _step(self, name: str, step: int | None) -> int:
        if step is None:
            step = self._steps.get(name, -1) + 1
        self._steps[name] = max(step, self._steps.get(name, -1))
        return step

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
        if self._ended is not None:
            return self._ended
        try:
            self._buffer.close()
        finally:
            self._ended = self._backend.end_run(self.id, status, error)
        return self._ended

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
        if exc is None:
            self.end()
        elif isinstance(exc, KeyboardInterrupt):
            self.end(run_rules.KILLED, "interrupted (KeyboardInterrupt)")
        else:
            self.end(run_rules.FAILED, f"{type(exc).__name__}: {exc}")
