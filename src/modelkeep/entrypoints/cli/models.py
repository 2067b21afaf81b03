"""``modelkeep models create | list | show``."""

from __future__ import annotations

import click
from rich.table import Table

from modelkeep.domain.versions import Model
from modelkeep.entrypoints.cli.context import console, emit, json_option, state


@click.group()
def models() -> None:
    """Create, list and show registered models."""


@models.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the model is for.")
@click.option(
    "--require",
    "required",
    multiple=True,
    metavar="FIELD",
    help="Metadata every version must have: commit, seed, run, params, metrics, "
    "datasets, message, or params.KEY, metrics.KEY, meta.KEY. Repeatable.",
)
@json_option
def create(name: str, description: str, required: tuple[str, ...]) -> None:
    """Register a new model NAME."""
    model = state().client.create_model(name, description=description, require=required)
    emit(model.to_dict(), lambda: console.print(f"created model {model.name}"))


@models.command("list")
@json_option
def list_models() -> None:
    """List every model."""
    found = state().client.list_models()

    def human() -> None:
        table = Table("name", "versions", "latest", "description", box=None)
        for m in found:
            table.add_row(m.name, str(m.version_count), str(m.latest or "-"), m.description)
        console.print(
            table if found else "no models yet: create one with 'modelkeep models create NAME'"
        )

    emit([m.to_dict() for m in found], human)


@models.command("show")
@click.argument("name")
@json_option
def show(name: str) -> None:
    """Show one model."""
    model = state().client.get_model(name)
    emit(model.to_dict(), lambda: _print_model(model))


def _print_model(model: Model) -> None:
    table = Table(show_header=False, box=None)
    table.add_row("name", model.name)
    table.add_row("description", model.description or "-")
    table.add_row("requires", ", ".join(model.required) or "-")
    table.add_row("versions", str(model.version_count))
    table.add_row("latest", str(model.latest or "-"))
    table.add_row("created", f"{model.created_at:%Y-%m-%d %H:%M:%S} UTC by {model.created_by}")
    console.print(table)
