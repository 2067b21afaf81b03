"""``verify``, ``gc``, ``audit log | verify``."""

from __future__ import annotations

import click
from rich.table import Table

from modelkeep.entrypoints.cli import parsing
from modelkeep.entrypoints.cli.context import (
    console,
    emit,
    human_size,
    json_option,
    plural,
    state,
)
from modelkeep.errors import AuditChainBroken, DigestMismatch
from modelkeep.services.maintenance import VerifyReport


@click.command()
@click.argument("ref", metavar="[NAME@REF]", required=False)
@click.option("--all", "everything", is_flag=True, help="Every version (the default).")
@json_option
def verify(ref: str | None, everything: bool) -> None:
    """Re-hash the blobs of one version, or of every version; exit 3 if any is damaged."""
    if ref and everything:
        raise click.UsageError("give NAME@REF or --all, not both")
    report = state().client.verify(ref)
    emit(report.to_dict(), lambda: _print_verify(report))
    if not report.ok:
        raise DigestMismatch(
            f"{plural(len(report.damaged), 'damaged blob')}, "
            f"{plural(len(report.inconsistent_versions), 'altered version')}; "
            f"broken: {', '.join(report.broken_versions)}"
        )


def _print_verify(report: VerifyReport) -> None:
    console.print(
        f"checked {plural(report.checked_blobs, 'blob')} of "
        f"{plural(report.checked_versions, 'version')}"
    )
    if report.ok:
        console.print("no damage found")
        return
    table = Table("blob", "problem", "breaks", box=None)
    for blob in report.damaged:
        table.add_row(blob.digest, blob.problem, ", ".join(blob.versions))
    console.print(table)
    for ref in report.inconsistent_versions:
        console.print(f"{ref}: its files or metadata no longer match what was registered")


@click.command()
@click.option("--dry-run", is_flag=True, help="Report what would be freed; delete nothing.")
@json_option
def gc(dry_run: bool) -> None:
    """Delete blobs no version uses (older than the grace period)."""
    report = state().client.gc(dry_run=dry_run)
    verb = "would free" if dry_run else "freed"
    emit(
        report.to_dict(),
        lambda: console.print(
            f"{verb} {human_size(report.bytes)} in {report.blobs} blobs and "
            f"{human_size(report.temporary_bytes)} in {report.temporary_files} abandoned uploads"
            f"; {report.kept_in_grace} unused blobs kept (younger than the grace period)"
        ),
    )


@click.group()
def audit() -> None:
    """Read and check the tamper-evident audit log."""


@audit.command("log")
@click.option("--model", metavar="NAME", help="Only events about this model.")
@click.option("--since", metavar="TIME", help="Only events at or after this ISO-8601 time.")
@json_option
def audit_log(model: str | None, since: str | None) -> None:
    """List audit events, oldest first."""
    when = parsing.timestamp(since, "--since") if since else None
    events = state().client.audit_log(model=model, since=when)

    def human() -> None:
        table = Table("seq", "at (UTC)", "actor", "action", "subject", box=None)
        for e in events:
            table.add_row(str(e.seq), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.subject)
        console.print(table if events else "no events")

    emit([e.to_dict() for e in events], human)


@audit.command("verify")
@json_option
def audit_verify() -> None:
    """Recompute the hash chain; exit 3 and name the first bad seq if it was changed."""
    report = state().client.audit_verify()
    emit(
        report.to_dict(),
        lambda: console.print(
            f"audit chain intact: {report.checked} events"
            if report.ok
            else f"audit chain broken at seq {report.first_bad_seq}: {report.problem}"
        ),
    )
    if not report.ok:
        raise AuditChainBroken(
            f"the audit log is broken at seq {report.first_bad_seq}: {report.problem}"
        )
