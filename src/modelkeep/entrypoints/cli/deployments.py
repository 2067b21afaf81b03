"""``deploy NAME@REF --env ENV [...]`` and ``deploy status|history|promote|rollback``.

``deploy`` is both a command (its first word a ``NAME@REF``) and a group of commands
(its first word one of theirs): ``DeployGroup`` tells them apart by that first word."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import yaml
from rich.table import Table

from modelkeep.client import files
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
VERSION = "NAME@REF"
"""The name the deploy-a-version command is listed under; any word with '@' reaches it."""


class DeployGroup(click.Group):
    """``deploy NAME@REF ...`` deploys that version; ``deploy COMMAND ...`` runs the
    command: a first word holding '@' is a version, never a command name."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if "@" in cmd_name:
            return self.commands[VERSION]
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            raise UsageError(
                f"'{args[0]}' is neither a version (NAME@REF) nor a deploy command",
                "deploy a version with 'modelkeep deploy NAME@REF --env ENV', or see "
                "'modelkeep deploy --help'",
            )
        return super().resolve_command(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "NAME@REF --env ENV [OPTIONS]")
        formatter.write_usage(ctx.command_path, "COMMAND NAME --env ENV [OPTIONS]")


@click.group(cls=DeployGroup)
def deploy() -> None:
    """Deploy versions to environments, and follow their rollout.

    'modelkeep deploy NAME@REF --env ENV' makes the version the stable one there (any
    candidate is removed); with --canary PCT, --ab PCT --sticky KEY or --shadow PCT it
    becomes a candidate beside the stable version. 'deploy promote' makes the candidate
    stable; 'deploy rollback' goes back to the previous desired state. Every change is
    compare-and-set, audited, and allowed by the policy's 'environments' (docs/serving.md)."""


@deploy.command(VERSION)
@ENV
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
def deploy_version(
    ctx: click.Context,
    env: str,
    canary: int | None,
    ab: int | None,
    sticky: str | None,
    shadow: int | None,
    expect_revision: int | None,
    reason: str | None,
) -> None:
    """Deploy the version NAME@REF to ENV: stable, or a candidate beside the stable one.

    Without a percent the version becomes the only, stable, one. --canary PCT: it answers
    PCT% of requests; --ab PCT --sticky KEY: PCT% of keys, the same key always reaching
    the same version; --shadow PCT: it gets a copy of PCT% of requests and never answers."""
    target = ctx.info_name or ""  # 'modelkeep deploy fraud@4 ...': the word is the version
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


@deploy.command("export")
@click.argument("model", metavar="NAME")
@ENV
@click.option(
    "--kserve",
    is_flag=True,
    help="As a KServe InferenceService (serving.kserve.io/v1beta1); the only format yet.",
)
@click.option(
    "--oci-repo",
    required=True,
    metavar="REPO",
    help="Where 'bundle export-oci' layouts are pushed: registry.example.com/models/fraud.",
)
@click.option("--namespace", metavar="NS", help="The Kubernetes namespace to name.")
@click.option(
    "--runtime",
    metavar="NAME",
    help="The KServe ServingRuntime to use (default: KServe's for the model format).",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write to this file, not stdout."
)
@json_option
def export(
    model: str,
    env: str,
    kserve: bool,
    oci_repo: str,
    namespace: str | None,
    runtime: str | None,
    output: str | None,
) -> None:
    """Write the desired state in ENV for a cluster: with --kserve, a KServe
    InferenceService, each version pinned by the digest of its OCI artifact under REPO
    (what 'bundle export-oci' writes, pushed there). YAML to stdout (JSON with --json),
    or YAML to FILE with -o.

    A canary becomes the spec with canaryTrafficPercent; KServe keeps the previous ready
    revision as the stable one, so apply the stable-only export first. A shadow or a
    sticky A/B test has no KServe equivalent and is refused (docs/serving.md)."""
    if not kserve:
        raise UsageError("name the format to export", "add --kserve")
    document = state().client.kserve_inference_service(
        model, env=env, oci_repo=oci_repo, namespace=namespace, runtime=runtime
    )
    text = yaml.safe_dump(document, sort_keys=False)
    if output is None:  # the document itself: YAML for kubectl, or JSON with --json
        if state().json:
            text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        state().emitted = True
        sys.stdout.write(text)
        return
    # a file holds the YAML either way; --json makes what is printed about it JSON
    files.write_atomically(Path(output), lambda out: out.write(text.encode("utf-8")), force=True)
    emit(
        {"path": output, "kind": document["kind"], "name": document["metadata"]["name"]},
        lambda: console.print(f"wrote {output}", markup=False),
    )


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
