"""``datasets push | show | list | versions | pull``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from rich.table import Table

from modelkeep.client import files
from modelkeep.domain.datasets import DatasetVersion
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

TOP_SHOWN = 3
"""Top values of a category column shown per cell (JSON has all of them)."""


@click.group()
def datasets() -> None:
    """Versioned data files, with the schema and profile of each CSV and Parquet file."""


@datasets.command("push")
@click.argument("name")
@click.argument("paths", metavar="PATH...", nargs=-1, required=True, type=click.Path())
@click.option("--version", "semver", metavar="SEMVER", help="A semantic version, e.g. 1.0.0.")
@click.option("--source", metavar="URI", help="Where the data came from.")
@click.option(
    "--step",
    "steps",
    multiple=True,
    metavar="TEXT",
    help="A preprocessing step, in the order applied. Repeatable.",
)
@click.option("--sampling", metavar="TEXT", help="How the rows were sampled.")
@click.option("--message", metavar="TEXT", help="What is new in this version.")
@if_exists_option
@json_option
def push(
    name: str,
    paths: tuple[str, ...],
    semver: str | None,
    source: str | None,
    steps: tuple[str, ...],
    sampling: str | None,
    message: str | None,
    if_exists: str,
) -> None:
    """Store PATH... as the next version of dataset NAME (made on its first push).

    A file is stored under its base name, a directory's files under their paths
    relative to it; bytes already stored (by any model or dataset) are not stored again.
    Each CSV (.csv, .tsv, either .gz) and Parquet (.parquet, .pq) file gets a schema and
    profile; any other file, or one that does not parse, is stored as plain data and the
    output says why it has no profile.
    """
    total = sum(f.size for f in files.collect(paths))
    with transfer_progress("pushing", total) as progress:
        version = state().client.push_dataset(
            name,
            paths,
            version=semver,
            source=source,
            steps=steps,
            sampling=sampling,
            message=message,
            progress=progress,
            if_exists=if_exists,  # type: ignore[arg-type]
        )
    emit(version.to_dict(), lambda: _print_pushed(version))


def _print_pushed(version: DatasetVersion) -> None:
    if version.reused:
        console.print(
            f"reused dataset {version.ref}{_semver(version)} {version.digest}: "
            "these files are that version already; nothing was pushed"
        )
        return
    console.print(
        f"pushed dataset {version.ref}{_semver(version)} {version.digest} "
        f"({plural(len(version.files), 'file')}, {human_size(version.size)})"
    )
    for f in version.files:
        console.print(f"  {f.path}: {_profile_summary(version.profiles.get(f.path))}")


def _profile_summary(profile: Mapping[str, Any] | None) -> str:
    if not profile:
        return "not profiled"
    if "reason" in profile:
        return f"not profiled: {profile['reason']}"
    return (
        f"profiled: {plural(int(profile['rows']), 'row')}, "
        f"{plural(len(profile['columns']), 'column')}"
    )


def _semver(version: DatasetVersion) -> str:
    return f" ({version.semver})" if version.semver else ""


@datasets.command("show")
@click.argument("ref", metavar="NAME@REF")
@json_option
def show(ref: str) -> None:
    """Show one dataset version: source, steps, files, and each file's schema and profile.

    Per column: its type, the share of missing values, min, max and mean for numbers
    (earliest and latest for times), and the most common values for categories.
    """
    version = state().client.dataset(ref)
    emit(version.to_dict(), lambda: _print_version(version))


def _print_version(v: DatasetVersion) -> None:
    table = Table(show_header=False, box=None)
    rows = [
        ("dataset", f"{v.ref}{_semver(v)}"),
        ("digest", v.digest),
        ("created", f"{v.created_at:%Y-%m-%d %H:%M:%S} UTC by {v.created_by}"),
        ("message", v.message or "-"),
        ("source", v.source or "-"),
        ("sampling", v.sampling or "-"),
    ]
    rows += [(f"step {i}", step) for i, step in enumerate(v.steps, start=1)]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    files_table = Table("path", "size", "digest", "profile", box=None)
    for f in v.files:
        files_table.add_row(
            f.path, human_size(f.size), f.digest, _profile_summary(v.profiles.get(f.path))
        )
    console.print(files_table)
    for f in v.files:
        profile = v.profiles.get(f.path)
        if profile and "columns" in profile:
            console.print(f"\n{f.path} ({profile['format']}, {plural(profile['rows'], 'row')})")
            console.print(_profile_table(profile["columns"]))


def _profile_table(columns: list[Mapping[str, Any]]) -> Table:
    table = Table("column", "type", "missing", "min", "max", "mean", "top values", box=None)
    for c in columns:
        table.add_row(
            c["name"],
            c["type"],
            f"{c['missing']} ({c['missing_share']:.1%})",
            _stat(c.get("min")),
            _stat(c.get("max")),
            _stat(c.get("mean")),
            _top(c.get("top")),
        )
    return table


def _stat(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _top(top: list[list[Any]] | None) -> str:
    if not top:
        return "-"
    shown = ", ".join(f"{value} ({count})" for value, count in top[:TOP_SHOWN])
    return shown + (", …" if len(top) > TOP_SHOWN else "")


@datasets.command("list")
@json_option
def list_datasets() -> None:
    """List every dataset and how many versions it has."""
    found = state().client.datasets()

    def human() -> None:
        table = Table("name", "versions", box=None)
        for d in found:
            table.add_row(str(d["name"]), str(d["versions"]))
        console.print(
            table
            if found
            else "no datasets yet: push one with 'modelkeep datasets push NAME PATH...'"
        )

    emit(found, human)


@datasets.command("versions")
@click.argument("name")
@json_option
def versions(name: str) -> None:
    """List the versions of dataset NAME."""
    found = state().client.dataset_versions(name)

    def human() -> None:
        table = Table(
            "#", "semver", "digest", "files", "size", "created", "by", "message", box=None
        )
        for v in found:
            table.add_row(
                str(v.number),
                v.semver or "",
                short(v.digest),
                str(len(v.files)),
                human_size(v.size),
                f"{v.created_at:%Y-%m-%d %H:%M}",
                v.created_by,
                v.message or "",
            )
        console.print(table if found else f"{name} has no versions yet")

    emit([v.to_dict() for v in found], human)


@datasets.command("pull")
@click.argument("ref", metavar="NAME@REF")
@click.argument("dest", type=click.Path())
@click.option("--force", is_flag=True, help="Overwrite files in DEST that differ.")
@json_option
def pull(ref: str, dest: str, force: bool) -> None:
    """Write a dataset version's files into DEST, each verified against its digest.

    Files already in DEST with the right bytes are left alone; a file that differs is
    refused unless --force is given.
    """
    client = state().client
    version = client.dataset(ref)
    with transfer_progress("pulling", version.size) as progress:
        written = client.pull_dataset(version.ref, dest, force=force, progress=progress)
    unchanged = sorted({f.path for f in version.files} - set(written))
    document = {
        "dataset": version.dataset,
        "number": version.number,
        "digest": version.digest,
        "dest": dest,
        "written": written,
        "unchanged": unchanged,
    }
    emit(
        document,
        lambda: console.print(
            f"pulled dataset {version.ref} {version.digest} into {dest} "
            f"({len(written)} written, {len(unchanged)} already there)"
        ),
    )
