"""Models: create one, list those the actor may read, read one."""

from __future__ import annotations

from collections.abc import Iterable

from modelkeep.domain import access
from modelkeep.domain.events import EventKind
from modelkeep.domain.names import check_model_name
from modelkeep.domain.versions import Model, check_description, check_required_fields
from modelkeep.services import lookup
from modelkeep.services.context import ServiceContext


def create_model(
    ctx: ServiceContext, name: str, description: str = "", require: Iterable[str] = ()
) -> Model:
    check_model_name(name)
    ctx.authorize(access.CREATE_MODEL, name)
    required = check_required_fields(require)
    check_description(description)
    with ctx.store.transaction(write=True) as tx:
        at = ctx.clock()
        model = tx.models.add(name, description, required, ctx.actor, at)
        details = {"description": description, "required": list(required)}
        ctx.record_event(tx, EventKind.MODEL_CREATE, name, details, at)
        tx.commit()
    return model


def list_models(ctx: ServiceContext) -> list[Model]:
    """The models the actor may read."""
    ctx.authorize(access.READ, access.ANY_MODEL)
    with ctx.store.transaction() as tx:
        found = tx.models.all()
    if ctx.can(access.READ, None):
        return found
    return [m for m in found if ctx.can(access.READ, m.name)]


def get_model(ctx: ServiceContext, name: str) -> Model:
    check_model_name(name)
    ctx.authorize(access.READ, name)
    with ctx.store.transaction() as tx:
        return lookup.model(tx, name)
