"""Schemathesis against /openapi.json: every operation, valid and invalid inputs generated
from the schema, as an admin. No input may cause a server error (500); answers carry the
content type the schema documents.

The app is built at import (schemathesis reads its schema then) on a store opened by a
module fixture; an admin whose token a generated request revoked, or who lost its role
or was disabled, is replaced before the next case.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance

from modelkeep.bootstrap import ServerRuntime, open_server
from modelkeep.config import Settings
from modelkeep.domain.access import ADMIN, Grant
from modelkeep.entrypoints.api.app import create_app
from modelkeep.errors import Unauthenticated
from modelkeep.services import admin, aliases, models, versions
from modelkeep.services.context import ServiceContext

MAX_EXAMPLES = 15


class Store:
    """The store the app serves, opened by the fixture below (the app exists before it)."""

    state: ServerRuntime | None = None

    def authenticate(self, token: str | None) -> ServiceContext:
        assert self.state is not None, "the store fixture opens the store"
        return self.state.authenticate(token)

    def ready(self) -> None:
        assert self.state is not None, "the store fixture opens the store"
        self.state.ready()


STORE = Store()
APP = create_app(  # closing is the fixture's: it closes the runtime it opens
    ServerRuntime(STORE.authenticate, STORE.ready, gc_grace_seconds=3600, close=lambda: None)
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


class Admin:
    """A global admin's token, replaced when a generated request took it away."""

    def __init__(self, operator: ServiceContext) -> None:
        self.operator = operator
        self.count = 0
        self.secret = ""

    def token(self) -> str:
        try:
            actor = admin.authenticate(self.operator, self.secret)
        except Unauthenticated:
            actor = None
        if actor is None or Grant(ADMIN) not in actor.grants:
            self.count += 1
            name = f"fuzz-admin-{self.count}"
            self.secret = admin.create_user(self.operator, name, ADMIN)[1].secret
        return self.secret


@pytest.fixture(scope="module")
def fuzz_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    """A store in a temporary directory (SQLite) with a model and two versions in it."""
    from modelkeep.bootstrap import open_context

    root: Path = tmp_path_factory.mktemp("fuzz") / "store"
    store_settings = Settings(uri=str(root))
    operator = open_context(store_settings)
    state = open_server(store_settings)
    STORE.state = state
    seed(operator)
    yield Admin(operator)
    STORE.state = None
    state.close()
    operator.close()


def seed(operator: ServiceContext) -> None:
    import io

    from modelkeep.domain.manifest import FileEntry
    from modelkeep.domain.versions import PushRequest

    models.create_model(operator, "m", "a model to find")
    for n in range(2):
        info = versions.put_blob(operator, io.BytesIO(f"weights {n}".encode()))
        versions.register_version(
            operator, "m", [FileEntry("w.bin", info.size, info.digest)], PushRequest()
        )
    aliases.set_alias(operator, "m@1", "champion")
    admin.create_user(operator, "alice", "viewer", "m", timedelta(days=1))


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_no_input_makes_the_server_fail(case: schemathesis.Case[Any], fuzz_admin: Admin) -> None:
    headers = {"authorization": f"Bearer {fuzz_admin.token()}"}
    case.call_and_validate(headers=headers, checks=[not_a_server_error, content_type_conformance])
