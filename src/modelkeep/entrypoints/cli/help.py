"""``modelkeep --help``: the commands grouped by task, each group with an example."""

from __future__ import annotations

from dataclasses import dataclass

import click


@dataclass(frozen=True)
class Task:
    title: str
    example: str
    """One command line of the task, shown as it is (tests/e2e/test_cli_first_hour.py
    parses each)."""
    commands: tuple[str, ...]


TASKS = (
    Task(
        "Register and fetch models",
        "modelkeep push fraud model.onnx --metric auc=0.91",
        ("models", "push", "versions", "show", "pull", "diff", "resolve", "archive", "unarchive"),
    ),
    Task(
        "Aliases and stages",
        "modelkeep promote fraud@3 --to staging --reason 'beats v2 on holdout'",
        ("alias", "promote", "rollback"),
    ),
    Task(
        "Experiments and data",
        "modelkeep runs start --experiment fraud --param lr=0.1",
        ("runs", "datasets", "lineage"),
    ),
    Task(
        "Governance: policies, checks, approvals, evidence",
        "modelkeep gate fraud@3 --to production",
        ("policy", "check", "checks", "approve", "reject", "gate", "attest", "card", "report"),
    ),
    Task(
        "Deploy and roll out",
        "modelkeep deploy fraud@4 --env prod --canary 10",
        ("deploy",),
    ),
    Task(
        "Serving bundles and signatures",
        "modelkeep bundle build fraud@production -o fraud.bundle.tar.gz",
        ("bundle", "sign"),
    ),
    Task(
        "Integrity and storage",
        "modelkeep verify --all",
        ("verify", "audit", "gc", "storage", "retention"),
    ),
    Task(
        "Serve and administer",
        "modelkeep users create alice --role admin",
        ("server", "gateway", "users", "tokens"),
    ),
)


class TaskGroup(click.Group):
    """A group whose help lists its commands under the tasks of ``TASKS``."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed: set[str] = set()
        for task in TASKS:
            rows = self._rows(ctx, formatter, task.commands)
            listed.update(task.commands)
            if rows:
                with formatter.section(task.title):
                    formatter.write_dl(rows)
                    formatter.write(f"\n{'':>{formatter.current_indent}}e.g. {task.example}\n")
        rest = [name for name in self.list_commands(ctx) if name not in listed]
        if rest:  # a command no task names yet: still listed
            with formatter.section("Other commands"):
                formatter.write_dl(self._rows(ctx, formatter, rest))

    def _rows(
        self, ctx: click.Context, formatter: click.HelpFormatter, names: tuple[str, ...] | list[str]
    ) -> list[tuple[str, str]]:
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        return rows
