"""The schema and profile of a dataset file (CSV or Parquet), read in one streaming pass.

``profile_file(path)`` reads the file batch by batch with pyarrow (at most
``Limits.batch_rows`` rows at a time), so memory stays bounded whatever the file's size:
what is kept per column is a few running totals, at most ``Limits.sample_values`` numbers
for the quantiles and at most ``Limits.distinct_values`` distinct values for the top values
(fewer per column when a wide file would exceed the totals ``Limits.sample_budget`` and
``Limits.distinct_budget``). pyarrow's own buffers stay bounded too: Parquet columns are
read through buffers of ``Limits.block_bytes``, and the CSV reader parses blocks of that
size, reading a few dozen blocks ahead (about 20 MB with the defaults).

What each column gets, by ``kind``:

- every column: ``missing`` (nulls; for float columns NaN counts as missing too) and
  ``missing_share`` (missing / rows, 0.0 when there are no rows);
- ``"number"`` (integers, floats, decimals): ``count`` (finite values), ``infinite`` (how
  many values are +inf or -inf: neither missing nor in the statistics), then over the
  finite values ``min``, ``max``, ``mean``, ``std`` (sample, ddof=1, like pandas) and
  ``quantiles`` p05…p95 (linear interpolation, numpy's and pandas' default). Mean and std
  are merged across batches with Chan et al.'s parallel algorithm. Quantiles are exact
  while the column's finite values fit in the sample, else they come from a uniform
  reservoir sample of that size (seeded: the same file gives the same profile), and
  ``approximate`` is true;
- ``"category"`` (strings, dictionary-encoded) and ``"bool"``: ``distinct`` and ``top`` (the
  10 most common values with their counts, ties in first-seen order). Once a column has
  more distinct values than it may track, values seen for the first time are no longer
  counted, ``approximate`` is true, ``distinct`` is a lower bound, and ``top`` may miss a
  value that first appears late (the counts it shows stay exact);
- ``"time"`` (timestamps, dates, times of day): ``min`` and ``max`` as ISO 8601 text
  (timestamps with a time zone in UTC, with a ``Z``);
- ``"other"`` (binary, nested, durations, all-null …): only the missing counts.

``to_dict()`` gives plain JSON: a statistic that is not a finite number (no values, one
value for ``std``, an overflow) is ``None``, never NaN or infinity.

CSV types are inferred by pyarrow from the first block (``Limits.block_bytes``). When a
later value does not fit the type inferred for its column, that column alone is widened
and the file is read again from the start, so that the profile is the one of the whole
file's types (as pandas would read it) rather than an error or every column as text:
int64 → double → string; a column empty in the first block takes the type of the value
(int64, double or string); bool, time and other columns → string. Empty cells and
pyarrow's usual null markers ("NA", "null", "NaN", …) are missing, in text columns too (as
pandas reads them). Quoted values may span lines.

A file that cannot be read as its suffix says, or with any other suffix, is no error: the
result is a ``NoProfile`` whose reason says why, and the file is stored as plain data.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from modelkeep.stats.accumulators import Floats, Moments, Sample
from modelkeep.stats.profiles import (
    QUANTILES,
    CategoryStats,
    ColumnProfile,
    NoProfile,
    NumberStats,
    Profile,
    TimeStats,
    Value,
    finite,
)

TOP = 10
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t", ".csv.gz": ",", ".tsv.gz": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")
PLAIN = "stored as plain data, no profile made"
REASON_CHARS = 200
SEED = 0
ZERO_FRACTION = re.compile(r"\.0+(?=Z?$)")  # "…T12:00:00.000000" → "…T12:00:00", as pandas


@dataclass(frozen=True)
class Limits:
    """How much is read and kept at once; the defaults suit files of any size."""

    batch_rows: int = 65_536
    block_bytes: int = 512 << 10  # CSV bytes parsed at once; types come from the first block
    sample_values: int = 1_000_000  # numbers kept per column for the quantiles
    sample_budget: int = 8_000_000  # … and for all numeric columns together
    distinct_values: int = 100_000  # distinct values counted per column
    distinct_budget: int = 1_000_000  # … and for all category columns together
    min_share: int = 10_000  # a column's share of a budget is never less


LIMITS = Limits()


def profile_file(
    path: Path, max_bytes: int | None = None, *, limits: Limits = LIMITS
) -> Profile | NoProfile:
    """Profile the CSV (.csv, .tsv, either .gz) or Parquet (.parquet, .pq) file ``path``.

    Never raises for what the file holds: a file with another suffix, larger than
    ``max_bytes`` (when given: a bound on the time spent), or that is not valid for its
    format gives a ``NoProfile``. A missing file raises ``FileNotFoundError``.
    """
    size = path.stat().st_size
    name = path.name.lower()
    csv_delimiter = next((d for s, d in CSV_SUFFIXES.items() if name.endswith(s)), None)
    if csv_delimiter is None and not name.endswith(PARQUET_SUFFIXES):
        return NoProfile(f"{path.name} is not CSV or Parquet (by its suffix); {PLAIN}")
    if max_bytes is not None and size > max_bytes:
        return NoProfile(
            f"{path.name} is {size:,} bytes, over the {max_bytes:,} bytes profiled; {PLAIN}"
        )
    label = "Parquet" if csv_delimiter is None else "CSV"
    try:
        if csv_delimiter is None:
            return _profile_parquet(path, limits)
        return _profile_csv(path, csv_delimiter, limits)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as error:  # missing: raised above
        return NoProfile(f"{path.name} is not valid {label}: {_one_line(error)}; {PLAIN}")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


# Reading


def _profile_parquet(path: Path, limits: Limits) -> Profile:
    # Buffered column reads: a row group is never read whole at once.
    with pq.ParquetFile(path, buffer_size=limits.block_bytes, pre_buffer=False) as parquet:
        batches = parquet.iter_batches(batch_size=limits.batch_rows)
        return _profile_batches("parquet", parquet.schema_arrow, batches, limits)


CONVERSION = re.compile(
    r"In CSV column #(\d+): .*CSV conversion error to (\S+): invalid value '(.*)'", re.S
)
WIDER = {"null": pa.int64(), "int64": pa.float64(), "double": pa.string()}


def _profile_csv(path: Path, delimiter: str, limits: Limits) -> Profile:
    """Profile a CSV file, reading it again with a wider type for a column whose values
    stop fitting the type inferred from the first block (see the module docstring)."""
    types: dict[str, pa.DataType] = {}
    compression = "gzip" if path.name.lower().endswith(".gz") else None
    while True:
        with (
            pa.input_stream(str(path), compression=compression) as stream,
            pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=limits.block_bytes),
                parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
            ) as reader,
        ):
            binary = [f.name for f in reader.schema if pa.types.is_binary(f.type)]
            if binary:
                raise pa.ArrowInvalid(f"column {binary[0]!r} is not UTF-8 text")
            try:
                return _profile_batches("csv", reader.schema, _sliced(reader, limits), limits)
            except pa.ArrowInvalid as error:
                column, wider = _widened(error, reader.schema)
                if column in types and types[column] == wider:
                    raise
                types[column] = wider


def _widened(error: pa.ArrowInvalid, schema: pa.Schema) -> tuple[str, pa.DataType]:
    """The column a conversion error is about, and the type to read it as next time."""
    found = CONVERSION.search(str(error))
    if found is None:
        raise error
    index, inferred, value = int(found[1]), found[2], found[3]
    if index >= len(schema.names):
        raise error
    wider = WIDER.get(inferred, pa.string())
    if str(wider) == inferred:  # text that is not UTF-8: nothing wider to try
        raise error
    if inferred == "null" and not _is_int(value):
        wider = pa.float64() if _is_float(value) else pa.string()
    return schema.names[index], wider


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _sliced(batches: Any, limits: Limits) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for start in range(0, batch.num_rows, limits.batch_rows):
            yield batch.slice(start, limits.batch_rows)


def _profile_batches(format_: str, schema: pa.Schema, batches: Any, limits: Limits) -> Profile:
    columns = _columns(schema, limits)
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        for column, array in zip(columns, batch.columns, strict=True):
            column.add(array)
    return Profile(format_, rows, tuple(c.result(rows) for c in columns))


# Per-column accumulators


def _kind(type_: pa.DataType) -> str:
    types = pa.types
    if types.is_boolean(type_):
        return "bool"
    if types.is_integer(type_) or types.is_floating(type_) or types.is_decimal(type_):
        return "number"
    if types.is_dictionary(type_) or types.is_string(type_) or types.is_large_string(type_):
        return "category"
    if types.is_string_view(type_):
        return "category"
    if types.is_timestamp(type_) or types.is_date(type_) or types.is_time(type_):
        return "time"
    return "other"


def _share(total: int, each: int, parts: int, floor: int) -> int:
    """A column's part of a budget: ``each``, unless ``parts`` columns would need more."""
    return min(each, max(floor, total // max(parts, 1)))


def _columns(schema: pa.Schema, limits: Limits) -> list[_Column]:
    kinds = [_kind(f.type) for f in schema]
    sample = _share(
        limits.sample_budget, limits.sample_values, kinds.count("number"), limits.min_share
    )
    distinct = _share(
        limits.distinct_budget, limits.distinct_values, kinds.count("category"), limits.min_share
    )
    columns: list[_Column] = []
    for index, (f, kind) in enumerate(zip(schema, kinds, strict=True)):
        if kind == "number":
            columns.append(_NumberColumn(f, kind, sample, np.random.default_rng([SEED, index])))
        elif kind in ("category", "bool"):
            columns.append(_CategoryColumn(f, kind, distinct))
        elif kind == "time":
            columns.append(_TimeColumn(f, kind))
        else:
            columns.append(_Column(f, kind))
    return columns


class _Column:
    """Counts the missing values of a column; subclasses add their kind's statistics."""

    def __init__(self, field_: pa.Field, kind: str) -> None:
        self.field = field_
        self.kind = kind
        self.missing = 0

    def add(self, array: pa.Array) -> None:
        self.missing += array.null_count

    def result(self, rows: int) -> ColumnProfile:
        return ColumnProfile(
            name=self.field.name,
            type=str(self.field.type),
            kind=self.kind,
            missing=self.missing,
            missing_share=self.missing / rows if rows else 0.0,
            **self.stats(),
        )

    def stats(self) -> dict[str, Any]:
        return {}


class _NumberColumn(_Column):
    def __init__(self, field_: pa.Field, kind: str, sample: int, rng: np.random.Generator):
        super().__init__(field_, kind)
        self.integer = pa.types.is_integer(field_.type)
        self.infinite = 0
        self.low: float | None = None
        self.high: float | None = None
        self.moments = Moments()
        self.sample = Sample(sample, rng)

    def add(self, array: pa.Array) -> None:
        super().add(array)
        raw = pc.drop_null(array).to_numpy(zero_copy_only=False)
        if raw.size == 0:
            return
        if self.integer:  # exact bounds, even past 2**53
            self._bounds(int(raw.min()), int(raw.max()))
        values: Floats = raw.astype(np.float64)
        nan = np.isnan(values)
        self.missing += int(nan.sum())
        kept = np.isfinite(values)
        self.infinite += int(kept.size - nan.sum() - kept.sum())
        values = values[kept]
        if values.size == 0:
            return
        if not self.integer:
            self._bounds(float(values.min()), float(values.max()))
        self.moments.add(values)
        self.sample.add(values)

    def _bounds(self, low: float, high: float) -> None:
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def stats(self) -> dict[str, Any]:
        values = self.sample.values()
        quantiles = None
        if values.size:
            with np.errstate(over="ignore", invalid="ignore"):  # ±1e308: inf, then None
                found = np.quantile(values, [q for _, q in QUANTILES])
            quantiles = tuple(float(q) for q in found)
        numbers = NumberStats(
            count=self.moments.n,
            infinite=self.infinite,
            min=self.low,
            max=self.high,
            mean=self.moments.mean if self.moments.n else None,
            std=self.moments.std(),
            quantiles=quantiles,
            approximate=self.sample.approximate,
        )
        return {"numbers": numbers}


class _CategoryColumn(_Column):
    def __init__(self, field_: pa.Field, kind: str, bound: int) -> None:
        super().__init__(field_, kind)
        self.bound = bound
        self.counts: dict[Value, int] = {}
        self.approximate = False

    def add(self, array: pa.Array) -> None:
        super().add(array)
        counted = pc.value_counts(array)
        values = counted.field("values").to_pylist()
        for value, count in zip(values, counted.field("counts").to_pylist(), strict=True):
            if value is None:
                continue
            key = _plain(value)
            if key in self.counts:
                self.counts[key] += count
            elif len(self.counts) < self.bound:
                self.counts[key] = count
            else:
                self.approximate = True

    def stats(self) -> dict[str, Any]:
        top = heapq.nlargest(TOP, self.counts.items(), key=itemgetter(1))
        return {"categories": CategoryStats(len(self.counts), tuple(top), self.approximate)}


class _TimeColumn(_Column):
    """Bounds kept as the integers arrow stores (exact whatever the unit)."""

    def __init__(self, field_: pa.Field, kind: str) -> None:
        super().__init__(field_, kind)
        self.storage = pa.int64() if field_.type.bit_width == 64 else pa.int32()
        self.low: int | None = None
        self.high: int | None = None

    def add(self, array: pa.Array) -> None:
        super().add(array)
        bounds = pc.min_max(array.view(self.storage)).as_py()
        if bounds["min"] is None:
            return
        self.low = bounds["min"] if self.low is None else min(self.low, bounds["min"])
        self.high = bounds["max"] if self.high is None else max(self.high, bounds["max"])

    def stats(self) -> dict[str, Any]:
        type_ = self.field.type
        return {"times": TimeStats(_iso(self.low, type_), _iso(self.high, type_))}


# Plain values


def _iso(value: int | None, type_: pa.DataType) -> str | None:
    if value is None:
        return None
    if pa.types.is_date32(type_):
        return str(np.datetime_as_string(np.datetime64(value, "D")))
    if pa.types.is_date64(type_):
        return str(np.datetime_as_string(np.datetime64(value, "ms"), unit="D"))
    moment = np.datetime64(value, type_.unit)
    if pa.types.is_time(type_):  # time of day: the clock part of that long after 1970-01-01
        text = str(np.datetime_as_string(moment, unit=type_.unit)).partition("T")[2]
    elif type_.tz:
        text = str(np.datetime_as_string(moment, unit=type_.unit, timezone="UTC"))
    else:
        text = str(np.datetime_as_string(moment, unit=type_.unit))
    return ZERO_FRACTION.sub("", text)


def _plain(value: Any) -> Value:
    """A dictionary value as JSON can hold it."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
