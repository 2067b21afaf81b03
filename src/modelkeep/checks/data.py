"""The dataset a check runs on: every CSV and Parquet file of a directory, read with pyarrow,
and the feature columns a model is fed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from modelkeep.checks.deps import require
from modelkeep.errors import CheckFailed, ColumnNotFound

Array = npt.NDArray[Any]
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
SHOWN_NAMES = 20


def name_list(names: Iterable[str], limit: int = SHOWN_NAMES) -> str:
    """Names joined for a message, cut after ``limit`` with how many there are in all."""
    every = list(names)
    shown = ", ".join(every[:limit])
    return shown if len(every) <= limit else f"{shown}, … ({len(every)} in all)"


@dataclass(frozen=True)
class Dataset:
    """The rows of every data file, concatenated, without the rows whose target is missing."""

    table: pa.Table
    files: tuple[str, ...]
    dropped_rows: int = 0

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    def values(self, name: str) -> Array:
        """One column as a numpy array (nulls as NaN in numbers, None in text)."""
        column = self.table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        return np.asarray(column.to_numpy())

    def require(self, names: Iterable[str], what: str) -> None:
        """ColumnNotFound naming the columns the dataset has, when one of ``names`` is absent."""
        missing = [name for name in names if name not in self.table.column_names]
        if missing:
            raise ColumnNotFound(
                f"the dataset has no {what} column {name_list(repr(m) for m in missing)}; "
                f"its columns are: {name_list(self.columns)}"
            )


@dataclass(frozen=True)
class Features:
    """The columns a model is fed, in the model's order."""

    names: tuple[str, ...]
    columns: dict[str, Array] = field(repr=False)

    @property
    def rows(self) -> int:
        return len(self.columns[self.names[0]]) if self.names else 0

    @property
    def numeric(self) -> tuple[str, ...]:
        """The columns holding numbers (not booleans): the ones robustness perturbs."""
        return tuple(n for n in self.names if is_numeric(self.columns[n]))

    def with_columns(self, replaced: dict[str, Array]) -> Features:
        return Features(self.names, {**self.columns, **replaced})

    def matrix(self, dtype: npt.DTypeLike) -> Array:
        """The features as one [rows, features] array of ``dtype``."""
        return np.column_stack([self.columns[n].astype(dtype) for n in self.names])

    def frame(self) -> Any:
        """A pandas DataFrame with the feature names (for models fitted on one)."""
        pandas = require("pandas")
        return pandas.DataFrame({n: self.columns[n] for n in self.names}, columns=self.names)


def is_numeric(values: Array) -> bool:
    return bool(np.issubdtype(values.dtype, np.number)) and values.dtype != np.bool_


def load_dataset(directory: Path, target: str) -> Dataset:
    """Every CSV and Parquet file under ``directory``, concatenated; ColumnNotFound if the
    target column is absent."""
    files = data_files(directory)
    tables = [read_table(path, directory) for path in files]
    same_columns(tables, [p.relative_to(directory).as_posix() for p in files])
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise CheckFailed(
            f"the dataset's files do not share one schema: {one_line(exc)}",
            "give the dataset's files the same columns and types",
        ) from None
    dataset = Dataset(table, tuple(p.relative_to(directory).as_posix() for p in files))
    dataset.require([target], "target")
    return without_missing_target(dataset, target)


def same_columns(tables: list[pa.Table], names: list[str]) -> None:
    """Every file must have the first one's columns (types may widen: CSV infers them)."""
    first = set(tables[0].column_names)
    for table, name in zip(tables[1:], names[1:], strict=True):
        columns = set(table.column_names)
        if columns != first:
            extra, lacking = sorted(columns - first), sorted(first - columns)
            raise CheckFailed(
                f"the dataset's files do not share one schema: {name} has "
                f"{name_list(extra) or 'no other column'} and lacks "
                f"{name_list(lacking) or 'no column'} of {names[0]}",
                "give the dataset's files the same columns",
            )


def data_files(directory: Path) -> list[Path]:
    suffixes = CSV_SUFFIXES + PARQUET_SUFFIXES
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        seen = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*"))
        raise CheckFailed(
            f"the dataset has no CSV or Parquet file (files seen: {name_list(seen) or 'none'})",
            "check a dataset version whose files are .csv or .parquet",
        )
    return files


def read_table(path: Path, directory: Path) -> pa.Table:
    try:
        if path.suffix.lower() in CSV_SUFFIXES:
            return pacsv.read_csv(path)
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        name = path.relative_to(directory).as_posix()
        raise CheckFailed(
            f"the dataset file {name} cannot be read: {one_line(exc)}",
            "check that the file is valid CSV or Parquet",
        ) from None


def without_missing_target(dataset: Dataset, target: str) -> Dataset:
    """The rows with a target value: a check cannot score a row without one."""
    column = dataset.table.column(target)
    keep = pc.is_valid(column)
    if pa.types.is_floating(column.type):
        keep = pc.and_(keep, pc.invert(pc.is_nan(column)))
    kept = dataset.table.filter(keep)
    return Dataset(kept, dataset.files, dataset.rows - int(kept.num_rows))


def select_features(
    dataset: Dataset, model_names: tuple[str, ...] | None, excluded: Iterable[str]
) -> Features:
    """The model's own feature names when it has them, else every other column."""
    if model_names is not None:
        dataset.require(model_names, "feature")
        names = model_names
    else:
        skip = set(excluded)
        names = tuple(n for n in dataset.columns if n not in skip)
    if not names:
        raise CheckFailed("the dataset has no feature column", "check a dataset with features")
    return Features(names, {n: dataset.values(n) for n in names})


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an error's text, short enough for a message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
