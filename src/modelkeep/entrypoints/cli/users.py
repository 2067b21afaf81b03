"""``users create | list | grant | revoke | disable | enable | delete``, ``tokens create | list |
revoke``.

An operator runs these against the store itself (its directory, or MODELKEEP_DATABASE_URL):
whoever opens a store directly acts as a global admin.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.table import Table

from modelkeep.domain.access import ROLES, Grant, describe_scope
from modelkeep.domain.users import IssuedToken, Token, User
from modelkeep.entrypoints.cli.context import console, emit, json_option, state

ROLE = click.option(
    "--role", type=click.Choice(tuple(ROLES)), required=True, help="The role to grant."
)
MODEL = click.option(
    "--model", metavar="NAME", help="Grant the role on this model only (default: every model)."
)
EXPERIMENT = click.option(
    "--experiment",
    metavar="NAME",
    help="Grant the role on this experiment's runs only (instead of --model).",
)
DATASET = click.option(
    "--dataset", metavar="NAME", help="Grant the role on this dataset only (instead of --model)."
)
EXPIRES_IN = click.option(
    "--expires-in",
    "expires_in",
    type=click.IntRange(1, 36500),
    metavar="DAYS",
    help="The token stops working after this many days (default: never).",
)


def _days(days: int | None) -> timedelta | None:
    return timedelta(days=days) if days is not None else None


def _grant_text(grant: Grant) -> str:
    return grant.role if grant.scope is None else f"{grant.role} of {describe_scope(grant.scope)}"


def _roles_text(user: User) -> str:
    return ", ".join(_grant_text(g) for g in user.grants) or "no role"


def _time(at: datetime | None, default: str = "-") -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}" if at else default


def _expiry(token: Token) -> str:
    if token.expires_at is None:
        return "never expires"
    return f"expires {_time(token.expires_at)} UTC"


def _print_secret(issued: IssuedToken) -> None:
    info = issued.info
    console.print(
        f"token {info.id} of {info.user} ({_expiry(info)}); shown only now, keep it secret:"
    )
    console.print(issued.secret)


def _token_document(token: Token, now: datetime) -> dict[str, Any]:
    return {**token.to_dict(), "state": token.state(now)}


@click.group()
def users() -> None:
    """Manage the users of a server and their roles (an operator, on the store)."""


@users.command("create")
@click.argument("name")
@ROLE
@MODEL
@EXPIRES_IN
@json_option
def create(name: str, role: str, model: str | None, expires_in: int | None) -> None:
    """Create user NAME with one role, and print its first token (shown only once).

    Roles: viewer (read), contributor (create models, push, free aliases, archive),
    approver (approve promotions), releaser (promote, rollback), admin (everything).
    """
    user, issued = state().client.create_user(
        name, role=role, model=model, expires_in=_days(expires_in)
    )

    def human() -> None:
        console.print(f"created user {user.name}: {_roles_text(user)}")
        _print_secret(issued)

    emit(
        {
            "user": user.to_dict(),
            "token": issued.secret,
            "token_id": issued.info.id,
            "expires_at": issued.info.to_dict()["expires_at"],
        },
        human,
    )


@users.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include deleted users.")
@json_option
def list_users(show_all: bool) -> None:
    """List every user with its roles and number of active tokens (deleted ones with --all)."""
    found = state().client.list_users(include_deleted=show_all)

    def human() -> None:
        columns = ["name", "roles", "tokens", "created (UTC)", "by", "disabled"]
        table = Table(*columns, *(["deleted"] if show_all else []), box=None)
        for u in found:
            table.add_row(
                u.name,
                _roles_text(u),
                str(u.active_tokens),
                _time(u.created_at),
                u.created_by,
                _time(u.disabled_at, ""),
                *([_time(u.deleted_at, "")] if show_all else []),
            )
        console.print(
            table
            if found
            else "no users yet: create one with 'modelkeep users create NAME --role ROLE'"
        )

    emit([u.to_dict() for u in found], human)


@users.command("grant")
@click.argument("name")
@ROLE
@MODEL
@EXPERIMENT
@DATASET
@json_option
def grant(
    name: str, role: str, model: str | None, experiment: str | None, dataset: str | None
) -> None:
    """Give user NAME a role: on one model, experiment or dataset, or on everything."""
    client = state().client
    user = client.grant(name, role=role, model=model, experiment=experiment, dataset=dataset)
    emit(user.to_dict(), lambda: console.print(f"{user.name}: {_roles_text(user)}"))


@users.command("revoke")
@click.argument("name")
@ROLE
@MODEL
@EXPERIMENT
@DATASET
@json_option
def revoke(
    name: str, role: str, model: str | None, experiment: str | None, dataset: str | None
) -> None:
    """Take a role away from user NAME (the global one, or the one on the scope named)."""
    client = state().client
    scope = {"model": model, "experiment": experiment, "dataset": dataset}
    user = client.revoke_grant(name, role=role, **scope)
    emit(user.to_dict(), lambda: console.print(f"{user.name}: {_roles_text(user)}"))


@users.command("disable")
@click.argument("name")
@json_option
def disable(name: str) -> None:
    """Disable user NAME: its tokens stop working at once, its approvals stop counting.

    'users enable' undoes it. Refused for yourself and for the last active global admin.
    """
    user = state().client.disable_user(name)
    emit(user.to_dict(), lambda: console.print(f"disabled user {user.name}"))


@users.command("enable")
@click.argument("name")
@json_option
def enable(name: str) -> None:
    """Enable user NAME again."""
    user = state().client.enable_user(name)
    emit(user.to_dict(), lambda: console.print(f"enabled user {user.name}"))


@users.command("delete")
@click.argument("name")
@json_option
def delete(name: str) -> None:
    """Delete user NAME: its tokens are revoked, its grants and approvals stop counting.

    The user stays in 'users list --all' and in the audit log; its name is never given to
    another user. It cannot be undone. Refused for yourself and for the last active
    global admin.
    """
    user = state().client.delete_user(name)
    emit(user.to_dict(), lambda: console.print(f"deleted user {user.name}"))


@click.group()
def tokens() -> None:
    """Create, list and revoke the API tokens of users (an operator, on the store)."""


@tokens.command("create")
@click.argument("name")
@EXPIRES_IN
@click.option("--label", metavar="TEXT", help="What the token is for, e.g. 'ci'.")
@json_option
def create_token(name: str, expires_in: int | None, label: str | None) -> None:
    """Create another token for user NAME and print it (shown only once)."""
    issued = state().client.create_token(name, expires_in=_days(expires_in), label=label)
    emit(issued.to_dict(), lambda: _print_secret(issued))


@tokens.command("list")
@click.argument("name", required=False)
@json_option
def list_tokens(name: str | None) -> None:
    """List the tokens of every user, or of user NAME (never their secrets)."""
    found = state().client.list_tokens(name)
    now = datetime.now(UTC)

    def human() -> None:
        table = Table("id", "user", "label", "created (UTC)", "expires (UTC)", "state", box=None)
        for t in found:
            table.add_row(
                str(t.id),
                t.user,
                t.label or "",
                _time(t.created_at),
                _time(t.expires_at, "never"),
                t.state(now),
            )
        console.print(table if found else "no tokens")

    emit([_token_document(t, now) for t in found], human)


@tokens.command("revoke")
@click.argument("token", metavar="TOKEN_ID")
@json_option
def revoke_token(token: str) -> None:
    """Revoke a token, named by the id 'tokens list' shows (or by the token itself)."""
    revoked = state().client.revoke_token(token)
    emit(
        _token_document(revoked, datetime.now(UTC)),
        lambda: console.print(f"revoked token {revoked.id} of {revoked.user}"),
    )
