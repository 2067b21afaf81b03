"""``storage`` (what the versions hold against what is stored), ``retention set | show |
clear``."""

from __future__ import annotations

import click
from rich.table import Table

from modelkeep.domain.retention import RetentionPolicy
from modelkeep.domain.storage_report import StorageReport
from modelkeep.entrypoints.cli.context import console, emit, human_size, json_option, state


@click.command()
@click.option("--model", metavar="NAME", help="Only this model (default: every model).")
@json_option
def storage(model: str | None) -> None:
    """Show logical against physical bytes, per model and version.

    Logical bytes are the files of every live version (what pulling each would write);
    physical bytes are the blobs and chunks they need, each counted once. A version's
    new bytes are those no version registered before it needed. Versions purged by
    retention are left out.
    """
    report = state().client.storage(model)
    emit(report.to_dict(), lambda: _print_storage(report))


def _print_storage(report: StorageReport) -> None:
    table = Table("model", "version", "logical", "physical", "new", "saved", box=None)
    for found in report.models:
        table.add_row(
            found.model,
            "",
            human_size(found.logical_bytes),
            human_size(found.physical_bytes),
            "",
            _saved(found.saved_bytes, found.saving_ratio),
        )
        for v in found.versions:
            table.add_row(
                "", str(v.number), human_size(v.logical_bytes), "", human_size(v.new_bytes), ""
            )
    table.add_row(
        "total",
        "",
        human_size(report.logical_bytes),
        human_size(report.physical_bytes),
        "",
        _saved(report.saved_bytes, report.saving_ratio),
    )
    console.print(table if report.models else "no models")


def _saved(saved: int, ratio: float) -> str:
    return f"{human_size(saved)} ({ratio:.0%})"


@click.group()
def retention() -> None:
    """Per-model retention policies, which 'modelkeep gc' applies."""


@retention.command("set")
@click.argument("model", metavar="NAME")
@click.option(
    "--keep-last", type=int, metavar="N", help="Keep the model's last N versions by number."
)
@click.option(
    "--keep-days",
    type=int,
    metavar="D",
    help="Keep what was registered, or named by an alias or stage, within D days.",
)
@json_option
def set_retention(model: str, keep_last: int | None, keep_days: int | None) -> None:
    """Replace the retention policy of model NAME (a global admin).

    The next 'modelkeep gc' purges every version the policy does not keep: it is
    archived and its files are released (gc deletes the blobs no other version needs);
    its manifest and metadata stay, so 'show' still works but 'pull' fails. A version an
    alias or stage points at now is always kept. 'gc --dry-run' shows what would go.
    """
    policy = state().client.set_retention(model, keep_last=keep_last, keep_days=keep_days)
    emit(policy.to_dict(), lambda: console.print(f"{model}: {policy.describe()}"))


@retention.command("show")
@click.argument("model", metavar="NAME")
@json_option
def show_retention(model: str) -> None:
    """Show the retention policy of model NAME (null rules: no policy)."""
    policy = state().client.retention(model)
    emit(_document(model, policy), lambda: _print_policy(model, policy))


def _print_policy(model: str, policy: RetentionPolicy | None) -> None:
    if policy is None:
        console.print(f"{model} has no retention policy: every version is kept")
        return
    when = f"{policy.updated_at:%Y-%m-%d %H:%M:%S} UTC" if policy.updated_at else "-"
    console.print(f"{model}: {policy.describe()} (set {when} by {policy.updated_by})")


@retention.command("clear")
@click.argument("model", metavar="NAME")
@json_option
def clear_retention(model: str) -> None:
    """Remove the retention policy of model NAME (a global admin): keep every version."""
    removed = state().client.clear_retention(model)
    emit(
        _document(model, removed),
        lambda: console.print(
            f"{model}: retention policy cleared; every version is kept"
            if removed
            else f"{model} had no retention policy"
        ),
    )


def _document(model: str, policy: RetentionPolicy | None) -> dict[str, object]:
    return (policy or RetentionPolicy(model)).to_dict()
