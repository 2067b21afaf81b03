"""A guided first session with modelkeep: register, promote and pull a model.

Run by ``make run``. It uses the embedded store in ./.modelkeep (SQLite + local blobs),
so every run adds a version to the same registry; inspect it afterwards with the CLI,
e.g. ``.venv/bin/modelkeep versions churn`` or ``.venv/bin/modelkeep audit log``.
"""

from __future__ import annotations

import json
import random
import subprocess
import tempfile
from pathlib import Path

import modelkeep
from modelkeep.errors import ModelExists

MODEL = "churn"


def say(step: str, detail: str = "") -> None:
    print(f"\n==> {step}")
    if detail:
        print(f"    {detail}")


def train(workdir: Path, seed: int) -> tuple[Path, dict[str, float]]:
    """Stand-in for training: writes weights and a config, returns metrics."""
    rng = random.Random(seed)
    model_dir = workdir / "model"
    model_dir.mkdir()
    weights = [rng.gauss(0, 1) for _ in range(2048)]
    (model_dir / "weights.json").write_text(json.dumps(weights))
    (model_dir / "config.json").write_text(json.dumps({"layers": [32, 16], "seed": seed}))
    return model_dir, {"auc": round(0.80 + rng.random() / 10, 4), "loss": rng.random()}


def git_commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
        return found.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "0" * 40


def main() -> None:
    mk = modelkeep.connect()  # ./.modelkeep, or MODELKEEP_URI
    say("registry", f"embedded store at {mk.settings.uri} (SQLite + local blobs)")
    try:
        mk.create_model(MODEL, description="predicts customer churn", require=["commit"])
        say(f"created model {MODEL!r}", "every version must name its code commit")
    except ModelExists:
        say(f"model {MODEL!r} exists", "this run adds a new version to it")

    with tempfile.TemporaryDirectory() as tmp:
        seed = random.SystemRandom().randrange(1 << 30)
        model_dir, metrics = train(Path(tmp), seed)
        version = mk.push(
            MODEL,
            [model_dir],
            bump="minor",
            params={"layers": "32,16"},
            metrics=metrics,
            commit=git_commit(),
            seed=seed,
            message="trained by examples/quickstart.py",
        )
    say(
        f"pushed {version.ref} (semver {version.semver})",
        f"digest {version.digest}: the sha256 of its manifest, its immutable identity",
    )
    for f in version.files:
        print(f"    {f.path:14} {f.size:>7} bytes  {f.digest}")

    mk.promote(version.ref, to="staging", reason="passed offline evaluation")
    say(f"promoted {version.ref} to staging")
    event = mk.promote(version.ref, to="production", reason="quickstart demo")
    before = f"{MODEL}@{event.old}" if event.old else "nothing"
    say(f"promoted {version.ref} to production", f"production moved from {before}")

    found = mk.resolve(f"{MODEL}@production")
    say(f"resolved {MODEL}@production", f"-> {MODEL}@{found.number} {found.digest}")

    pulled = mk.pull(f"{MODEL}@production", Path("pulled") / MODEL, force=True)
    say(
        f"pulled {MODEL}@production into {pulled.dest}",
        f"{len(pulled.written)} files written, each verified against its digest",
    )

    report = mk.verify()
    say("verified the store", f"{report.checked_blobs} blobs re-hashed, ok={report.ok}")
    chain = mk.audit_verify()
    say("audit chain", f"{chain.checked} events, intact={chain.ok}")
    mk.close()
    print("\nTry next:  .venv/bin/modelkeep versions churn")
    print("           .venv/bin/modelkeep alias history churn")
    print("           .venv/bin/modelkeep rollback churn --stage production")


if __name__ == "__main__":
    main()
