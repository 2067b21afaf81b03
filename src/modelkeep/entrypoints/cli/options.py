"""Options shared by several commands, and the one spelling each is documented under.

Some commands spelt one idea two ways (``promote --to`` but ``rollback --stage``;
``approve --comment`` but ``--reason`` elsewhere). Each option answers to both spellings,
so a script written either way works; help and docs/cli.md show the command's own one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from modelkeep.domain.names import STAGES

F = TypeVar("F", bound=Callable[..., Any])


class OneSpelling(click.Option):
    """An option that accepts every name it is given but is shown under its first."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        names, self.opts = self.opts, self.opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = names


def stage_option(*names: str, required: bool, help: str = "The stage.") -> Callable[[F], F]:
    """``--to`` or ``--stage`` (whichever is first is the documented one)."""
    return click.option(
        *names, "stage", cls=OneSpelling, type=click.Choice(STAGES), required=required, help=help
    )


def why_option(*names: str, help: str = "Why, for the history and audit log.") -> Callable[[F], F]:
    """``--reason`` or ``--comment`` (whichever is first is the documented one)."""
    return click.option(*names, cls=OneSpelling, metavar="TEXT", help=help)
