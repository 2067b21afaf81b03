"""Dataset profiles: every statistic against pandas on the same file, batching, bounds,
files that are not CSV or Parquet, and memory that does not grow with the file."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from modelkeep.stats.profiles import QUANTILES, ColumnProfile, NoProfile, Profile
from modelkeep.stats.profiling import LIMITS, Limits, profile_file

ROWS = 120_000
FORMATS = ["csv", "tsv", "csv.gz", "parquet"]
ONE_BATCH = Limits(batch_rows=10**9, block_bytes=1 << 30)
MANY_BATCHES = Limits(batch_rows=5_000, block_bytes=256 << 10)


def frame(rows: int, seed: int = 7) -> pd.DataFrame:
    """Mixed types with missing values: ints, nullable ints, floats with NaN, a skewed
    category (as text and as pandas categorical), nullable bools, timestamps with NaT."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i:02d}" for i in range(60)], dtype=object)
    weights = 1 / np.arange(1, 61) ** 1.3
    category = rng.choice(words, rows, p=weights / weights.sum())
    category[rng.random(rows) < 0.05] = None
    floats = rng.normal(10, 3, rows)
    floats[rng.random(rows) < 0.1] = np.nan
    nullable = pd.array(rng.integers(0, 1000, rows), dtype="Int64")
    nullable[rng.random(rows) < 0.2] = pd.NA
    flags = pd.array(rng.random(rows) < 0.3, dtype="boolean")
    flags[rng.random(rows) < 0.02] = pd.NA
    seconds = pd.to_timedelta(rng.integers(0, 10**8, rows), unit="s")
    times = pd.Series(pd.Timestamp("2024-01-01") + seconds)
    times[rng.random(rows) < 0.03] = pd.NaT
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "i": rng.integers(-50, 50, rows),
            "n": nullable,
            "f": floats,
            "c": category,
            "k": pd.Categorical(category),
            "b": flags,
            "t": times,
        }
    )


def write(df: pd.DataFrame, path: Path) -> Path:
    if path.name.endswith(".parquet"):
        df.to_parquet(path, index=False, row_group_size=30_000)
    else:
        df.to_csv(path, index=False, sep="\t" if ".tsv" in path.name else ",")
    return path


def read(path: Path) -> pd.DataFrame:
    if path.name.endswith(".parquet"):
        return pd.read_parquet(path)
    sep = "\t" if ".tsv" in path.name else ","
    return pd.read_csv(path, sep=sep, parse_dates=["t"])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("datasets")
    df = frame(ROWS)
    paths = {f: write(df, folder / f"data.{f}") for f in FORMATS if f != "csv.gz"}
    paths["csv.gz"] = folder / "data.csv.gz"
    paths["csv.gz"].write_bytes(gzip.compress(paths["csv"].read_bytes(), compresslevel=1))
    return paths


def profiled(path: Path, limits: Limits = LIMITS) -> Profile:
    result = profile_file(path, limits=limits)
    assert isinstance(result, Profile), result
    return result


def by_name(profile: Profile) -> dict[str, ColumnProfile]:
    return {c.name: c for c in profile.columns}


def plain_json(profile: Profile | NoProfile) -> dict[str, Any]:
    """to_dict() as JSON reads it back; fails on NaN or infinity."""
    loaded: dict[str, Any] = json.loads(json.dumps(profile.to_dict(), allow_nan=False))
    return loaded


def assert_number(column: ColumnProfile, values: pd.Series[Any]) -> None:
    stats = column.numbers
    assert stats is not None
    finite = values.dropna()
    assert stats.count == len(finite)
    assert stats.infinite == 0
    assert stats.min == finite.min()
    assert stats.max == finite.max()
    assert stats.mean == pytest.approx(finite.mean(), rel=1e-9)
    assert stats.std == pytest.approx(finite.std(ddof=1), rel=1e-9)
    expected = finite.astype("float64").quantile([q for _, q in QUANTILES]).tolist()
    assert stats.quantiles is not None and list(stats.quantiles) == expected  # exact
    assert not stats.approximate


def assert_category(column: ColumnProfile, values: pd.Series[Any]) -> None:
    stats = column.categories
    assert stats is not None
    counts = values.value_counts()
    counts = counts[counts > 0]  # a pandas categorical lists unused categories too
    assert stats.distinct == len(counts)
    assert [n for _, n in stats.top] == counts.head(10).tolist()
    for value, n in stats.top:
        assert counts[value] == n
    assert not stats.approximate


def assert_time(column: ColumnProfile, values: pd.Series[Any]) -> None:
    assert column.times is not None
    assert column.times.min is not None and column.times.max is not None
    assert pd.Timestamp(column.times.min) == values.min()
    assert pd.Timestamp(column.times.max) == values.max()


KINDS = {
    "id": "number",
    "i": "number",
    "n": "number",
    "f": "number",
    "c": "category",
    "k": "category",
    "b": "bool",
    "t": "time",
}
CHECKS = {"number": assert_number, "category": assert_category, "bool": assert_category}


def assert_matches_pandas(profile: Profile, df: pd.DataFrame) -> None:
    assert profile.rows == len(df)
    assert [c.name for c in profile.columns] == list(df.columns)
    for column in profile.columns:
        values = df[column.name]
        assert column.kind == KINDS[column.name], column
        assert column.missing == values.isna().sum(), column.name
        assert column.missing_share == pytest.approx(values.isna().mean(), rel=1e-12)
        CHECKS.get(column.kind, assert_time)(column, values)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_statistic_matches_pandas(files: dict[str, Path], fmt: str) -> None:
    profile = profiled(files[fmt])
    assert profile.format == ("parquet" if fmt == "parquet" else "csv")
    assert_matches_pandas(profile, read(files[fmt]))


def test_schema_and_plain_json(files: dict[str, Path]) -> None:
    csv, parquet = profiled(files["csv"]), profiled(files["parquet"])
    assert csv.schema()[:4] == [
        {"name": "id", "type": "int64"},
        {"name": "i", "type": "int64"},
        {"name": "n", "type": "int64"},
        {"name": "f", "type": "double"},
    ]
    assert [c["type"] for c in csv.schema()[4:]] == ["string", "string", "bool", "timestamp[s]"]
    assert by_name(parquet)["k"].type.startswith("dictionary<values=")
    data = plain_json(csv)
    assert data["rows"] == ROWS
    f = data["columns"][3]
    assert set(f["quantiles"]) == {"p05", "p25", "p50", "p75", "p95"}
    assert data["columns"][6]["top"][0][0] is False
    assert data["columns"][7]["min"].startswith("2024-01-01T")


def assert_same(profile: Profile, expected: Profile) -> None:
    """Equal, but for mean and std, which may differ in the last bits."""
    got, want = profile.to_dict(), expected.to_dict()
    for a, b in zip(got["columns"], want["columns"], strict=True):
        for key in ("mean", "std"):
            if key in b:
                assert a.pop(key) == pytest.approx(b.pop(key), rel=1e-12)
    assert got == want


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_many_batches_give_the_one_batch_profile(files: dict[str, Path], fmt: str) -> None:
    assert_same(profiled(files[fmt], MANY_BATCHES), profiled(files[fmt], ONE_BATCH))


def test_quantiles_from_a_uniform_sample_beyond_the_bound(tmp_path: Path) -> None:
    rows = 400_000
    path = tmp_path / "big.parquet"
    pd.DataFrame({"x": np.arange(rows, dtype=np.int64)}).to_parquet(path)
    limits = Limits(batch_rows=7_000, sample_values=20_000, min_share=1)
    stats = by_name(profiled(path, limits))["x"].numbers
    assert stats is not None and stats.approximate and stats.quantiles is not None
    # Mean, std, min and max stay exact; a sample biased towards early or late rows
    # would move the quantiles of 0 … rows-1 by far more than 1 %.
    assert (stats.min, stats.max, stats.count) == (0, rows - 1, rows)
    assert stats.mean == pytest.approx((rows - 1) / 2, rel=1e-12)
    for (_, q), got in zip(QUANTILES, stats.quantiles, strict=True):
        assert got == pytest.approx(q * (rows - 1), abs=0.01 * rows)
    assert plain_json(profiled(path, limits))["columns"][0]["approximate"] is True
    assert profiled(path, limits) == profiled(path, limits)  # seeded: same file, same profile


def test_distinct_values_beyond_the_bound(files: dict[str, Path]) -> None:
    df = read(files["csv"])
    limits = Limits(distinct_values=100, distinct_budget=24, min_share=12)
    columns = by_name(profiled(files["csv"], limits))
    for name in ("c", "k"):  # two category columns share the budget: 12 each
        stats = columns[name].categories
        assert stats is not None
        assert stats.approximate and stats.distinct == 12
        counts = df[name].value_counts()
        assert all(counts[value] == n for value, n in stats.top)  # counts stay exact
    bools = columns["b"].categories
    assert bools is not None and not bools.approximate


def test_nan_is_missing_and_infinities_are_counted_apart(tmp_path: Path) -> None:
    values = [1.0, np.nan, np.inf, 4.0, -np.inf, None, 2.0, 8.0]
    df = pd.DataFrame({"x": values, "empty": [np.nan] * 8, "one": [5.0] + [np.nan] * 7})
    for path in (tmp_path / "inf.parquet", tmp_path / "inf.csv"):
        write(df, path)
        columns = by_name(profiled(path))
        x, empty, one = columns["x"], columns["empty"], columns["one"]
        assert x.missing == 2 and x.missing_share == 0.25
        assert x.numbers is not None
        assert (x.numbers.count, x.numbers.infinite) == (4, 2)
        finite = pd.Series([1.0, 4.0, 2.0, 8.0])
        assert (x.numbers.min, x.numbers.max) == (1.0, 8.0)
        assert x.numbers.mean == pytest.approx(finite.mean(), rel=1e-12)
        assert x.numbers.std == pytest.approx(finite.std(), rel=1e-12)
        assert empty.missing == 8
        assert one.numbers is not None and one.numbers.std is None
        data = plain_json(profile_file(path))
        assert data["columns"][0]["infinite"] == 2
        assert data["columns"][2]["std"] is None


def test_huge_values_never_give_nan_in_json(tmp_path: Path) -> None:
    path = tmp_path / "huge.parquet"
    pd.DataFrame({"x": [1e308, -1e308, 1e308]}).to_parquet(path)
    column = plain_json(profiled(path))["columns"][0]
    assert column["max"] == 1e308
    assert column["std"] is None  # overflows: None rather than inf


def test_csv_types_widen_when_later_rows_disagree(tmp_path: Path) -> None:
    lines = ["a,b,c,d"] + [f"{i},,{i},{i % 2 == 0}" for i in range(3_000)]
    lines += ["1.5,hello,x,maybe", "7,,8,true"]
    path = tmp_path / "drift.csv"
    path.write_text("\n".join(lines) + "\n")
    small = profiled(path, Limits(block_bytes=4_096, batch_rows=1_000))
    types = {c.name: c.type for c in small.columns}
    assert types == {"a": "double", "b": "string", "c": "string", "d": "string"}
    # The same profile as when one block holds the whole file and pyarrow sees it all.
    assert_same(small, profiled(path, ONE_BATCH))
    df = pd.read_csv(path)
    columns = by_name(small)
    assert_number(columns["a"], df["a"])
    assert_category(columns["c"], df["c"])
    assert columns["b"].missing == 3_001


def test_empty_column_then_numbers_becomes_numeric(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_text("a,b\n" + "1,\n" * 3_000 + "2,3.25\n2,7\n")
    columns = by_name(profiled(path, Limits(block_bytes=2_048)))
    assert columns["b"].type == "double"
    assert columns["b"].numbers is not None and columns["b"].numbers.max == 7.0


def test_quoted_values_may_span_lines_and_blocks(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text(
        "n,note\n" + "".join(f'{i},"line {i}\nand more, {i % 7}"\n' for i in range(9_000))
    )
    profile = profiled(path, Limits(block_bytes=4_096))
    assert profile.rows == 9_000
    note = by_name(profile)["note"].categories
    assert note is not None and note.distinct == 9_000


def test_header_only_csv_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("a,b\n")
    profile = profiled(path)
    assert profile.rows == 0
    assert [(c.name, c.missing, c.missing_share) for c in profile.columns] == [
        ("a", 0, 0.0),
        ("b", 0, 0.0),
    ]
    plain_json(profile)


def no_profile(path: Path, max_bytes: int | None = None) -> str:
    result = profile_file(path, max_bytes)
    assert isinstance(result, NoProfile), result
    assert "\n" not in result.reason
    assert result.reason.endswith("stored as plain data, no profile made")
    assert plain_json(result) == {"reason": result.reason}
    return result.reason


@pytest.mark.parametrize("seed", range(5))
def test_binary_garbage_is_not_csv(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(np.random.default_rng(seed).bytes(50_000))
    assert no_profile(path).startswith("x.csv is not valid CSV: ")


def test_text_that_is_not_utf8_is_not_csv(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"name\nabc\n\xe9t\xe9\n")
    assert "not UTF-8" in no_profile(path)


def test_truncated_parquet_and_other_broken_files(tmp_path: Path, files: dict[str, Path]) -> None:
    data = files["parquet"].read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    assert no_profile(tmp_path / "cut.parquet").startswith("cut.parquet is not valid Parquet: ")
    (tmp_path / "head.pq").write_bytes(data[:8])
    no_profile(tmp_path / "head.pq")
    (tmp_path / "none.csv").write_bytes(b"")
    assert "Empty CSV" in no_profile(tmp_path / "none.csv")
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    assert "Expected 2 columns" in no_profile(tmp_path / "ragged.csv")
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip at all")
    no_profile(tmp_path / "bad.csv.gz")


def test_other_suffixes_and_size_bound(tmp_path: Path, files: dict[str, Path]) -> None:
    for name in ("data", "model.bin", "table.json"):
        (tmp_path / name).write_text("a,b\n1,2\n")
        assert no_profile(tmp_path / name) == (
            f"{name} is not CSV or Parquet (by its suffix); stored as plain data, no profile made"
        )
    assert "over the 1,000 bytes profiled" in no_profile(files["csv"], max_bytes=1_000)
    size = files["csv"].stat().st_size
    assert isinstance(profile_file(files["csv"], max_bytes=size), Profile)
    with pytest.raises(FileNotFoundError):
        profile_file(tmp_path / "missing.csv")


def test_gzip_csv_is_read_through(tmp_path: Path) -> None:
    path = tmp_path / "DATA.TSV.GZ"
    path.write_bytes(gzip.compress(b"a\tb\n1\tx\n2\ty\n"))
    profile = profiled(path)
    assert (profile.rows, [c.type for c in profile.columns]) == (2, ["int64", "string"])


def test_time_columns_of_every_kind(tmp_path: Path) -> None:
    path = tmp_path / "times.parquet"
    table = pa.table(
        {
            "utc": pa.array([10**18 + 5, None, 10**18], pa.timestamp("ns", tz="UTC")),
            "day": pa.array([19_000, 18_000, None], pa.date32()),
            "clock": pa.array([3_600_000_001, 60_000_000, None], pa.time64("us")),
        }
    )
    pq.write_table(table, path)
    columns = plain_json(profiled(path))["columns"]
    assert [(c["kind"], c["min"], c["max"]) for c in columns] == [
        ("time", "2001-09-09T01:46:40Z", "2001-09-09T01:46:40.000000005Z"),
        ("time", "2019-04-14", "2022-01-08"),
        ("time", "00:01:00", "01:00:00.000001"),
    ]


MEMORY_PROBE = """
import json, sys, tracemalloc
from pathlib import Path
import pyarrow as pa
from modelkeep.stats.profiling import Limits, profile_file
tracemalloc.start()
profile_file(Path(sys.argv[2]))  # first use imports lazily: not the profile's memory
before, _ = tracemalloc.get_traced_memory()
tracemalloc.reset_peak()
profile = profile_file(Path(sys.argv[1]), limits=Limits(sample_values=100_000))
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({"rows": profile.rows, "traced": peak - before,
                  "arrow": pa.default_memory_pool().max_memory()}))
"""


@pytest.mark.slow
def test_memory_stays_far_below_the_file_size(tmp_path: Path) -> None:
    """Numbers kept for quantiles are bounded (here 100,000 per column), Python and numpy
    memory (tracemalloc) and pyarrow's buffers (its pool's peak) stay far below the size
    of a 48 MB CSV file, and would stay the same for a larger one."""
    rows = 1_100_000
    rng = np.random.default_rng(3)
    table = pa.table(
        {
            "id": np.arange(rows),
            "x": rng.normal(size=rows),
            "y": rng.integers(0, 10**9, rows),
            "c": pa.array(np.array(["alpha", "beta", "gamma"])[rng.integers(0, 3, rows)]),
        }
    )
    path, warm_up = tmp_path / "big.csv", tmp_path / "small.csv"
    pacsv.write_csv(table, path)
    pacsv.write_csv(table.slice(0, 100), warm_up)
    size = path.stat().st_size
    assert size > 45 << 20
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path), str(warm_up)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seen = json.loads(out.stdout)
    assert seen["rows"] == rows
    assert seen["traced"] < size / 8, seen  # numpy arrays and Python objects
    assert seen["arrow"] < size / 2, seen  # pyarrow's buffers, which tracemalloc misses
