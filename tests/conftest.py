"""Shared fixtures. Storage tests run on SQLite and on the real PostgreSQL server
(``MODELKEEP_TEST_PG_URL``, default postgres@127.0.0.1:5432). Each test session (each
xdist worker) migrates once per kind and each test gets a database with the content of a
freshly migrated one (``tests/databases.py``); tests marked ``empty_database`` get an empty
one (a new SQLite file; a new schema in the session's PostgreSQL database)."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import modelkeep
from modelkeep.config import Settings
from modelkeep.services.context import ServiceContext
from modelkeep.storage.blobs.s3 import make_client
from tests.clock import FakeClock
from tests.databases import PgDatabases, SqliteTemplate

pytest_plugins = ["tests.transports"]  # which transports ``mk`` runs a test over

PG_ADMIN_URL = os.environ.get(
    "MODELKEEP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's MODELKEEP_* variables must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("MODELKEEP_") and name != "MODELKEEP_TEST_PG_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODELKEEP_CACHE_DIR", "off")  # tests that want it turn it on


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    """This session's PostgreSQL databases (all dropped at the end)."""
    try:
        databases = PgDatabases(PG_ADMIN_URL, f"modelkeep_test_{uuid.uuid4().hex[:12]}")
    except Exception as exc:  # pragma: no cover - environment problem, say so plainly
        pytest.fail(
            f"PostgreSQL at {PG_ADMIN_URL} is not usable ({exc}); start it with "
            "'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'"
        )
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def pg_database(pg_databases: PgDatabases) -> str:
    """The session's first PostgreSQL database, where tests make empty schemas."""
    return pg_databases.url(pg_databases.name)


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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("template") / "meta.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh metadata database at the newest revision, SQLite or PostgreSQL (the store
    opens it without migrating); an empty one for tests marked ``empty_database``."""
    empty = request.node.get_closest_marker("empty_database") is not None
    if request.param == "memory":  # only for tests marked backends(..., "memory")
        yield from memory_database_url()
        return
    if request.param == "sqlite":
        path = tmp_path / "meta.db"
        if empty:
            yield f"sqlite:///{path}"
        else:
            yield request.getfixturevalue("sqlite_template").copy_to(path)
        return
    if empty:
        pg_database = request.getfixturevalue("pg_database")
        url, schema = make_pg_schema_url(pg_database)
        yield url
        drop_pg_schema(pg_database, schema)
        return
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    url = databases.acquire()
    yield url
    databases.release(url)


# The in-memory metadata store as a third backend ---------------------------------------
# ``database_url`` runs a test on SQLite and PostgreSQL; ``@pytest.mark.backends(...)`` (or
# a module's ``pytestmark``; the closest mark wins) names the backends instead, and
# "memory" there adds the in-memory store (storage/memory): for tests that reach the store
# only through services, the SDK or the API in this process, never through SQL.


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*names): the metadata stores database_url runs the test on "
        '(of "sqlite", "postgresql", "memory"; unmarked: sqlite and postgresql)',
    )


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A ``backends`` mark becomes a parametrize mark: pytest then parametrizes the fixture
    with these values instead of its own ``params`` (first, so test ids keep their order)."""
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is not None and "database_url" in metafunc.fixturenames:
        chosen = pytest.mark.parametrize("database_url", marker.args, indirect=True)
        metafunc.definition.add_marker(chosen, append=False)


def memory_database_url() -> Iterator[str]:
    """``memory://NAME``: a store of its own in this process, forgotten afterwards."""
    from modelkeep.storage.memory import drop_memory_store

    name = f"test-{uuid.uuid4().hex[:12]}"
    yield f"memory://{name}"
    drop_memory_store(name)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def settings(store_dir: Path, database_url: str) -> Settings:
    # token_cache_seconds=0: a revoked token fails on the very next request in tests
    return Settings(
        uri=str(store_dir), database_url=database_url, token_cache_seconds=0, cache_dir="off"
    )


@pytest.fixture
def mk(request: pytest.FixtureRequest, settings: Settings) -> Iterator[modelkeep.Client]:
    """An SDK client on a fresh store (local blobs + SQLite or PostgreSQL): in process,
    through the HTTP API served in process, or through a live uvicorn server on loopback."""
    if request.param == "local":
        with modelkeep.connect(settings=settings) as client:
            yield client
        return
    if request.param == "http":
        with served_client(settings) as client:
            yield client
        return
    with live_server(settings) as (url, token), modelkeep.connect(url, token=token) as client:
        yield client


@contextlib.contextmanager
def live_server(settings: Settings, role: str = "admin") -> Iterator[tuple[str, str]]:
    """A real uvicorn server on 127.0.0.1 (a free port) in a thread, and a token of role."""
    import threading

    import uvicorn

    app, token, close = _app_and_token(settings, f"live-{role}", role)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the live server did not start")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        close()


@contextlib.contextmanager
def served_client(settings: Settings) -> Iterator[modelkeep.Client]:
    """The SDK over HTTP, as an admin, against the API app running in this process."""
    from modelkeep.client.client import Client
    from modelkeep.client.http import HttpBackend

    with served_app(settings) as (http, token):
        client = Client(HttpBackend("http://testserver", token, http=http), settings)
        yield client


@contextlib.contextmanager
def served_app(settings: Settings, role: str = "admin") -> Iterator[tuple[Any, str]]:
    """The API app served in process (starlette's TestClient) and a token of ``role``."""
    from starlette.testclient import TestClient

    app, token, close = _app_and_token(settings, f"test-{role}", role)
    with TestClient(app, base_url="http://testserver") as http:
        yield http, token
    close()


def _app_and_token(settings: Settings, user: str, role: str) -> tuple[Any, str, Any]:
    """The API app on the test store, a new user's token, and how to close the app."""
    from modelkeep.bootstrap import open_context, open_server
    from modelkeep.entrypoints.api.app import create_app
    from modelkeep.services import admin

    operator = open_context(settings)
    _, issued = admin.create_user(operator, user, role)
    operator.close()
    state = open_server(settings)
    return create_app(state), issued.secret, state.close


@pytest.fixture
def registry(settings: Settings) -> Iterator[ServiceContext]:
    """The services on the test store, for reaching inside it (blobs, transactions)."""
    from modelkeep.bootstrap import open_context

    opened = open_context(settings)
    yield opened
    opened.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The clock of every store opened from now on in this test (the SDK's, the API's, the
    CLI's): request it before ``mk`` or ``registry``, which open theirs when they are made."""
    from modelkeep import bootstrap

    fake = FakeClock()
    monkeypatch.setattr(bootstrap, "ServiceContext", functools.partial(ServiceContext, clock=fake))
    return fake


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


# S3: moto's standalone server -----------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server, a separate process on 127.0.0.1 for the session: its URL."""
    log = tmp_path_factory.mktemp("moto") / "server.log"
    for _ in range(3):  # the free port may be taken before moto binds it
        port = _free_port()
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        if _wait_until_answering(url, process):
            break
        process.kill()
        process.wait()
    else:  # pragma: no cover - environment problem, say so plainly
        pytest.fail(f"moto's S3 server did not start:\n{log.read_text()}")
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        process.kill()
        process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_answering(url: str, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    return False


@pytest.fixture
def aws_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials for boto3, and nothing of the machine's AWS configuration."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@dataclass(frozen=True)
class S3Bucket:
    """A fresh, empty bucket on the moto server, and a boto3 client to reach inside it."""

    endpoint_url: str
    name: str
    client: Any

    def url(self, prefix: str = "store") -> str:
        return f"s3://{self.name}/{prefix}"


@pytest.fixture
def s3_bucket(moto_server: str, aws_environ: None) -> Iterator[S3Bucket]:
    client = make_client(moto_server)
    name = f"modelkeep-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield S3Bucket(moto_server, name, client)
    for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)
