"""Small generated datasets (half CSV, half Parquet) and real models trained on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

ROWS = 300
FEATURES = ["x1", "x2", "x3"]


@dataclass(frozen=True)
class Case:
    """A dataset directory, the same rows as a DataFrame, and a model directory."""

    data_dir: Path
    frame: pd.DataFrame
    model_dir: Path
    model: Any


def write_dataset(frame: pd.DataFrame, directory: Path) -> Path:
    """The first half of the rows as CSV, the rest as Parquet (checks read both)."""
    directory.mkdir(parents=True, exist_ok=True)
    half = len(frame) // 2
    pacsv.write_csv(
        pa.Table.from_pandas(frame.iloc[:half], preserve_index=False), directory / "a.csv"
    )
    pq.write_table(
        pa.Table.from_pandas(frame.iloc[half:], preserve_index=False), directory / "b.parquet"
    )
    return directory


def save_skops(model: Any, directory: Path, name: str = "model.skops") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    sio.dump(model, directory / name)
    return directory


def make_frame(seed: int, biased: bool = False) -> pd.DataFrame:
    """Three numeric features, a group column and a binary target with some noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, 3))
    gender = rng.choice(["f", "m"], size=ROWS)
    signal = x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.7, size=ROWS)
    if biased:
        x[:, 2] = (gender == "m").astype(float)  # a proxy of the group the model will use
        signal = signal + 3.0 * x[:, 2] - 1.5
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["gender"] = gender
    frame["y"] = (signal > 0).astype(np.int64)
    return frame


@pytest.fixture(scope="session")
def classifier_case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """LogisticRegression fitted on a DataFrame (so it has feature_names_in_)."""
    root = tmp_path_factory.mktemp("classifier")
    frame = make_frame(1)
    model = LogisticRegression().fit(frame[FEATURES], frame["y"])
    return Case(
        write_dataset(frame, root / "data"), frame, save_skops(model, root / "model"), model
    )


@pytest.fixture(scope="session")
def biased_case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    root = tmp_path_factory.mktemp("biased")
    frame = make_frame(2, biased=True)
    model = LogisticRegression().fit(frame[FEATURES], frame["y"])
    return Case(
        write_dataset(frame, root / "data"), frame, save_skops(model, root / "model"), model
    )


@pytest.fixture(scope="session")
def regressor_case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """LinearRegression fitted on a plain array (no feature names): every other column."""
    root = tmp_path_factory.mktemp("regressor")
    frame = make_frame(3)[["x1", "x2"]].copy()
    noise = np.random.default_rng(4).normal(scale=0.5, size=ROWS)
    frame["price"] = 3.0 * frame["x1"] - 2.0 * frame["x2"] + noise
    model = LinearRegression().fit(frame[["x1", "x2"]].to_numpy(), frame["price"])
    return Case(
        write_dataset(frame, root / "data"), frame, save_skops(model, root / "model"), model
    )


@pytest.fixture(scope="session")
def hist_case(tmp_path_factory: pytest.TempPathFactory, classifier_case: Case) -> Case:
    """A classifier that handles missing values itself."""
    root = tmp_path_factory.mktemp("hist")
    frame = classifier_case.frame
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    model.fit(frame[FEATURES], frame["y"])
    return Case(classifier_case.data_dir, frame, save_skops(model, root / "model"), model)
