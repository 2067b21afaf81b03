from __future__ import annotations

import dataclasses

import pytest

from modelkeep.config import SETTINGS, Settings
from modelkeep.domain.versions import (
    VersionMetadata,
    check_required_fields,
    missing_fields,
)
from modelkeep.errors import InvalidInput, InvalidMetadata, InvalidRef


def test_metrics_become_floats_and_must_be_finite() -> None:
    assert VersionMetadata(metrics={"n": 3}).validated().metrics == {"n": 3.0}
    for bad in (float("nan"), float("inf"), "0.9", True):
        with pytest.raises(InvalidMetadata):
            VersionMetadata(metrics={"auc": bad}).validated()  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "metadata",
    [
        VersionMetadata(params={"": 1}),
        VersionMetadata(params={"a b": 1}),
        VersionMetadata(params={"k": [1, 2]}),  # type: ignore[dict-item]
        VersionMetadata(params={"k": "x" * 8193}),
        VersionMetadata(params={f"k{i}": i for i in range(1001)}),
        VersionMetadata(meta={"k": float("nan")}),
        VersionMetadata(commit=""),
        VersionMetadata(commit="a\nb"),
        VersionMetadata(seed=True),
    ],
)
def test_bad_metadata_is_refused(metadata: VersionMetadata) -> None:
    with pytest.raises(InvalidMetadata):
        metadata.validated()


def test_dataset_references_must_parse() -> None:
    with pytest.raises(InvalidRef):
        VersionMetadata(datasets=("transactions",)).validated()
    assert VersionMetadata(datasets=("tx@3",)).validated().datasets == ("tx@3",)


def test_required_fields_name_top_level_or_keyed_fields() -> None:
    assert check_required_fields(["commit", "params.lr", "commit"]) == ("commit", "params.lr")
    for bad in ("colour", "commit.x", "params.", "meta.a b"):
        with pytest.raises(InvalidMetadata):
            check_required_fields([bad])


def test_missing_fields_counts_zero_seed_as_given() -> None:
    metadata = VersionMetadata(seed=0, params={"lr": 0.1}, meta={"owner": ""})
    required = ["seed", "params.lr", "meta.owner", "commit", "message"]
    assert missing_fields(required, metadata, None) == ["meta.owner", "commit", "message"]
    assert missing_fields(["message"], metadata, "why") == []


def test_settings_table_matches_the_settings_object() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(Settings)}
    assert {s.name: s.default for s in SETTINGS} == fields


def test_settings_cast_strictly_from_the_environment() -> None:
    environ = {"MODELKEEP_GC_GRACE_SECONDS": "60", "MODELKEEP_URI": "/x", "OTHER": "1"}
    settings = Settings.from_env(environ, uri=None)
    assert (settings.gc_grace_seconds, settings.uri) == (60, "/x")
    assert Settings.from_env(environ, uri="/y").uri == "/y"
    with pytest.raises(InvalidInput, match="MODELKEEP_GC_GRACE_SECONDS"):
        Settings.from_env({"MODELKEEP_GC_GRACE_SECONDS": "soon"})
    with pytest.raises(InvalidInput, match="MODELKEEP_PROGRESS"):
        Settings.from_env({"MODELKEEP_PROGRESS": "sometimes"})


def test_the_body_timeout_must_be_positive() -> None:
    assert Settings.from_env({"MODELKEEP_BODY_TIMEOUT_SECONDS": "2.5"}).body_timeout_seconds == 2.5
    for bad in ("0", "-1", "nan"):
        with pytest.raises(InvalidInput, match="MODELKEEP_BODY_TIMEOUT_SECONDS"):
            Settings.from_env({"MODELKEEP_BODY_TIMEOUT_SECONDS": bad})
