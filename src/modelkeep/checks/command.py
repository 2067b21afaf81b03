"""Command checks: any program the team writes (latency, a custom metric, a model format the
built-in checks cannot load) run on the version and the dataset.

The command runs without a shell, in a session (process group) of its own, so that a timeout
stops it and everything it started. It learns where the files are from ``MODELKEEP_*``
variables added to the environment, and reports by printing, as its last non-empty line of
standard output, one JSON object of metric name -> number (or null).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from modelkeep.checks.metrics import COMMAND_METRIC_NAME, Measured, Metrics, finite_or_none
from modelkeep.checks.suite import CheckSpec
from modelkeep.errors import CheckFailed, CheckTimeout

TAIL_LINES = 20
TAIL_CHARS = 2000
QUOTE_CHARS = 200
REAP_SECONDS = 5.0
OUTPUT_HINT = (
    'make the command print one JSON object of metrics as its last line, e.g. {"latency_ms": 12}'
)


def run_command(check: CheckSpec, variables: dict[str, str], cwd: Path | None) -> Measured:
    """Run the check's command and read its metrics; CheckFailed or CheckTimeout if it fails."""
    started = time.monotonic()
    process = start(check, variables, cwd)
    try:
        stdout, stderr = process.communicate(timeout=check.timeout)
    except subprocess.TimeoutExpired:
        stop(process)
        raise CheckTimeout(
            f"command check '{check.name}' ran longer than {check.timeout:g} s and was stopped"
        ) from None
    except BaseException:
        stop(process)
        raise
    kill_group(process)  # whatever it left running in its session
    out, err = decoded(stdout), decoded(stderr)
    report: dict[str, Any] = {
        "command": list(check.run),
        "exit_code": process.returncode,
        "seconds": round(time.monotonic() - started, 3),
        "stdout_tail": tail(out),
        "stderr_tail": tail(err),
    }
    if process.returncode != 0:
        raise CheckFailed(
            f"command check '{check.name}' {exit_text(process.returncode)}: {tail(err)}"
        )
    return Measured(parse_metrics(check.name, out), report)


def start(check: CheckSpec, variables: dict[str, str], cwd: Path | None) -> subprocess.Popen[bytes]:
    if not check.run:
        raise CheckFailed(f"command check '{check.name}' has no command", "give it 'run:'")
    try:
        return subprocess.Popen(
            list(check.run),
            cwd=cwd,
            env={**os.environ, **variables},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise CheckFailed(
            f"command check '{check.name}' cannot start {check.run[0]!r}: {exc.strerror or exc}",
            "check the command's 'run:' and the directory it runs in (the suite file's)",
        ) from None


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill every process left in the command's session (its group has the command's id)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(process.pid, signal.SIGKILL)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill the command's whole process group, then reap the command."""
    kill_group(process)
    try:
        process.communicate(timeout=REAP_SECONDS)
    except subprocess.TimeoutExpired:  # a descendant left the group and holds the pipes
        process.kill()
        process.wait()


def exit_text(code: int) -> str:
    if code < 0:
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def decoded(output: bytes | None) -> str:
    return (output or b"").decode("utf-8", errors="replace")


def tail(text: str) -> str:
    """The last lines of an output, short enough to store and show."""
    lines = text.rstrip().splitlines()[-TAIL_LINES:]
    joined = "\n".join(lines)
    return joined if len(joined) <= TAIL_CHARS else "…" + joined[-TAIL_CHARS:]


def quoted(text: str) -> str:
    short = text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"
    return json.dumps(short, ensure_ascii=False)


def parse_metrics(name: str, stdout: str) -> Metrics:
    """The JSON object on the last non-empty line of ``stdout``, checked."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise CheckFailed(f"command check '{name}' printed nothing", OUTPUT_HINT)
    try:
        printed = json.loads(lines[-1])
    except ValueError:
        printed = None
    if not isinstance(printed, dict):
        raise CheckFailed(
            f"command check '{name}' did not end with a JSON object of metrics; "
            f"its last line was {quoted(lines[-1])}",
            OUTPUT_HINT,
        )
    return {key: metric_value(name, key, value) for key, value in printed.items()}


def metric_value(name: str, key: str, value: Any) -> float | None:
    if not COMMAND_METRIC_NAME.fullmatch(key):
        raise CheckFailed(
            f"command check '{name}' printed the metric name {quoted(key)}, "
            "which is not [a-z][a-z0-9_.-]{0,99}",
            OUTPUT_HINT,
        )
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise CheckFailed(
            f"command check '{name}' printed {quoted(str(value))} for '{key}', not a number",
            OUTPUT_HINT,
        )
    return finite_or_none(value)
