"""Command checks: metrics from the last line, failures quoted, timeouts stop everything."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from modelkeep.checks import CheckInput, CheckOutcome, parse_suite, run_checks
from modelkeep.errors import CheckFailed, CheckTimeout, InvalidPolicy

REPORTER = """
import json, os
print("warming up")
print(json.dumps({
    "latency_ms": 12.5,
    "dirs_exist": float(os.path.isdir(os.environ["MODELKEEP_MODEL_DIR"])
                        and os.path.isdir(os.environ["MODELKEEP_DATASET_DIR"])),
    "target_is_y": float(os.environ["MODELKEEP_TARGET"] == "y"),
    "sensitive_is_gender": float(os.environ.get("MODELKEEP_SENSITIVE") == "gender"),
    "cwd_is_suite_dir": float(os.path.exists("suite.yaml")),
    "nan.metric": None,
}))
print("   ")
"""


def run_command_suite(tmp_path: Path, suite: str, sensitive: str | None = None) -> CheckOutcome:
    """A command suite run from ``tmp_path`` (the suite file's directory)."""
    (tmp_path / "suite.yaml").write_text(suite)
    for name in ("model", "data"):
        (tmp_path / name).mkdir(exist_ok=True)
    inp = CheckInput(tmp_path / "model", tmp_path / "data", "y", sensitive, workdir=tmp_path)
    outcomes = run_checks(inp, parse_suite(suite))
    json.dumps(outcomes[0].report, allow_nan=False)
    return outcomes[0]


def python_suite(script: str, extra: str = "") -> str:
    return (
        "checks:\n"
        "  - kind: command\n"
        "    name: latency\n"
        f"    run: [{json.dumps(sys.executable)}, {json.dumps(script)}]\n" + extra
    )


def test_metrics_from_the_last_line(tmp_path: Path) -> None:
    (tmp_path / "report.py").write_text(REPORTER)
    extra = "    assert: ['latency_ms <= 10', 'dirs_exist == 1']\n"
    result = run_command_suite(tmp_path, python_suite("report.py", extra), sensitive="gender")
    assert result.kind == "command"
    assert result.suite == "latency"
    assert result.metrics == {
        "latency_ms": 12.5,
        "dirs_exist": 1.0,
        "target_is_y": 1.0,
        "sensitive_is_gender": 1.0,
        "cwd_is_suite_dir": 1.0,
        "nan.metric": None,
    }
    assert result.failures == ["latency_ms <= 10: 12.5"]
    assert not result.passed
    assert result.report["exit_code"] == 0
    assert "warming up" in result.report["stdout_tail"]


def test_command_check_needs_no_model(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pkl").write_bytes(b"not loaded")
    suite = "checks:\n  - kind: command\n    name: ok\n    run: [echo, '{\"score\": 1}']\n"
    assert run_command_suite(tmp_path, suite).metrics == {"score": 1.0}


@pytest.mark.parametrize(
    ("printed", "quoted"),
    [
        ("print('accuracy is 0.9')", "accuracy is 0.9"),
        ("print('[1, 2]')", "[1, 2]"),
        ("print('{\"Bad Name\": 1}')", "Bad Name"),
        ('print(\'{"score": "high"}\')', "high"),
        ("pass", "printed nothing"),
    ],
)
def test_bad_output_is_quoted(tmp_path: Path, printed: str, quoted: str) -> None:
    (tmp_path / "bad.py").write_text(printed)
    with pytest.raises(CheckFailed, match="command check 'latency'") as caught:
        run_command_suite(tmp_path, python_suite("bad.py"))
    assert quoted in caught.value.message


def test_non_zero_exit_gives_code_and_stderr(tmp_path: Path) -> None:
    script = "import sys\nprint('{\"x\": 1}')\nsys.stderr.write('model exploded\\n')\nsys.exit(3)"
    (tmp_path / "fail.py").write_text(script)
    with pytest.raises(CheckFailed, match=r"exited with code 3: model exploded"):
        run_command_suite(tmp_path, python_suite("fail.py"))


def test_command_that_does_not_exist(tmp_path: Path) -> None:
    suite = "checks:\n  - kind: command\n    name: gone\n    run: [no-such-program-here]\n"
    with pytest.raises(CheckFailed, match="cannot start 'no-such-program-here'"):
        run_command_suite(tmp_path, suite)


def is_running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie waiting for its reaper is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_timeout_stops_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    suite = (
        "checks:\n  - kind: command\n    name: slow\n    timeout: 1\n"
        f"    run: ['sh', '-c', 'sleep 30 & echo $! > {pid_file}; sleep 30']\n"
    )
    started = time.monotonic()
    with pytest.raises(CheckTimeout, match="'slow' ran longer than 1 s and was stopped"):
        run_command_suite(tmp_path, suite)
    assert time.monotonic() - started < 5
    sleeper = int(pid_file.read_text())
    deadline = time.monotonic() + 3
    while is_running(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_running(sleeper)


def test_plain_sleep_times_out(tmp_path: Path) -> None:
    suite = "checks:\n  - kind: command\n    name: nap\n    timeout: 1\n    run: sleep 30\n"
    started = time.monotonic()
    with pytest.raises(CheckTimeout):
        run_command_suite(tmp_path, suite)
    assert time.monotonic() - started < 5


def test_run_string_is_never_given_to_a_shell(tmp_path: Path) -> None:
    run = """echo '{"a": 1}' ; touch pwned"""
    suite = f"checks:\n  - kind: command\n    name: echo\n    run: {json.dumps(run)}\n"
    with pytest.raises(CheckFailed, match="touch pwned"):  # echo prints the ';' and the rest
        run_command_suite(tmp_path, suite)
    assert not (tmp_path / "pwned").exists()


def test_command_needs_a_name() -> None:
    with pytest.raises(InvalidPolicy, match="line 2: a command check needs a 'name:'"):
        parse_suite("checks:\n  - kind: command\n    run: [true]\n")
