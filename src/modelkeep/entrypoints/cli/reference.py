"""The CLI reference in Markdown, generated from the click command tree itself.

``python -m modelkeep.entrypoints.cli.reference > docs/cli.md`` (``make docs``) writes it;
``tests/test_docs.py`` fails when ``docs/cli.md`` differs from what this prints. Help is
rendered by click's own formatter at a fixed width, so the output does not depend on
the terminal it runs in.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import click

PROG_NAME = "modelkeep"
WIDTH = 100
REGENERATE = "make docs"
MODULE = "modelkeep.entrypoints.cli.reference"  # not __name__: that is __main__ under -m


def walk(
    command: click.Command, parent: click.Context | None = None, name: str = PROG_NAME
) -> Iterator[click.Context]:
    """A context for ``command`` and each of its subcommands, depth first, by name."""
    settings: dict[str, Any] = dict(command.context_settings)
    if parent is None:
        settings.update(terminal_width=WIDTH, max_content_width=WIDTH)
    ctx = click.Context(command, info_name=name, parent=parent, **settings)
    yield ctx
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, ctx, sub_name)


def command_paths(root: click.Command) -> list[str]:
    """Every full command path, e.g. ``modelkeep alias set``, in reference order."""
    return [ctx.command_path for ctx in walk(root)]


def render(root: click.Command) -> str:
    """The whole reference: a contents list, then each command's ``--help``."""
    contexts = list(walk(root))
    lines = [
        f"# {PROG_NAME} command-line reference",
        "",
        f"Generated from the CLI by `python -m {MODULE}`; "
        f"do not edit by hand, run `{REGENERATE}` to regenerate.",
        "",
    ]
    lines += [f"- [`{ctx.command_path}`](#{_anchor(ctx.command_path)})" for ctx in contexts]
    for ctx in contexts:
        lines += ["", f"## {ctx.command_path}", "", "```text", ctx.get_help().rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: punctuation (the '@' of NAME@REF) dropped."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def main() -> None:
    from modelkeep.entrypoints.cli import cli

    sys.stdout.write(render(cli))


if __name__ == "__main__":
    main()
