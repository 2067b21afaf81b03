"""``runs start | log | end | show | list | compare | reproduce``."""

from __future__ import annotations

import json
import math
import shlex
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from modelkeep.client.reproduce import reproduce as reproduce_run
from modelkeep.domain.runs import ENDED, FINISHED, Run, metric_to_json
from modelkeep.domain.versions import Scalar
from modelkeep.entrypoints.cli import parsing
from modelkeep.entrypoints.cli.context import (
    console,
    emit,
    human_size,
    json_option,
    plural,
    state,
)

LIST_METRICS = 3
"""Metric columns in 'runs list': the names most runs listed have."""


@click.group()
def runs() -> None:
    """Training and evaluation runs: params, metrics, datasets, code and environment."""


@runs.command("start")
@click.option("--experiment", required=True, metavar="NAME", help="The experiment it belongs to.")
@click.option("--param", "params", multiple=True, metavar="K=V", help="A parameter. Repeatable.")
@click.option("--seed", type=int, metavar="N", help="The random seed.")
@click.option("--name", metavar="TEXT", help="A name for the run.")
@json_option
def start(experiment: str, params: tuple[str, ...], seed: int | None, name: str | None) -> None:
    """Start a run and print its id; it stays running until 'modelkeep runs end'.

    Records, as the SDK's start_run does, the git commit, branch and uncommitted changes
    of the current directory, and the Python environment modelkeep runs in (version,
    installed packages, host) with this command line. For a training script, starting
    the run in the script with the SDK records the script's own command line instead.
    """
    active = state().client.start_run(
        experiment, params=parsing.params(params, "--param"), seed=seed, name=name
    )
    # Not ended here: nothing was logged through `active`, so dropping it loses nothing,
    # and the run stays running for 'runs log' and 'runs end'.
    run = active.info()
    emit(run.to_dict(), lambda: console.print(run.id))


@runs.command("log")
@click.argument("run_id", metavar="RUN")
@click.option("--param", "params", multiple=True, metavar="K=V", help="A parameter. Repeatable.")
@click.option(
    "--metric", "metrics", multiple=True, metavar="K=V", help="A metric value. Repeatable."
)
@click.option(
    "--step",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="The step of the metric values.",
)
@click.option(
    "--dataset",
    "dataset_refs",
    multiple=True,
    metavar="DATASET@REF",
    help="A dataset version the run read. Repeatable.",
)
@json_option
def log(
    run_id: str,
    params: tuple[str, ...],
    metrics: tuple[str, ...],
    step: int,
    dataset_refs: tuple[str, ...],
) -> None:
    """Log params, metric values and datasets used to a running run.

    Values are numbers, true/false, null or text; metric values are numbers (nan, inf
    and -inf are kept as such). A param once logged keeps its value. Params are logged
    first, then datasets, then metrics: when one is refused, those before it stay logged.
    """
    if not (params or metrics or dataset_refs):
        raise click.UsageError("give at least one --param, --metric or --dataset")
    new_params = parsing.params(params, "--param")
    new_metrics = parsing.metrics(metrics)
    client = state().client
    if new_params:
        client.log_run_params(run_id, new_params)
    for ref in dataset_refs:
        client.use_run_dataset(run_id, ref)
    if new_metrics:
        client.log_run_metrics(run_id, new_metrics, step=step)
    run = client.run(run_id)
    done = [
        plural(len(new_params), "param"),
        f"{plural(len(new_metrics), 'metric')} at step {step}",
        plural(len(dataset_refs), "dataset"),
    ]
    emit(run.to_dict(), lambda: console.print(f"logged {', '.join(done)} to run {run.id}"))


@runs.command("end")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--status",
    type=click.Choice(ENDED),
    default=FINISHED,
    show_default=True,
    help="How the run ended.",
)
@click.option("--error", metavar="TEXT", help="What went wrong (with failed or killed).")
@json_option
def end(run_id: str, status: str, error: str | None) -> None:
    """End a running run; nothing more can be logged to it afterwards."""
    if error is not None and status == FINISHED:
        raise click.UsageError("--error goes with --status failed or killed")
    run = state().client.end_run(run_id, status, error)
    emit(run.to_dict(), lambda: console.print(f"run {run.id} {run.status}"))


@runs.command("show")
@click.argument("run_id", metavar="RUN")
@json_option
def show(run_id: str) -> None:
    """Show one run: code, environment, params, final metrics, datasets and artifacts."""
    run = state().client.run(run_id)
    emit(run.to_dict(), lambda: _print_run(run))


def _print_run(run: Run) -> None:
    table = Table(show_header=False, box=None)
    for key, value in _run_rows(run):
        table.add_row(key, value)
    console.print(table)
    if run.artifacts:
        artifacts = Table("artifact", "size", "digest", box=None)
        for path, size, digest in run.artifacts:
            artifacts.add_row(path, human_size(size), digest)
        console.print(artifacts)


def _run_rows(run: Run) -> list[tuple[str, str]]:
    env = run.environment
    rows = [
        ("run", run.id + (f" ({run.name})" if run.name else "")),
        ("experiment", run.experiment),
        ("status", run.status + (f": {run.error}" if run.error else "")),
        ("started", f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC by {run.created_by}"),
        ("ended", f"{run.ended_at:%Y-%m-%d %H:%M:%S} UTC" if run.ended_at else "-"),
        ("seed", _or_dash(run.seed)),
        ("commit", _commit(run)),
        ("changes", _changes(run)),
        ("python", f"{_or_dash(env.python)} on {_or_dash(env.platform)}"),
        ("host", _or_dash(env.hostname)),
        ("packages", _or_dash(env.packages_digest)),
        ("command", shlex.join(env.command) if env.command else "-"),
        ("datasets", ", ".join(run.datasets) or "-"),
        ("pushed", ", ".join(run.model_versions) or "-"),
    ]
    rows += [("note", note) for note in run.notes]
    rows += [(f"param {k}", str(v)) for k, v in sorted(run.params.items())]
    rows += [(f"metric {k}", _metric(v)) for k, v in sorted(run.metrics.items())]
    return rows


def _commit(run: Run) -> str:
    code = run.code
    if code.commit is None:
        return "-"
    return code.commit + (f" on {code.branch}" if code.branch else " (detached)")


def _changes(run: Run) -> str:
    code = run.code
    if code.dirty is None:
        return "-"
    if not code.dirty:
        return "none (clean tree)"
    return f"uncommitted, patch {code.diff_digest}" if code.diff_digest else "uncommitted"


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def _metric(value: float | None) -> str:
    """A final metric value: NaN and infinities spelled as in JSON."""
    if value is None:
        return "-"
    return f"{value:g}" if math.isfinite(value) else str(metric_to_json(value))


@runs.command("list")
@click.option("--experiment", metavar="NAME", help="Only the runs of this experiment.")
@json_option
def list_runs(experiment: str | None) -> None:
    """List runs: id, experiment, status, start time and a few final metrics."""
    found = state().client.runs(experiment)

    def human() -> None:
        counts = Counter(name for run in found for name in run.metrics)
        shown = sorted(counts, key=lambda n: (-counts[n], n))[:LIST_METRICS]
        table = Table("id", "experiment", "name", "status", "started", *shown, box=None)
        for run in found:
            table.add_row(
                run.id,
                run.experiment,
                run.name or "",
                run.status,
                f"{run.started_at:%Y-%m-%d %H:%M}",
                *(_metric(run.metrics[n]) if n in run.metrics else "-" for n in shown),
            )
        console.print(
            table
            if found
            else "no runs yet: start one with 'modelkeep runs start --experiment NAME'"
        )

    emit([run.to_dict() for run in found], human)


@runs.command("compare")
@click.argument("run_ids", metavar="RUN RUN...", nargs=-1, required=True)
@json_option
def compare(run_ids: tuple[str, ...]) -> None:
    """Show the params and final metrics of several runs side by side.

    JSON: {"runs": [...], "params": {NAME: {RUN: VALUE}}, "metrics": {NAME: {RUN: VALUE}}};
    a run without a param or metric is left out of its row.
    """
    ids = list(dict.fromkeys(run_ids))
    if len(ids) < 2:
        raise click.UsageError("give at least two different runs to compare")
    found = state().client.runs(ids=ids)
    params = _side_by_side(found, lambda run: run.params)
    metrics = _side_by_side(found, lambda run: run.metrics)
    document = {
        "runs": [run.to_dict() for run in found],
        "params": params,
        "metrics": {
            name: {r: metric_to_json(v) for r, v in values.items()}
            for name, values in metrics.items()
        },
    }
    emit(document, lambda: _print_compare(found, params, metrics))


def _side_by_side(
    found: list[Run], values: Callable[[Run], Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    names = sorted({name for run in found for name in values(run)})
    return {
        name: {run.id: values(run)[name] for run in found if name in values(run)} for name in names
    }


def _print_compare(
    found: list[Run],
    params: Mapping[str, Mapping[str, Scalar]],
    metrics: Mapping[str, Mapping[str, float | None]],
) -> None:
    table = Table("", *(run.id for run in found), box=None)
    table.add_row("experiment", *(run.experiment for run in found))
    table.add_row("status", *(run.status for run in found))
    table.add_row("seed", *(_or_dash(run.seed) for run in found))
    for name, values in params.items():
        table.add_row(f"param {name}", *(_cell(values, run.id, str) for run in found))
    for name, by_run in metrics.items():
        table.add_row(f"metric {name}", *(_cell(by_run, run.id, _metric) for run in found))
    console.print(table)


def _cell(values: Mapping[str, Any], run_id: str, show: Callable[[Any], str]) -> str:
    return show(values[run_id]) if run_id in values else "-"


# reproduce ------------------------------------------------------------------------------


@runs.command("reproduce")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--checkout",
    "checkout",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Also prepare DIR (new or empty) to re-run it: lock file, patch, params, "
    "datasets and reproduce.sh.",
)
@json_option
def reproduce(run_id: str, checkout: str | None) -> None:
    """Print what is needed to re-run a run: commit, uncommitted changes, packages lock,
    datasets to pull, params, seed and command line.

    With --checkout DIR, write into DIR: lock.txt (the installed packages), changes.patch
    (the uncommitted changes, if any), params.json, run.json, the datasets pulled into
    datasets/NAME/, and reproduce.sh, which, run from inside a clone of the repository,
    checks the commit out as a git worktree in DIR/src, applies the patch, makes a venv
    DIR/venv from lock.txt and runs the recorded command there. See docs/tracking.md for
    what it cannot bring back.
    """
    client = state().client
    run = client.run(run_id)
    plan = reproduce_run(client, run, checkout)
    emit(plan, lambda: _print_plan(run, plan))


def _print_plan(run: Run, plan: Mapping[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    rows = [
        ("run", f"{run.id} (experiment {run.experiment}, {run.status})"),
        ("commit", _commit(run)),
        ("changes", _changes(run)),
        ("python", _or_dash(run.environment.python)),
        ("packages", f"lock file {_or_dash(run.environment.packages_digest)}"),
        ("params", json.dumps(dict(run.params), ensure_ascii=False, sort_keys=True)),
        ("seed", _or_dash(run.seed)),
        ("command", plan["command"] or "not recorded"),
    ]
    rows += [("datasets", d["pull"]) for d in plan["datasets"]] or [("datasets", "-")]
    rows += [("note", note) for note in plan["notes"]]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    checkout = plan["checkout"]
    if checkout is not None:
        console.print(f"prepared {checkout['dir']}: {', '.join(checkout['files'])}")
        console.print(
            f"next: from inside a clone of the repository, run "
            f"'sh {Path(checkout['dir']).resolve() / 'reproduce.sh'}'"
        )
