"""docs/serving.md stays true: its "Load a version" example runs and prints what it shows
(beside tests/test_docs.py, whose helpers it uses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_docs import marked, read


def test_the_load_example_prints_what_is_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    text = read("serving.md")
    code = compile(marked(text, "load-example"), "docs/serving.md", "exec")
    exec(code, {"__name__": "serving_example"})
    assert capsys.readouterr().out == marked(text, "load-output") + "\n"


def test_the_mlflow_style_one_liner_is_the_sdk_s() -> None:
    """The one line shown for MLflow users is a call chain the SDK has."""
    import modelkeep
    from modelkeep.serving.predictor import Predictor

    assert 'modelkeep.connect().load("fraud@production").predict(df)' in read("serving.md")
    assert callable(modelkeep.Client.load) and callable(Predictor.predict)
