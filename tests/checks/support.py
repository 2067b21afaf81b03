"""Helpers the check tests share."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from modelkeep.checks import CheckInput, CheckOutcome, Suite, parse_suite, run_checks


def read_back(data_dir: Path) -> pd.DataFrame:
    """The dataset as the checks see it, read independently (pandas, not pyarrow)."""
    return pd.concat(
        [pd.read_csv(data_dir / "a.csv"), pd.read_parquet(data_dir / "b.parquet")],
        ignore_index=True,
    )


def run_one(
    model_dir: Path,
    data_dir: Path,
    suite: str | Suite,
    target: str = "y",
    sensitive: str | None = None,
) -> CheckOutcome:
    """The only outcome of a one-check suite; its report must be strict JSON."""
    parsed = parse_suite(suite) if isinstance(suite, str) else suite
    outcomes = run_checks(CheckInput(model_dir, data_dir, target, sensitive), parsed)
    assert len(outcomes) == 1
    json.dumps(outcomes[0].report, allow_nan=False)
    return outcomes[0]
