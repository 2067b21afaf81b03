"""Train a small fraud classifier for the CI example (docs/ci.md).

Writes OUT/data.csv (the evaluation data, with a `group` column to measure fairness on)
and OUT/model.skops (scikit-learn, saved with skops: loadable without unpickling).
Deterministic: the same seed gives the same bytes of data.

    python examples/ci/train.py --out build [--seed 7] [--rows 600]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.linear_model import LogisticRegression

FEATURES = ["amount", "hour", "merchant_risk"]


def make_data(seed: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(3.0, 1.0, rows),
            "hour": rng.integers(0, 24, rows).astype(float),
            "merchant_risk": rng.normal(0.0, 1.0, rows),
            "group": rng.choice(["a", "b"], rows),
        }
    )
    score = 0.02 * frame["amount"] + 1.5 * frame["merchant_risk"] - 0.05 * frame["hour"]
    frame["label"] = (score + rng.normal(0.0, 0.3, rows) > 0.0).astype(int)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rows", type=int, default=600)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = make_data(args.seed, args.rows)
    data.to_csv(args.out / "data.csv", index=False)
    model = LogisticRegression(max_iter=1000).fit(data[FEATURES], data["label"])
    sio.dump(model, args.out / "model.skops")
    print(f"trained on {len(data)} rows: {args.out / 'model.skops'}")


if __name__ == "__main__":
    main()
