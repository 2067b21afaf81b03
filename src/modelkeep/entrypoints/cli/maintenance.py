"""``verify``, ``gc``, ``audit log | verify | checkpoint | key | head | checkpoints``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.table import Table

from modelkeep.domain.audit import AuditHead, ChainReport, CheckpointEntry
from modelkeep.domain.maintenance import GcReport, VerifyReport
from modelkeep.entrypoints.cli import parsing
from modelkeep.entrypoints.cli.context import (
    CliState,
    console,
    emit,
    human_size,
    json_option,
    plural,
    state,
)
from modelkeep.errors import AuditChainBroken, DestinationConflict, DigestMismatch, IOFailure
from modelkeep.services import audit as audit_service


@click.command()
@click.argument("ref", metavar="[NAME@REF]", required=False)
@click.option("--all", "everything", is_flag=True, help="Every version (the default).")
@click.option(
    "--sample",
    type=click.FloatRange(0, 100, min_open=True),
    metavar="PERCENT",
    help="Check only this share of the blobs (chunks), chosen at random: a routine run.",
)
@json_option
def verify(ref: str | None, everything: bool, sample: float | None) -> None:
    """Re-hash the blobs of one version, or of every version; exit 3 if any is damaged.

    Also checks the database's rows against the audit chain and their blobs (aliases and
    their history, version records, file lists, recipes) and names every row that
    disagrees (exit 3 too)."""
    if ref and everything:
        raise click.UsageError("give NAME@REF or --all, not both")
    report = state().client.verify(ref, sample=sample)
    emit(report.to_dict(), lambda: _print_verify(report))
    if not report.ok:
        # the error code of a failed verify stays digest_mismatch (docs/errors.md)
        raise DigestMismatch(
            _found(report),
            "run 'modelkeep verify --all' for the full list; restore damaged blobs and a "
            "database changed outside modelkeep from a backup",
        )


def _found(report: VerifyReport) -> str:
    """One line: what is wrong, the first row that disagrees, the versions broken."""
    parts = []
    if report.damaged:
        parts.append(plural(len(report.damaged), "damaged blob"))
    if report.inconsistent_versions:
        parts.append(plural(len(report.inconsistent_versions), "altered version"))
    if report.mismatches:
        first = report.mismatches[0].describe()
        parts.append(f"{plural(len(report.mismatches), 'row')} unlike what was recorded ({first})")
    broken = report.broken_versions
    return ", ".join(parts) + (f"; broken: {', '.join(broken)}" if broken else "")


def _print_verify(report: VerifyReport) -> None:
    share = f" (a random {report.sample:g}%)" if report.sample is not None else ""
    console.print(
        f"checked {plural(report.checked_blobs, 'blob')}{share} of "
        f"{plural(report.checked_versions, 'version')}"
    )
    if report.ok:
        console.print("no damage found")
        return
    if report.damaged:
        table = Table("blob", "problem", "breaks", "files", box=None)
        for blob in report.damaged:
            table.add_row(
                blob.digest, blob.problem, ", ".join(blob.versions), ", ".join(blob.files)
            )
        console.print(table)
    for ref in report.inconsistent_versions:
        console.print(f"{ref}: its files or metadata no longer match what was registered")
    for mismatch in report.mismatches:
        console.print(f"{mismatch.kind} {mismatch.describe()}", markup=False)


@click.command()
@click.option("--dry-run", is_flag=True, help="Report what would be freed; change nothing.")
@json_option
def gc(dry_run: bool) -> None:
    """Delete blobs no version uses (older than the grace period).

    First applies every model's retention policy ('modelkeep retention'): the versions
    it does not keep are purged, and the blobs only they used are deleted too."""
    report = state().client.gc(dry_run=dry_run)
    emit(report.to_dict(), lambda: _print_gc(report))


def _print_gc(report: GcReport) -> None:
    if report.purged:
        verb = "would purge" if report.dry_run else "purged"
        console.print(f"{verb} {', '.join(report.purged)} (retention)")
    verb = "would free" if report.dry_run else "freed"
    console.print(
        f"{verb} {human_size(report.bytes)} in {report.blobs} blobs and "
        f"{human_size(report.temporary_bytes)} in {report.temporary_files} abandoned uploads"
        f"; {report.kept_in_grace} unused blobs kept (younger than the grace period)"
    )


@click.group()
def audit() -> None:
    """Read and check the tamper-evident audit log."""


def _set_json_lines(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CliState).json = True


@audit.command("log")
@click.option("--model", metavar="NAME", help="Only events about this model.")
@click.option("--since", metavar="TIME", help="Only events at or after this ISO-8601 time.")
@click.option(
    "--json",
    "json_output",
    is_flag=True,
    expose_value=False,
    callback=_set_json_lines,
    is_eager=True,
    help="Print JSON Lines: one event per line, not one JSON document (so does "
    "'modelkeep --json audit log'). Every field the hash covers is there, so the full "
    "log can be re-verified without modelkeep (docs/design.md).",
)
def audit_log(model: str | None, since: str | None) -> None:
    """List audit events, oldest first."""
    when = parsing.timestamp(since, "--since") if since else None
    events = state().client.audit_log(model=model, since=when)
    current = state()
    if current.json:
        current.emitted = True
        for line in audit_service.json_lines(events):
            sys.stdout.write(line + "\n")
        return
    table = Table("seq", "at (UTC)", "actor", "action", "subject", box=None)
    for e in events:
        table.add_row(str(e.seq), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.subject)
    console.print(table if events else "no events")


@audit.command("verify")
@json_option
def audit_verify() -> None:
    """Recompute the chain and check it against the signed checkpoints; exit 3 if bad.

    Names the first bad seq when events were edited, deleted or reordered, or the log
    was truncated or rewritten below a checkpoint; and any forged checkpoint."""
    report = state().client.audit_verify()
    emit(report.to_dict(), lambda: _print_chain(report))
    if not report.ok:
        where = f" at seq {report.first_bad_seq}" if report.first_bad_seq is not None else ""
        raise AuditChainBroken(f"the audit log is broken{where}: {report.problem}")


def _print_chain(report: ChainReport) -> None:
    checked = plural(len(report.checkpoints), "signed checkpoint")
    if report.ok:
        matched = (
            f"; {checked} match, newest {report.checkpoints[-1]}" if report.checkpoints else ""
        )
        console.print(f"audit chain intact: {report.checked} events{matched}")
        return
    where = f" at seq {report.first_bad_seq}" if report.first_bad_seq is not None else ""
    console.print(f"audit chain broken{where}: {report.problem}")
    if report.checkpoint is not None:
        console.print(f"found by checkpoint {report.checkpoint} ({checked} checked)")


@audit.command("checkpoint")
@json_option
def audit_checkpoint() -> None:
    """Sign the audit head and store it outside the database (a global admin).

    The checkpoint (seq, hash, time, signed with the store's Ed25519 key) is written to
    the blob store as checkpoints/SEQ-HASH.json, so 'audit verify' catches a later
    truncation or rewrite of the log up to it."""
    result = state().client.audit_checkpoint()
    emit(
        result.to_dict(),
        lambda: console.print(
            f"checkpoint {result.name}: seq {result.seq}, hash {result.hash}, blob {result.digest}"
        ),
    )


@audit.command("key")
@click.option("--hex", "as_hex", is_flag=True, help="Print the raw 32-byte key in hex.")
@click.option(
    "--format",
    "key_format",
    type=click.Choice(("audit", "openssf")),
    default="audit",
    show_default=True,
    help="audit: the Ed25519 key of checkpoints, attestations and bundles; openssf: the "
    "P-256 key of 'modelkeep sign' signatures.",
)
@json_option
def audit_key(as_hex: bool, key_format: str) -> None:
    """Print the store's audit public key (PEM; raw hex with --hex).

    The Ed25519 key that checks the checkpoints; made on first use. Keep a copy where
    the store's writers cannot change it. With --format openssf, the P-256 key that
    'model_signing verify key --public_key' takes."""
    if key_format == "openssf":
        if as_hex:
            raise click.UsageError("--hex goes with the audit key only")
        pem = state().client.openssf_key()

        def print_pem() -> None:
            sys.stdout.write(pem)

        emit({"format": "openssf", "pem": pem}, print_pem)
        return
    key = state().client.audit_key()

    def human() -> None:
        sys.stdout.write(key.hex + "\n" if as_hex else key.pem)

    emit(key.to_dict(), human)


@audit.command("head")
@json_option
def audit_head() -> None:
    """Print where the audit chain ends (seq and hash) and the newest signed checkpoint.

    Record the head, and later check that the log still reaches it (deleting the newest
    events is caught only so); check the checkpoint's signature with a copy of
    'modelkeep audit key' kept elsewhere (docs/design.md, "Re-verifying without modelkeep")."""
    head = state().client.audit_head()
    emit(head.to_dict(), lambda: _print_head(head))


def _print_head(head: AuditHead) -> None:
    console.print(f"head: seq {head.seq}, hash {head.hash} (store {head.store_id})")
    latest = head.checkpoint
    if latest is None:
        console.print("no signed checkpoint yet; make one with 'modelkeep audit checkpoint'")
        return
    signed = latest.checkpoint
    console.print(f"newest checkpoint: seq {signed.seq}, hash {signed.hash}, at {signed.at}")
    console.print(f"  {signed.name}, signed by key {latest.public_key}")


@audit.command("checkpoints")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Also save each checkpoint file, byte for byte, into DIR (made if missing).",
)
@json_option
def audit_checkpoints(out: Path | None) -> None:
    """List the signed checkpoint files (seq, name), oldest first; --out DIR saves them.

    The saved files are what the checkpoint verifier of docs/design.md reads: check them
    with your own copy of the store's public key, not the one each file names."""
    client = state().client
    entries = client.audit_checkpoints()
    if out is not None:
        _save_checkpoints(out, [(e, client.audit_checkpoint_file(e.seq)) for e in entries])
    emit(
        {"items": [e.to_dict() for e in entries], "out": str(out) if out else None},
        lambda: _print_checkpoints(entries, out),
    )


def _print_checkpoints(entries: list[CheckpointEntry], out: Path | None) -> None:
    for entry in entries:
        console.print(f"{entry.seq:>8}  {entry.name}")
    if not entries:
        console.print("no signed checkpoint yet; make one with 'modelkeep audit checkpoint'")
    elif out is not None:
        console.print(f"saved {plural(len(entries), 'file')} in {out}")


def _save_checkpoints(out: Path, files: list[tuple[CheckpointEntry, bytes]]) -> None:
    """Each file saved whole (renamed into place); if a file of that name in DIR holds
    other bytes, nothing is saved."""
    targets = [(out / entry.name.rsplit("/", 1)[-1], data) for entry, data in files]
    try:
        for target, data in targets:
            if target.exists() and target.read_bytes() != data:
                raise DestinationConflict(
                    f"{target} exists and differs from the store's checkpoint",
                    "save into an empty directory",
                )
        out.mkdir(parents=True, exist_ok=True)
        for target, data in targets:
            temp = target.with_name(f".{target.name}.partial")
            temp.write_bytes(data)
            os.replace(temp, target)
    except OSError as exc:
        raise IOFailure(
            f"cannot save the checkpoints in {out}: {exc.strerror or exc}",
            "name a directory you can write to",
        ) from None
