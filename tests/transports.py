"""Which transports the ``mk`` fixture (tests/conftest.py) runs a test over.

In process and over HTTP served in process, always. A live uvicorn server costs a thread, a
port and real sockets, so only tests marked ``transport`` (where those matter: streaming,
large or odd bodies, URL decoding, concurrent connections) run against one too. A plugin
of its own (``pytest_plugins`` in conftest) so that its hook stands beside any other."""

from __future__ import annotations

import pytest


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mk" in metafunc.fixturenames:
        live = metafunc.definition.get_closest_marker("transport") is not None
        metafunc.parametrize(
            "mk", ["local", "http", "live"] if live else ["local", "http"], indirect=True
        )
