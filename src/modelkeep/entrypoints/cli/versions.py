"""``push``, ``versions``, ``show``, ``pull``, ``diff``, ``resolve``, ``archive``."""

from __future__ import annotations

import click
from rich.table import Table

from modelkeep.client import files
from modelkeep.domain.diff import VersionDiff
from modelkeep.domain.runs import RUN_ID, Run
from modelkeep.domain.semver import BUMPS
from modelkeep.domain.signatures import parse_signature
from modelkeep.domain.versions import Version
from modelkeep.entrypoints.cli import parsing
from modelkeep.entrypoints.cli.context import (
    console,
    emit,
    human_size,
    if_exists_option,
    json_option,
    plural,
    short,
    state,
    transfer_progress,
)


@click.command()
@click.argument("name")
@click.argument("paths", metavar="PATH...", nargs=-1, required=True, type=click.Path())
@click.option("--version", "semver", metavar="SEMVER", help="A semantic version, e.g. 1.4.0.")
@click.option("--bump", type=click.Choice(BUMPS), help="Bump the model's highest semver.")
@click.option("--run", "run", metavar="RUN_ID", help="The run that produced the files.")
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    metavar="DATASET@REF",
    help="A dataset version used to train it. Repeatable.",
)
@click.option("--param", "params", multiple=True, metavar="K=V", help="A parameter. Repeatable.")
@click.option("--metric", "metrics", multiple=True, metavar="K=V", help="A metric. Repeatable.")
@click.option("--meta", "meta", multiple=True, metavar="K=V", help="A free field. Repeatable.")
@click.option("--commit", metavar="SHA", help="The code commit it was trained from.")
@click.option("--seed", type=int, metavar="N", help="The random seed.")
@click.option("--message", metavar="TEXT", help="What is new in this version.")
@if_exists_option
@json_option
def push(
    name: str,
    paths: tuple[str, ...],
    semver: str | None,
    bump: str | None,
    run: str | None,
    datasets: tuple[str, ...],
    params: tuple[str, ...],
    metrics: tuple[str, ...],
    meta: tuple[str, ...],
    commit: str | None,
    seed: int | None,
    message: str | None,
    if_exists: str,
) -> None:
    """Store PATH... as the next version of model NAME.

    A file is stored under its base name, a directory's files under their paths
    relative to it.
    """
    total = sum(f.size for f in files.collect(paths))
    with transfer_progress("pushing", total) as progress:
        version = state().client.push(
            name,
            paths,
            version=semver,
            bump=bump,  # type: ignore[arg-type]
            params=parsing.params(params, "--param"),
            metrics=parsing.metrics(metrics),
            datasets=datasets,
            commit=commit,
            seed=seed,
            run=run,
            meta=parsing.params(meta, "--meta"),
            message=message,
            progress=progress,
            if_exists=if_exists,  # type: ignore[arg-type]
        )
    emit(version.to_dict(), lambda: _print_pushed(version))


def _print_pushed(version: Version) -> None:
    if version.reused:
        console.print(
            f"reused {version.ref}{_semver(version)} {version.digest}: "
            "these files are that version already; nothing was pushed"
        )
        return
    console.print(
        f"pushed {version.ref}{_semver(version)} {version.digest} "
        f"({plural(len(version.files), 'file')}, {human_size(version.size)})"
    )


def _semver(version: Version) -> str:
    return f" ({version.semver})" if version.semver else ""


@click.command("versions")
@click.argument("name")
@json_option
def list_versions(name: str) -> None:
    """List the versions of model NAME."""
    found = state().client.versions(name)

    def human() -> None:
        table = Table(
            "#",
            "semver",
            "digest",
            "status",
            "aliases",
            "size",
            "created",
            "by",
            "message",
            box=None,
        )
        for v in found:
            table.add_row(
                str(v.number),
                v.semver or "",
                short(v.digest),
                v.status,
                ", ".join(v.aliases),
                human_size(v.size),
                f"{v.created_at:%Y-%m-%d %H:%M}",
                v.created_by,
                v.message or "",
            )
        console.print(table if found else f"{name} has no versions yet")

    emit([v.to_dict() for v in found], human)


@click.command()
@click.argument("ref", metavar="NAME@REF")
@json_option
def show(ref: str) -> None:
    """Show one version: files, metadata, aliases, and what its run recorded."""
    client = state().client
    version = client.show(ref)
    linked = version.metadata.run and RUN_ID.fullmatch(version.metadata.run)
    run = client.run(version.metadata.run) if linked and version.metadata.run else None
    document = version.to_dict()
    if run is not None:
        document["run_record"] = run.to_dict()  # seen through the link, not copied

    def human() -> None:
        _print_version(version)
        if run is not None:
            _print_run_link(run)

    emit(document, human)


def _print_run_link(run: Run) -> None:
    """The run's record as the version sees it through ``--run``."""
    table = Table(show_header=False, box=None, title=f"through run {run.id}")
    table.add_row("experiment", f"{run.experiment} ({run.status})")
    table.add_row("commit", f"{run.code.commit or '-'}{' (dirty)' if run.code.dirty else ''}")
    table.add_row("python", run.environment.python or "-")
    table.add_row("packages", run.environment.packages_digest or "-")
    table.add_row("datasets", ", ".join(run.datasets) or "-")
    table.add_row("seed", "-" if run.seed is None else str(run.seed))
    for key, value in sorted(run.params.items()):
        table.add_row(f"param {key}", str(value))
    for key, metric in sorted(run.metrics.items()):
        table.add_row(f"metric {key}", "-" if metric is None else f"{metric:g}")
    console.print(table)


def _print_version(v: Version) -> None:
    table = Table(show_header=False, box=None)
    rows = [
        ("version", f"{v.ref}{_semver(v)}"),
        ("digest", v.digest),
        ("status", v.status),
        *_purged(v),
        ("aliases", ", ".join(v.aliases) or "-"),
        ("created", f"{v.created_at:%Y-%m-%d %H:%M:%S} UTC by {v.created_by}"),
        ("message", v.message or "-"),
        ("commit", v.metadata.commit or "-"),
        ("seed", "-" if v.metadata.seed is None else str(v.metadata.seed)),
        ("run", v.metadata.run or "-"),
        ("datasets", ", ".join(v.metadata.datasets) or "-"),
    ]
    rows += [(f"param {k}", str(val)) for k, val in sorted(v.metadata.params.items())]
    rows += [(f"metric {k}", f"{val:g}") for k, val in sorted(v.metadata.metrics.items())]
    rows += _from_run(v)
    rows += [(f"meta {k}", str(val)) for k, val in sorted(v.metadata.meta.items())]
    rows += _signature_rows(v)
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    files_table = Table("path", "size", "digest", box=None)
    for f in v.files:
        files_table.add_row(f.path, human_size(f.size), f.digest)
    console.print(files_table)


def _signature_rows(v: Version) -> list[tuple[str, str]]:
    """What ``load(...).predict`` takes and gives, one row per input and output."""
    if v.metadata.signature is None:
        return []  # none recorded: load computes it from the model
    signature = parse_signature(v.metadata.signature)
    return [("input", f.describe()) for f in signature.inputs] + [
        ("output", f.describe()) for f in signature.outputs
    ]


def _from_run(v: Version) -> list[tuple[str, str]]:
    """The params and metrics the version's run logged that the version did not record
    itself, marked as the run's."""
    if v.from_run is None:
        return []
    mark = f" (from run {v.from_run.run})"
    params = v.from_run.params.items()
    metrics = v.from_run.metrics.items()
    return [
        *(
            (f"param {k}", f"{val}{mark}")
            for k, val in sorted(params)
            if k not in v.metadata.params
        ),
        *(
            (f"metric {k}", f"{val:g}{mark}")
            for k, val in sorted(metrics)
            if k not in v.metadata.metrics
        ),
    ]


def _purged(v: Version) -> list[tuple[str, str]]:
    if v.purged_at is None:
        return []
    return [("purged", f"{v.purged_at:%Y-%m-%d %H:%M:%S} UTC (retention; files not kept)")]


@click.command()
@click.argument("ref", metavar="NAME@REF")
@click.argument("dest", type=click.Path())
@click.option("--force", is_flag=True, help="Overwrite files in DEST that differ.")
@json_option
def pull(ref: str, dest: str, force: bool) -> None:
    """Write a version's files into DEST, each verified against its digest."""
    client = state().client
    version = client.show(ref)
    with transfer_progress("pulling", version.size) as progress:
        result = client.pull(
            f"{version.model}@{version.number}", dest, force=force, progress=progress
        )
    emit(
        result.to_dict(),
        lambda: console.print(
            f"pulled {version.ref} {version.digest} into {dest} "
            f"({len(result.written)} written, {len(result.unchanged)} already there)"
        ),
    )


@click.command()
@click.argument("old", metavar="NAME@REF")
@click.argument("new", metavar="NAME@REF")
@json_option
def diff(old: str, new: str) -> None:
    """Compare two versions: files, metadata and metrics."""
    result = state().client.diff(old, new)
    emit(result.to_dict(), lambda: _print_diff(result))


def _print_diff(result: VersionDiff) -> None:
    if result.identical:
        console.print(f"{result.old} and {result.new} are identical")
        return
    table = Table("", "what", result.old, result.new, box=None)
    for kind, changes in (
        ("file", result.files),
        ("meta", result.metadata),
        ("metric", result.metrics),
    ):
        for change in changes:
            table.add_row(
                kind,
                change.key,
                _cell(change.old) + _run_mark(change.old_from_run),
                _cell(change.new) + _run_mark(change.new_from_run),
            )
    console.print(table)


def _run_mark(run: str | None) -> str:
    return f" (from run {run})" if run else ""


def _cell(value: object) -> str:
    if isinstance(value, dict) and "digest" in value:
        return f"{short(str(value['digest']))} {human_size(int(value['size']))}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)


@click.command()
@click.argument("ref", metavar="NAME@REF")
@click.option(
    "--at",
    "at",
    metavar="ISO-8601-TIME",
    help="Resolve as of this time (local time if no zone is given).",
)
@json_option
def resolve(ref: str, at: str | None) -> None:
    """Resolve a reference to its version number and digest."""
    when = parsing.timestamp(at, "--at") if at else None
    found = state().client.resolve(ref, at=when)
    emit(
        found.to_dict(),
        lambda: console.print(
            f"{found.model}@{found.ref} -> {found.model}@{found.number} {found.digest}"
        ),
    )


@click.command()
@click.argument("ref", metavar="NAME@REF")
@click.option("--reason", metavar="TEXT", help="Why, for the audit log.")
@json_option
def archive(ref: str, reason: str | None) -> None:
    """Archive a version: it can still be shown and pulled, never promoted."""
    version = state().client.archive(ref, reason=reason)
    emit(version.to_dict(), lambda: console.print(f"archived {version.ref} {version.digest}"))


@click.command()
@click.argument("ref", metavar="NAME@REF")
@click.option("--reason", metavar="TEXT", help="Why, for the audit log.")
@json_option
def unarchive(ref: str, reason: str | None) -> None:
    """Make an archived version usable again: aliases, stages, checks (audited).

    The same roles as archive may. A version whose files retention released stays
    archived (version_purged).
    """
    client = state().client
    before = client.show(ref)
    version = client.unarchive(ref, reason=reason)

    def human() -> None:
        if before.status != "archived":
            console.print(f"{version.ref} is not archived; nothing changed")
        else:
            console.print(f"unarchived {version.ref} {version.digest}")

    emit(version.to_dict(), human)
