"""The ``modelkeep`` command. Errors end as one line on stderr and a stable exit code:
0 done, 1 refused or failed, 2 usage, 3 integrity."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click

from modelkeep.domain.text import did_you_mean
from modelkeep.entrypoints.cli import (
    aliases,
    bundles,
    datasets,
    deployments,
    gateway,
    governance,
    lineage,
    maintenance,
    models,
    runs,
    server,
    storage,
    users,
    versions,
)
from modelkeep.entrypoints.cli.context import CliState
from modelkeep.entrypoints.cli.help import TaskGroup
from modelkeep.errors import InternalError, IOFailure, ModelkeepError, UsageError
from modelkeep.version import __version__


@click.group(cls=TaskGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--uri",
    envvar="MODELKEEP_URI",
    metavar="URI",
    show_envvar=True,
    help="The registry: a directory (default ./.modelkeep) or a server's http(s):// URL.",
)
@click.option("--json", "json_output", is_flag=True, help="Print one JSON document on stdout.")
@click.version_option(__version__, prog_name="modelkeep")
@click.pass_context
def cli(ctx: click.Context, uri: str | None, json_output: bool) -> None:
    """modelkeep: versioned, content-addressed, audited models.

    Every command works on the store at --uri: a directory (the embedded store, made by
    the first write) or the http(s):// URL of a 'modelkeep server'. 'modelkeep COMMAND
    --help' says more; docs/getting-started.md walks through a first model."""
    cli_state = ctx.ensure_object(CliState)
    cli_state.uri = uri
    cli_state.json = cli_state.json or json_output
    ctx.call_on_close(cli_state.close)


for command in (
    models.models,
    versions.push,
    versions.list_versions,
    versions.show,
    versions.pull,
    versions.diff,
    versions.resolve,
    aliases.alias,
    aliases.promote,
    aliases.rollback,
    versions.archive,
    versions.unarchive,
    maintenance.verify,
    maintenance.gc,
    storage.storage,
    storage.retention,
    maintenance.audit,
    users.users,
    users.tokens,
    runs.runs,
    datasets.datasets,
    lineage.lineage,
    governance.policy,
    governance.check,
    governance.list_checks,
    governance.approve,
    governance.reject,
    governance.gate,
    governance.attest,
    governance.card,
    governance.report,
    bundles.bundle,
    bundles.sign,
    deployments.deploy,
    server.server,
    gateway.gateway,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; never show a traceback to a user."""
    args = sys.argv[1:] if argv is None else argv
    state = CliState(json="--json" in args)
    try:
        cli.main(args=args, prog_name="modelkeep", standalone_mode=False, obj=state)
    except ModelkeepError as exc:
        _fail(exc, state)
    except click.exceptions.NoArgsIsHelpError as exc:
        path = exc.ctx.command_path if exc.ctx else "modelkeep"
        if not state.json and exc.ctx is not None:
            click.echo(exc.ctx.get_help())
        _fail(UsageError(f"'{path}' needs a command", f"see '{path} --help'"), state)
    except click.ClickException as exc:
        _fail(UsageError(exc.format_message().rstrip("."), _usage_hint(exc)), state)
    except click.exceptions.Abort:
        sys.stderr.write("error[interrupted]: stopped; nothing was half-written\n")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.stderr.write("error[interrupted]: stopped; nothing was half-written\n")
        sys.exit(130)
    except OSError as exc:
        _fail(IOFailure(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")), state)
    except Exception as exc:  # a bug: still one line, never a traceback
        _fail(InternalError(f"{type(exc).__name__}: {exc}"), state)
    sys.exit(0)


def _usage_hint(exc: click.ClickException) -> str:
    ctx: Any = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "modelkeep"
    return f"{_closest_choice(exc)}see '{path} --help'"


CHOICE_REFUSED = re.compile(r"'(?P<value>[^']*)' is not one of ")


def _closest_choice(exc: click.ClickException) -> str:
    """ "did you mean 'production'? " for ``--to prod`` (click suggests commands itself)."""
    param = getattr(exc, "param", None)
    found = CHOICE_REFUSED.search(exc.format_message())
    if param is None or found is None or not isinstance(param.type, click.Choice):
        return ""
    return did_you_mean(found["value"], [str(choice) for choice in param.type.choices])


def _fail(exc: ModelkeepError, state: CliState) -> None:
    if state.json and not state.emitted:
        sys.stdout.write(json.dumps({"error": exc.to_dict()}, ensure_ascii=False) + "\n")
    message = " ".join(f"error[{exc.code}]: {exc}".split())  # always one line
    sys.stderr.write(message + "\n")
    sys.exit(exc.exit_code)
