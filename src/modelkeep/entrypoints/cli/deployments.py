"""``deploy NAME@REF --env ENV [...]`` and ``deploy status|history|promote|rollback``.

``deploy`` is both a command (its first word a ``NAME@REF``) and a group of commands
(its first word one of theirs): ``DeployGroup`` tells them apart by that first word."""

from __future__ import annotations

import click
from rich.table import Table

from modelkeep.domain.deployments import DeploymentChange, DesiredState
from modelkeep.entrypoints.cli.context import console, emit, json_option, state
from modelkeep.entrypoints.cli.options import why_option
from modelkeep.errors import UsageError

REASON = why_option("--reason", "--comment", "reason")
ENV = click.option(
    "--env", "env", required=True, metavar="ENV", help="The environment: dev, staging, prod, …"
)
PERCENT = click.IntRange(0, 100)
EXPECT = click.option(
    "--expect-revision",
    type=click.IntRange(0),
    metavar="N",
    help="Only if the deployment is at revision N now (compare-and-set; 0: not deployed).",
)
TARGET = "target"


class DeployGroup(click.Group):
    """``deploy NAME@REF ...`` deploys; ``deploy COMMAND ...`` runs the command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args:
            raise click.exceptions.NoArgsIsHelpError(ctx)
        if "@" in args[0] and args[0] not in self.commands:
            ctx.meta[TARGET] = args[0]
            args = args[1:]
        elif not args[0].startswith("-") and args[0] not in self.commands:
            raise UsageError(
                f"'{args[0]}' is neither a version (NAME@REF) nor a deploy command",
                "deploy a version with 'modelkeep deploy NAME@REF --env ENV', or see "
                "'modelkeep deploy --help'",
            )
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "NAME@REF --env ENV [OPTIONS]")
        formatter.write_usage(ctx.command_path, "COMMAND NAME --env ENV [OPTIONS]")


@click.group(cls=DeployGroup, invoke_without_command=True)
@click.option("--env", "env", metavar="ENV", help="The environment: dev, staging, prod, …")
@click.option("--canary", type=PERCENT, metavar="PCT", help="Answer PCT% of requests.")
@click.option(
    "--ab", type=PERCENT, metavar="PCT", help="A/B: answer PCT% of sticky keys (needs --sticky)."
)
@click.option(
    "--sticky",
    metavar="KEY",
    help="Where A/B reads its key: header:NAME, cookie:NAME or query:NAME.",
)
@click.option(
    "--shadow", type=PERCENT, metavar="PCT", help="Mirror PCT% of requests; never answers."
)
@EXPECT
@REASON
@json_option
@click.pass_context
def deploy(
    ctx: click.Context,
    env: str | None,
    canary: int | None,
    ab: int | None,
    sticky: str | None,
    shadow: int | None,
    expect_revision: int | None,
    reason: str | None,
) -> None:
    """Deploy a version to an environment, and follow its rollout.

    'modelkeep deploy NAME@REF --env ENV' makes the version the stable one there (any
    candidate is removed); with --canary PCT, --ab PCT --sticky KEY or --shadow PCT it
    becomes a candidate beside the stable version. 'deploy promote' makes the candidate
    stable; 'deploy rollback' goes back to the previous desired state. Every change is
    compare-and-set, audited, and allowed by the policy's 'environments' (docs/serving.md)."""
    if ctx.invoked_subcommand is not None:
        if any(v is not None for v in (env, canary, ab, sticky, shadow, expect_revision, reason)):
            raise UsageError(
                f"options before '{ctx.invoked_subcommand}' are for deploying a version",
                f"put them after it: modelkeep deploy {ctx.invoked_subcommand} NAME --env ENV",
            )
        return
    target = ctx.meta.get(TARGET)
    if target is None:
        raise UsageError("name the version to deploy first", "modelkeep deploy NAME@REF --env ENV")
    if env is None:
        raise UsageError("deploy needs --env ENV", f"modelkeep deploy {target} --env prod")
    change = state().client.deploy(
        target,
        env=env,
        canary=canary,
        ab=ab,
        sticky=sticky,
        shadow=shadow,
        expect_revision=expect_revision,
        reason=reason,
    )
    emit(change.to_dict(), lambda: _changed(change))


@deploy.command("status")
@click.argument("model", metavar="NAME")
@ENV
@json_option
def status(model: str, env: str) -> None:
    """What the model should serve in ENV: each version, its role and weight."""
    desired = state().client.deployment(model, env=env)
    emit(desired.to_dict(), lambda: _show(desired))


@deploy.command("history")
@click.argument("model", metavar="NAME")
@ENV
@json_option
def history(model: str, env: str) -> None:
    """Every change of the model's desired state in ENV, oldest first."""
    changes = state().client.deployment_history(model, env=env)

    def human() -> None:
        table = Table("rev", "at (UTC)", "action", "serves", "by", "reason", box=None)
        for c in changes:
            table.add_row(
                str(c.revision),
                f"{c.at:%Y-%m-%d %H:%M:%S}",
                c.action,
                _summary(c.state),
                c.actor,
                c.reason or "",
            )
        console.print(table, markup=False)

    emit([c.to_dict() for c in changes], human)


@deploy.command("promote")
@click.argument("model", metavar="NAME")
@ENV
@EXPECT
@REASON
@json_option
def promote(model: str, env: str, expect_revision: int | None, reason: str | None) -> None:
    """Make the candidate (the canary, else the shadow) the stable version in ENV."""
    change = state().client.promote_deployment(
        model, env=env, expect_revision=expect_revision, reason=reason
    )
    emit(change.to_dict(), lambda: _changed(change))


@deploy.command("rollback")
@click.argument("model", metavar="NAME")
@ENV
@EXPECT
@REASON
@json_option
def rollback(model: str, env: str, expect_revision: int | None, reason: str | None) -> None:
    """Go back to the desired state before the last change (again: one more back)."""
    change = state().client.rollback_deployment(
        model, env=env, expect_revision=expect_revision, reason=reason
    )
    emit(change.to_dict(), lambda: _changed(change))


def _summary(desired: DesiredState) -> str:
    parts: list[str] = []
    for b in desired.backends:
        share = f"{b.weight}%" if b.role != "shadow" else f"copy of {b.weight}%"
        parts.append(f"{b.ref} {b.role} {share}")
    sticky = f" (A/B by {desired.sticky})" if desired.sticky else ""
    return ", ".join(parts) + sticky if parts else "nothing"


def _changed(change: DeploymentChange) -> None:
    was = _summary(change.previous) if change.previous else "nothing"
    console.print(
        f"{change.model} in {change.env} (revision {change.revision}): {was} -> "
        f"{_summary(change.state)}",
        markup=False,
    )


def _show(desired: DesiredState) -> None:
    console.print(f"{desired.model} in {desired.env}, revision {desired.revision}", markup=False)
    table = Table("version", "digest", "role", "weight", box=None)
    for b in desired.backends:
        table.add_row(b.ref, b.digest, b.role, f"{b.weight}%")
    console.print(table, markup=False)
    if desired.sticky:
        console.print(f"A/B: the same {desired.sticky} always reaches the same version")
