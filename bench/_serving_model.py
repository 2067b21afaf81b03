"""The benchmark's model, fitted the same way in modelkeep's venv and in MLflow's.

    python bench/_serving_model.py --format skops|mlflow --c 1.0 --out DIR

A LogisticRegression on two named columns (``amount``, ``hour``) of 200 deterministic rows:
with the same scikit-learn solver the coefficients come out the same in either venv. skops
writes DIR/model.skops (pushed to modelkeep); mlflow writes an MLflow model directory with
``mlflow.sklearn.save_model`` (served by ``mlflow models serve``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

COLUMNS = ["amount", "hour"]


def rows() -> tuple[list[list[float]], list[int]]:
    features, labels = [], []
    for i in range(200):
        amount = float((i * 37) % 1500)
        hour = float((i * 7) % 24)
        features.append([amount, hour])
        labels.append(1 if amount > 700 and (hour < 6 or hour > 21) else i % 11 == 0)
    return features, [int(label) for label in labels]


def fit(c: float) -> Any:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    features, labels = rows()
    frame = pd.DataFrame(features, columns=COLUMNS)
    return LogisticRegression(C=c, max_iter=1000).fit(frame, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=["skops", "mlflow"], required=True)
    parser.add_argument("--c", type=float, default=1.0)
    parser.add_argument("--out", type=Path, required=True)
    ns = parser.parse_args()
    model = fit(ns.c)
    if ns.format == "skops":
        import skops.io as sio

        ns.out.mkdir(parents=True)
        sio.dump(model, ns.out / "model.skops")
    else:
        import mlflow.sklearn

        mlflow.sklearn.save_model(model, str(ns.out))


if __name__ == "__main__":
    main()
