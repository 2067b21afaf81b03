from __future__ import annotations

from pathlib import Path

import pytest

from modelkeep.config import Settings
from tests.conftest import CliRunnerInProcess, FileMaker
from tests.e2e.support import ok, ok_json


@pytest.fixture
def store(settings: Settings) -> Path:
    """The store directory (blobs, tmp/, format file)."""
    return Path(settings.uri)


@pytest.fixture
def model(cli: CliRunnerInProcess) -> str:
    """An empty model ``m``."""
    ok(cli("models", "create", "m"))
    return "m"


class Pusher:
    """Pushes files with given content to a model through the CLI; returns the version."""

    def __init__(self, cli: CliRunnerInProcess, files: FileMaker) -> None:
        self.cli = cli
        self.files = files

    def __call__(
        self, model: str, content: bytes, *options: str, name: str = "model.bin"
    ) -> dict[str, object]:
        path = self.files.make(name, content)
        document = ok_json(self.cli, "push", model, str(path), *options)
        assert isinstance(document, dict)
        return document


@pytest.fixture
def push(cli: CliRunnerInProcess, files: FileMaker) -> Pusher:
    return Pusher(cli, files)
