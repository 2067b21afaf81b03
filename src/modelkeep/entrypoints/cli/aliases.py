"""``alias set | rm | history``, ``promote``, ``rollback``."""

from __future__ import annotations

import click
from rich.table import Table

from modelkeep.domain.aliases import AliasEvent
from modelkeep.domain.governance import Promotion
from modelkeep.entrypoints.cli.context import console, emit, json_option, state
from modelkeep.entrypoints.cli.options import stage_option, why_option

REASON = why_option("--reason", "--comment", "reason")


def _moved(event: AliasEvent) -> None:
    old = f"{event.model}@{event.old}" if event.old else "nothing"
    new = f"{event.model}@{event.new}" if event.new else "nothing"
    console.print(f"{event.alias}: {old} -> {new}")


@click.group()
def alias() -> None:
    """Move free aliases (champion, candidate, …) and read their history."""


@alias.command("set")
@click.argument("ref", metavar="NAME@REF")
@click.argument("name", metavar="ALIAS")
@REASON
@json_option
def set_alias(ref: str, name: str, reason: str | None) -> None:
    """Point ALIAS at the version NAME@REF."""
    event = state().client.set_alias(ref, name, reason=reason)
    emit(event.to_dict(), lambda: _moved(event))


@alias.command("rm")
@click.argument("model", metavar="NAME")
@click.argument("name", metavar="ALIAS")
@REASON
@json_option
def remove_alias(model: str, name: str, reason: str | None) -> None:
    """Remove ALIAS from model NAME (its history stays)."""
    event = state().client.remove_alias(model, name, reason=reason)
    emit(event.to_dict(), lambda: _moved(event))


@alias.command("history")
@click.argument("model", metavar="NAME")
@click.argument("name", metavar="[ALIAS]", required=False)
@json_option
def history(model: str, name: str | None) -> None:
    """Every move of the model's aliases and stages (or of one ALIAS), oldest first."""
    events = state().client.alias_history(model, name)

    def human() -> None:
        table = Table("at (UTC)", "alias", "action", "from", "to", "by", "reason", box=None)
        for e in events:
            table.add_row(
                f"{e.at:%Y-%m-%d %H:%M:%S}",
                e.alias,
                e.action,
                str(e.old or "-"),
                str(e.new or "-"),
                e.actor,
                e.reason or "",
            )
        console.print(table if events else "no alias has moved yet")

    emit([e.to_dict() for e in events], human)


@click.command()
@click.argument("ref", metavar="NAME@REF")
@stage_option("--to", "--stage", required=True)
@REASON
@click.option(
    "--override",
    is_flag=True,
    help="Promote although the policy is not met (an admin; needs --reason; marked loudly).",
)
@json_option
def promote(ref: str, stage: str, reason: str | None, override: bool) -> None:
    """Move a stage to the version NAME@REF, if the policy is met.

    Otherwise nothing moves and every unmet rule is listed ('modelkeep policy test'
    explains them). Each promotion writes a signed attestation of its evidence."""
    done = state().client.promotion(ref, to=stage, reason=reason, override=override)
    emit(done.to_dict(), lambda: _promoted(done))


def _promoted(done: Promotion) -> None:
    """The move, as for any alias; the attestation's digest is in --json and 'attest list'.

    Every move is attested: a promotion without an attestation moved nothing, because the
    stage was there already (--json shows the stage's last move, and attestation null)."""
    if done.attestation is None:
        where = f"{done.gate.model}@{done.gate.number}"
        console.print(f"{done.gate.stage} is {where} already; nothing changed")
        return
    _moved(done.event)
    for note in done.gate.evaluation.notes:  # e.g. evidence newer than an approval
        console.print(f"note: {note}", markup=False)
    if done.attestation is not None and done.attestation.override_reason:
        unmet = ", ".join(r.rule for r in done.gate.evaluation.unmet)
        console.print(f"ADMIN OVERRIDE of unmet rules: {unmet}", markup=False)


@click.command()
@click.argument("model", metavar="NAME")
@stage_option("--stage", "--to", required=True)
@REASON
@json_option
def rollback(model: str, stage: str, reason: str | None) -> None:
    """Move a stage back to the version it pointed at before its last promotion."""
    event = state().client.rollback(model, stage=stage, reason=reason)
    emit(event.to_dict(), lambda: _moved(event))
