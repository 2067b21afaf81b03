"""Shared fixtures. Storage tests run on SQLite and on the real PostgreSQL server
(``MODELKEEP_TEST_PG_URL``, default postgres@127.0.0.1:5432): each test session makes a
throwaway database, each test a fresh schema in it."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import modelkeep
from modelkeep.config import Settings
from modelkeep.services.registry import Registry

PG_ADMIN_URL = os.environ.get(
    "MODELKEEP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's MODELKEEP_* variables must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("MODELKEEP_") and name != "MODELKEEP_TEST_PG_URL":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session (dropped at the end)."""
    name = f"modelkeep_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - environment problem, say so plainly
        pytest.fail(
            f"PostgreSQL at {PG_ADMIN_URL} is not usable ({exc}); start it with "
            "'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'"
        )
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_pg_schema_url(pg_database: str) -> tuple[str, str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(pg_database).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_pg_schema(pg_database: str, schema: str) -> None:
    engine = create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty metadata database: SQLite file or PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
        return
    pg_database = request.getfixturevalue("pg_database")
    url, schema = make_pg_schema_url(pg_database)
    yield url
    drop_pg_schema(pg_database, schema)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def settings(store_dir: Path, database_url: str) -> Settings:
    return Settings(uri=str(store_dir), database_url=database_url)


@pytest.fixture(params=["local", "http"])
def mk(request: pytest.FixtureRequest, settings: Settings) -> Iterator[modelkeep.Client]:
    """An SDK client on a fresh store (local blobs + SQLite or PostgreSQL), in process or
    through the HTTP API (the app served in process)."""
    if request.param == "local":
        with modelkeep.connect(settings=settings) as client:
            yield client
        return
    with served_client(settings) as client:
        yield client


@contextlib.contextmanager
def served_client(settings: Settings) -> Iterator[modelkeep.Client]:
    """The SDK over HTTP, against the API app running in this process."""
    from starlette.testclient import TestClient

    from modelkeep.bootstrap import open_registry
    from modelkeep.client.client import Client
    from modelkeep.client.http import HttpBackend
    from modelkeep.entrypoints.api.app import ServerState, create_app

    server_side = open_registry(settings)
    state = ServerState(
        authenticate=lambda _token: server_side,
        ready=lambda: None,
        gc_grace_seconds=settings.gc_grace_seconds,
    )
    with TestClient(create_app(state), base_url="http://testserver") as http:
        client = Client(HttpBackend("http://testserver", "test-token", http=http), settings)
        yield client
    server_side.close()


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    """The services on the test store, for reaching inside it (blobs, transactions)."""
    from modelkeep.bootstrap import open_registry

    opened = open_registry(settings)
    yield opened
    opened.close()


@pytest.fixture
def files(tmp_path: Path) -> FileMaker:
    return FileMaker(tmp_path / "files")


class FileMaker:
    """Makes small files with given or unique content for pushing."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def make(self, name: str = "model.bin", content: bytes | None = None) -> Path:
        self.count += 1
        path = self.root / f"f{self.count}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if content is not None else f"weights {self.count}".encode())
        return path


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> object:
        import json

        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> CliRunnerInProcess:
    """Runs ``modelkeep`` in this process (fast) against the test store."""
    monkeypatch.setenv("MODELKEEP_URI", settings.uri)
    monkeypatch.setenv("MODELKEEP_DATABASE_URL", settings.database_url)
    return CliRunnerInProcess(capsys)


class CliRunnerInProcess:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> CliResult:
        from modelkeep.entrypoints.cli import main

        self.capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = self.capsys.readouterr()
        return CliResult(code, captured.out, captured.err)
