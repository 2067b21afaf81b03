"""What every command shares: the global options, the client, and how to print."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from modelkeep.client.client import Client, connect
from modelkeep.config import Settings

F = TypeVar("F", bound=Callable[..., Any])
PROGRESS_THRESHOLD = 8 * 1024 * 1024

READ_ONLY_COMMANDS = frozenset(
    {
        "models list", "models show", "versions", "show", "pull", "diff", "resolve",
        "alias history", "verify", "storage", "retention show", "audit log", "audit verify",
        "audit key", "audit head", "audit checkpoints", "users list", "tokens list",
        "runs show", "runs list", "runs compare", "runs reproduce", "datasets show",
        "datasets list",
        "datasets versions", "datasets pull", "lineage", "policy show", "policy history",
        "policy test", "checks", "gate", "attest list", "attest export", "attest verify",
        "card", "report governance", "deploy status", "deploy history", "deploy export",
        # they record at most a bundle digest on a version, which needs a store already
        "bundle build", "bundle verify", "bundle export-oci", "sign",
    }
)  # fmt: skip
"""Commands that only read: on an embedded store that does not exist they say so instead
of making an empty store (which would hide a mistyped --uri). Every other command writes,
and makes the store on first use (tests/e2e/test_cli_first_hour.py lists them all)."""


@dataclass
class CliState:
    uri: str | None = None
    json: bool = False
    emitted: bool = False
    _client: Client | None = field(default=None, repr=False)
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env(os.environ, uri=self.uri)
        return self._settings

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = connect(settings=self.settings, create=not _reads_only())
            if self._client.created_store is not None:
                err_console.print(f"made a new store at {self.settings.uri}", markup=False)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _reads_only() -> bool:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return False
    return ctx.command_path.partition(" ")[2] in READ_ONLY_COMMANDS


def state() -> CliState:
    return click.get_current_context().ensure_object(CliState)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CliState).json = True


def json_option(func: F) -> F:
    """``--json`` on a command, equal to the global ``modelkeep --json``."""
    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        is_eager=True,
        help="Print one JSON document on stdout.",
    )(func)


def if_exists_option(func: F) -> F:
    """``--if-exists fail|reuse``: what a push of files registered already does."""
    return click.option(
        "--if-exists",
        "if_exists",
        type=click.Choice(("fail", "reuse")),
        default="fail",
        show_default=True,
        help="These exact files are a version already: fail (duplicate_version, naming "
        "it) or reuse that version (exit 0; for scripts that run again).",
    )(func)


PIPE_WIDTH = 200  # piped output keeps whole rows for grep and friends


class _Out:
    """Consoles made on first use (nothing at import time), wide when not a terminal."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr

    def _console(self) -> Console:
        console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        if not console.is_terminal:
            console.width = PIPE_WIDTH
        return console

    def print(self, *objects: Any, markup: bool = True) -> None:
        """``markup=False`` for text that may hold brackets (user text, rule lines)."""
        self._console().print(*objects, markup=markup)

    @property
    def is_terminal(self) -> bool:
        return self._console().is_terminal

    def progress_console(self) -> Console:
        return self._console()


console = _Out(stderr=False)
err_console = _Out(stderr=True)


def emit(document: Any, human: Callable[[], None]) -> None:
    """Print ``document`` as JSON with --json, else call ``human`` to print it readably."""
    current = state()
    current.emitted = True
    if current.json:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        human()


@contextmanager
def transfer_progress(description: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for transfers over a few MB (MODELKEEP_PROGRESS decides)."""
    mode = state().settings.progress
    wanted = mode == "always" or (
        mode == "auto" and total >= PROGRESS_THRESHOLD and err_console.is_terminal
    )
    if not wanted:
        yield None
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console.progress_console(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield _Bar(bar, task, description)


class _Bar:
    """Advances the bar by bytes done; ``skipped`` bytes (already stored, not sent) are
    counted in the bar too, and shown beside it."""

    def __init__(self, bar: Progress, task: TaskID, description: str) -> None:
        self._bar, self._task, self._description = bar, task, description
        self._skipped = 0

    def __call__(self, n: int) -> None:
        self._bar.advance(self._task, n)

    def skipped(self, n: int) -> None:
        self._skipped += n
        label = f"{self._description} ({human_size(self._skipped)} already stored)"
        self._bar.update(self._task, description=label)


def short(digest: str) -> str:
    return digest[:19]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
