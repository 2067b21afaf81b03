from __future__ import annotations

from tests.conftest import CliRunnerInProcess, FileMaker


def test_push_then_show_round_trips(cli: CliRunnerInProcess, files: FileMaker) -> None:
    assert cli("models", "create", "fraud").code == 0
    pushed = cli("push", "fraud", str(files.make()), "--json")
    assert pushed.code == 0, pushed
    shown = cli("show", "fraud@1", "--json")
    assert shown.json() == pushed.json()
