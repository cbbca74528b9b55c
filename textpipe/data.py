"""Load a labeled text dataset from the Hugging Face Hub or local files into train/validation/test splits.

A source is a Hub id (`imdb`, `glue` with subset `sst2`), a local folder with one file per split
(`train.parquet`, `validation.csv`, `test.jsonl`, ...), or a single such file. Columns are found by their
usual names unless given; string labels become ids 0..n-1 and their names are kept.

String labels are read without surrounding whitespace, so `pos` and `pos ` (a stray space in a CSV cell) are
one class, `pos`. Labels stay case-sensitive, but two that differ only by case (`pos`, `Pos`) are refused as
the typo they almost always are, rather than trained as two classes.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import json
import logging
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Column finding is shared with the scoring inputs, which are read without importing `datasets`.
from textpipe.columns import LABEL_COLUMNS, TEXT_COLUMNS, find_column  # noqa: F401
from textpipe.config import Config, check_encoding
from textpipe.errors import DataError, one_line
# SAMPLE_DATASET (the review set used when no dataset is named) and FILE_FORMATS (suffix -> datasets builder)
# live with the code that tells a local source from a Hub id, which runs before `datasets` is imported.
from textpipe.sources import FILE_FORMATS, SAMPLE_DATASET, load_hub_dataset, resolve_source

VALIDATION_SPLITS = ("validation", "valid", "val", "dev")


@dataclasses.dataclass(frozen=True)
class Split:
    """Texts (a numpy array of str) and integer label ids of one split."""

    texts: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclasses.dataclass(frozen=True)
class LabeledData:
    train: Split
    validation: Split
    test: Split | None
    class_names: tuple[str, ...]
    text_column: str
    label_column: str
    validation_from_train: bool  # True when validation was carved from train
    # Integer labels: the id (as text) of each class, in class order; None for string labels.
    label_ids: tuple[str, ...] | None = None


def load_labeled_data(
    source: str | Path | None = None,
    subset: str | None = None,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    validation_fraction: float = 0.1,
    seed: int = 0,
    train_split: str | None = None,
    label_names: Sequence[str] | None = None,
    encoding: str | None = None,
    test_split: str = "test",
    base: Path = Path(),
) -> LabeledData:
    """Load train, validation and (if present and labeled) test splits of `source`; None means the shipped sample.

    Trains on the split named "train", or on `train_split`. Uses the dataset's own validation split, or carves
    a stratified `validation_fraction` of train with `seed`. The test split is the one named `test_split`, the
    rows a caller judges the trained model on; when that names the validation split (under any of its names,
    VALIDATION_SPLITS), it is the test split and validation is carved from train, so that the rows the model is
    judged on never choose its epoch.
    String labels are stripped of surrounding whitespace; labels differing only by case are an error.
    `label_names` names integer labels, the i-th name for the i-th smallest id. Local CSV/TSV/JSON files are read
    as UTF-8, or in `encoding`; a relative path is read from the folder `base`.
    Raises DataError with a one-line explanation for every problem found.
    """
    raw = load_raw(source, subset, check_encoding(encoding), base)
    name = describe_source(source, subset)
    train_name = _train_split_name(raw, train_split, name)
    text_col = find_column(raw[train_name].column_names, text_column, "text", name)
    label_col = find_column(raw[train_name].column_names, label_column, "label", name, LABEL_COLUMNS)

    class_names, label_ids = _class_names(raw[train_name], label_col, name)
    if label_names is not None:
        class_names = _named_classes(class_names, label_ids, tuple(label_names), name)
    train = _to_split(raw[train_name], train_name, text_col, label_col, class_names, name, label_ids)
    if len(np.unique(train.labels)) < 2:
        only = class_names[int(train.labels[0])]
        raise DataError(
            f"the {train_name} split of {name} has only one class ({only!r}); a classifier needs two or more"
        )

    val_names = [s for s in VALIDATION_SPLITS if s in raw and s != train_name]
    if len(val_names) > 1:
        _refuse_local_validation_splits(source, val_names, base)
    test_names = val_names if test_split in VALIDATION_SPLITS else [test_split]
    test_name = next((s for s in test_names if s in raw and s != train_name), None)
    val_name = next((s for s in val_names if s != test_name), None)
    if val_name is not None:
        validation = _to_split(raw[val_name], val_name, text_col, label_col, class_names, name, label_ids)
    else:
        train, validation = _carve(train, validation_fraction, seed)
        # Checked again: carving can take every row of a class (a class with one row, with the other
        # classes' rows all kept) and leave training with one class.
        _require_two_classes_after_carve(train, validation, class_names, name)

    test = None
    if test_name is not None and not _unlabeled(raw[test_name], label_col):
        test = _to_split(raw[test_name], test_name, text_col, label_col, class_names, name, label_ids)
    return LabeledData(train, validation, test, class_names, text_col, label_col, val_name is None, label_ids)


def load_training_data(config: Config) -> LabeledData:
    """`load_labeled_data` with the dataset, columns, splits, label names, encoding, validation fraction and
    seed a Config names."""
    return load_labeled_data(
        config.dataset,
        config.subset,
        text_column=config.text_column,
        label_column=config.label_column,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
        train_split=config.train_split,
        label_names=config.label_names,
        encoding=config.encoding,
    )


def load_split(
    source: str | Path | None,
    split: str,
    subset: str | None = None,
    *,
    class_names: Sequence[str],
    text_column: str | None = None,
    label_column: str | None = None,
    label_ids: Sequence[str] | None = None,
    encoding: str | None = None,
) -> Split:
    """Load one named split, mapping its labels onto an existing model's `class_names`: string labels by
    name, integer labels by the model's `label_ids` (the training data's ids, see LabeledData) when it has
    them, else by name ("0", "1", ...)."""
    raw = load_raw(source, subset, check_encoding(encoding))
    name = describe_source(source, subset)
    if split not in raw:
        raise DataError(f"{name} has no split {split!r} (splits: {', '.join(raw)})")
    ds = raw[split]
    text_col = find_column(ds.column_names, text_column, "text", name)
    label_col = find_column(ds.column_names, label_column, "label", name, LABEL_COLUMNS)
    if _unlabeled(ds, label_col):
        raise DataError(f"split {split!r} of {name} has no labels (all -1); evaluate on another split")
    return _to_split(ds, split, text_col, label_col, tuple(class_names), name, label_ids)


def _train_split_name(raw: datasets.DatasetDict, train_split: str | None, name: str) -> str:
    if train_split is not None:
        if train_split not in raw:
            raise DataError(f"{name} has no split {train_split!r} to train on (splits: {', '.join(raw)})")
        return train_split
    if "train" in raw:
        return "train"
    example = next((s for s in raw if s not in ("test",)), next(iter(raw)))
    raise DataError(
        f"{name} has no 'train' split (splits: {', '.join(raw)}); name the split to train on with "
        f"--train-split (e.g. --train-split {example}), or give one file as --dataset to train on all its rows"
    )


def _named_classes(
    found: tuple[str, ...], label_ids: tuple[str, ...] | None, label_names: tuple[str, ...], name: str
) -> tuple[str, ...]:
    """`label_names` in place of the names of integer classes, after checking there is one for each class."""
    if label_ids is None:
        raise DataError(
            f"the labels of {name} are names already ({', '.join(found[:5])}{', ...' if len(found) > 5 else ''}); "
            "label names are for integer labels: leave them out"
        )
    if len(label_names) != len(found):
        ids = ", ".join(label_ids[:10]) + (", ..." if len(label_ids) > 10 else "")
        raise DataError(
            f"{len(label_names)} label names for the {len(found)} classes of {name} (label ids {ids}); "
            "give one name for each id, in order"
        )
    return label_names


def _refuse_local_validation_splits(source: str | Path | None, splits: Sequence[str], base: Path) -> None:
    """Refuses a local folder with files for two of the validation aliases (validation.csv, dev.csv): which one
    is meant cannot be told. A Hub dataset keeps the first in VALIDATION_SPLITS, as its files cannot be changed."""
    folder = resolve_source(source, base)
    if not isinstance(folder, Path):
        return
    files = _split_files(folder)
    names = sorted(files[s].name for s in splits)
    raise DataError(
        f"{folder} has {_count(len(names))} validation splits: {', '.join(names)}; keep one "
        f"({', '.join(VALIDATION_SPLITS[:-1])} and {VALIDATION_SPLITS[-1]} all name the validation split)"
    )


def _count(n: int) -> str:
    return {2: "two", 3: "three", 4: "four"}.get(n, str(n))


def describe_source(source: str | Path | None, subset: str | None = None) -> str:
    if source is None:
        return "the built-in sample dataset"
    return f"'{source}'" + (f" (subset {subset!r})" if subset else "")


def load_raw(
    source: str | Path | None, subset: str | None = None, encoding: str | None = None, base: Path = Path()
) -> datasets.DatasetDict:
    """The splits of `source` (see resolve_source; a relative path is read from the folder `base`)."""
    resolved = resolve_source(source, base)
    if isinstance(resolved, Path):
        return _load_local(resolved, encoding)
    if encoding is not None:
        raise DataError(f"an encoding is for local CSV/TSV/JSON files; {source!r} is read from the Hub: leave it out")
    return load_hub_dataset(resolved, subset)


def _load_local(path: Path, encoding: str | None = None) -> datasets.DatasetDict:
    if path.is_file():
        files = {"train": path}
    else:
        files = _split_files(path)
        if not files:
            raise DataError(
                f"folder {path} has no data files; expected one file per split such as train.csv "
                f"or validation.parquet ({', '.join(FILE_FORMATS)})"
            )
    suffixes = {f.suffix.lower() for f in files.values()}
    if len(suffixes) != 1 or next(iter(suffixes)) not in FILE_FORMATS:
        raise DataError(
            f"cannot read {path}: expected split files of one format ({', '.join(FILE_FORMATS)}), "
            f"found {', '.join(f.name for f in files.values())}"
        )
    for split, f in files.items():
        if _is_empty(f):
            raise DataError(f"split {split!r} of '{path}' is empty ({f.name} has no rows)")
    suffix = suffixes.pop()
    builder, kwargs = FILE_FORMATS[suffix]
    if encoding is not None:
        if suffix == ".parquet":
            raise DataError(f"an encoding is for CSV/TSV/JSON files; {path} is Parquet, which is always UTF-8")
        if builder == "json" and "\n".encode(encoding) != b"\n":
            # The JSON reader cuts files into blocks at b"\n" and decodes each alone, which splits UTF-16/32.
            raise DataError(f"JSON Lines files must be UTF-8 or an ASCII-compatible encoding, not {encoding}; "
                            f"convert {path} first (e.g. iconv -f {encoding} -t utf-8)")
        kwargs = {**kwargs, "encoding": encoding}
    if builder == "json" and encoding is None:
        # pyarrow's JSON reader takes invalid UTF-8 into string columns unchecked; it would fail later, rowless.
        _refuse_undecodable(files.values(), encoding)
    try:
        with _reader_failures_unlogged():
            return datasets.load_dataset(
                builder, data_files={split: str(f) for split, f in files.items()}, **kwargs
            )
    except Exception as e:  # pyarrow/pandas parse errors come in many types
        _refuse_undecodable(files.values(), encoding)
        _refuse_malformed(files.values(), encoding, kwargs.get("delimiter", ","))
        raise DataError(f"could not read {path}: {one_line(_root_cause(e))}") from None


def _split_files(folder: Path) -> dict[str, Path]:
    """The data file of each split in `folder`, by file name without suffix. Two files for one split (train.csv
    and train.jsonl) are refused: reading either would silently leave out the other."""
    found: dict[str, list[Path]] = {}
    for f in sorted(folder.iterdir()):
        if f.suffix.lower() in FILE_FORMATS:
            found.setdefault(f.stem, []).append(f)
    for split, group in found.items():
        if len(group) > 1:
            raise DataError(
                f"{folder} has {_count(len(group))} files for split {split}: {', '.join(f.name for f in group)}; "
                "keep one"
            )
    return {split: group[0] for split, group in found.items()}


class _ReaderFailureFilter(logging.Filter):
    """Drops the error records of `datasets`' file readers ("Failed to read file ...", "Failed to load JSON
    ..."), logged just before the error is raised: that error becomes textpipe's one-line message, which the log
    line would only precede."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("datasets.packaged_modules.") and record.levelno >= logging.ERROR)


@contextlib.contextmanager
def _reader_failures_unlogged() -> Iterator[None]:
    """No reader-failure record from `datasets` for the duration; every other record passes. The filter sits on
    the handlers (the `datasets` logger's own, and the root logger's should records propagate there): a logger's
    filter would not see the records of the per-module loggers below it."""
    handlers = {*logging.getLogger("datasets").handlers, *logging.getLogger().handlers}
    quiet = _ReaderFailureFilter()
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


def _refuse_malformed(files: Iterable[Path], encoding: str | None, delimiter: str) -> None:
    """A DataError naming the first line of a file that is not valid JSON (JSON files) or that has more fields
    than the header (CSV/TSV), if there is one: the readers' own messages name a byte position or no file."""
    for file in files:
        suffix = file.suffix.lower()
        try:
            if suffix in (".json", ".jsonl"):
                problem = _first_bad_json_line(file, encoding)
            elif suffix in (".csv", ".tsv"):
                problem = _first_long_csv_row(file, encoding, delimiter)
            else:
                problem = None
        except (UnicodeError, csv.Error):  # reported by the reader's message instead
            problem = None
        if problem is not None:
            raise DataError(f"could not read {file}: {problem}")


def _first_bad_json_line(file: Path, encoding: str | None) -> str | None:
    """What is wrong with the first bad line of a JSON Lines file, read a line at a time (a line ends at "\n",
    as the reader's do); None when every line is one JSON object. A .json file whose first line is not a value
    of its own is one document (a pretty-printed array): the parser's error names the line."""
    with open(file, encoding=encoding or "utf-8", newline="\n") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                if number == 1 and file.suffix.lower() == ".json":
                    return _json_document_error(file, encoding)
                return f"line {number} is not valid JSON ({e.msg} at column {e.colno})"
            if not isinstance(value, dict):
                return f"line {number} is not a JSON object; JSON Lines files hold one object per line"
    return None


def _json_document_error(file: Path, encoding: str | None) -> str | None:
    try:
        json.loads(file.read_text(encoding=encoding or "utf-8"))
    except json.JSONDecodeError as e:
        return f"line {e.lineno} is not valid JSON ({e.msg} at column {e.colno})"
    return None


def _first_long_csv_row(file: Path, encoding: str | None, delimiter: str) -> str | None:
    """What is wrong with the first row that has more fields than the header (the reader refuses it; fewer
    fields are read as missing values), with the line it starts on; None when there is none."""
    with file.open(encoding=encoding or "utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return None
        start = reader.line_num + 1
        for row in reader:
            if len(row) > len(header):
                separator = "tab" if delimiter == "\t" else "comma"
                return (
                    f"line {start} has {len(row)} fields, the header {len(header)}; put a field that holds a "
                    f"{separator} in double quotes"
                )
            start = reader.line_num + 1
    return None


def _refuse_undecodable(files: Iterable[Path], encoding: str | None) -> None:
    """A DataError naming the first line that is not valid in `encoding` (UTF-8 by default), if there is one."""
    undecodable = next(filter(None, (_first_undecodable_line(f, encoding) for f in files)), None)
    if undecodable is None:
        return
    file, line = undecodable
    if encoding is None:
        raise DataError(
            f"could not read {file}: line {line} is not valid UTF-8; name the file's encoding (e.g. --encoding "
            "latin-1) or save it as UTF-8"
        )
    raise DataError(f"could not read {file}: line {line} is not valid {encoding}")


def _first_undecodable_line(file: Path, encoding: str | None = None) -> tuple[Path, int] | None:
    """(file, 1-based line number) of the first line of a text file that is not valid in `encoding` (UTF-8 by
    default); None for Parquet files and for text that decodes."""
    if file.suffix.lower() == ".parquet":
        return None
    # Incremental: in UTF-16 a line's bytes do not end where a b"\n" byte is.
    decoder = codecs.getincrementaldecoder(encoding or "utf-8")()
    with file.open("rb") as f:
        number = 1
        for chunk in f:
            try:
                number += decoder.decode(chunk).count("\n")
            except UnicodeDecodeError:
                return file, number
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return file, number
    return None


def _is_empty(file: Path) -> bool:
    if file.stat().st_size == 0:
        return True
    if file.suffix.lower() == ".parquet":
        try:
            return pq.ParquetFile(file).metadata.num_rows == 0
        except pa.ArrowException:
            return False  # not valid Parquet: let the reader report it
    # Text formats: a CSV/TSV needs a header and one row, JSON Lines one non-blank line.
    needed = 2 if file.suffix.lower() in (".csv", ".tsv") else 1
    with file.open("rb") as f:
        for line in f:
            if line.strip():
                needed -= 1
                if needed == 0:
                    return False
    return True


def _root_cause(error: BaseException) -> BaseException:
    # datasets wraps reader errors in a generic "error occurred while generating the dataset".
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return error


def _class_names(train: datasets.Dataset, label_col: str, name: str) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """The class names, and for integer labels the id of each class (as text; None for string labels).

    ClassLabel names when the dataset has them (ids 0..n-1), else the sorted distinct labels of train.
    Integer labels are sorted as numbers and named by their value: labels 1..5 (star ratings) are
    five classes "1".."5", not six with an empty class 0.
    """
    feature = train.features[label_col]
    if isinstance(feature, datasets.ClassLabel):
        return tuple(feature.names), tuple(str(i) for i in range(len(feature.names)))
    column = _label_column(train, label_col, "train", name)
    if _is_text(column):
        names = tuple(sorted(pc.unique(_string_labels(column, "train", name, label_col)).to_pylist()))
        _refuse_case_variants(names, name)
        return names, None
    ids = tuple(str(v) for v in sorted(set(_integer_labels(column, "train", name).tolist())))
    return ids, ids


def _string_labels(column: pa.ChunkedArray, split: str, name: str, label_col: str) -> pa.ChunkedArray:
    """String labels without surrounding whitespace: a stray space in a CSV cell must not make a new class.
    A label that is only whitespace is refused, like a missing one."""
    stripped = pc.utf8_trim_whitespace(column)
    blank = pc.equal(pc.utf8_length(stripped), 0)
    if pc.any(blank).as_py():
        raise DataError(
            f"row {_first_row(blank)} of split {split!r} of {name} has an empty label in column {label_col!r}"
        )
    return stripped


def _refuse_case_variants(class_names: Sequence[str], name: str) -> None:
    """Labels are case-sensitive, but `pos` and `Pos` in one train split are a typo, not two classes."""
    seen: dict[str, str] = {}
    for label in class_names:
        other = seen.setdefault(label.casefold(), label)
        if other != label:
            raise DataError(
                f"the train split of {name} has labels {other!r} and {label!r}, which differ only by case; "
                "spell each class one way (labels are case-sensitive)"
            )


def _label_column(ds: datasets.Dataset, label_col: str, split: str, name: str) -> pa.ChunkedArray:
    _require_column(ds, label_col, split, name)
    column = ds.data.column(label_col)
    if column.null_count:
        raise DataError(f"row {_first_null(column)} of split {split!r} of {name} has no label in column {label_col!r}")
    return column


def _integer_labels(column: pa.ChunkedArray, split: str, name: str) -> np.ndarray:
    values = column.to_numpy(zero_copy_only=False)
    if values.dtype == bool:
        return values.astype(np.int64)
    if not np.issubdtype(values.dtype, np.number) or not np.all(np.mod(values, 1) == 0):
        raise DataError(f"labels of split {split!r} of {name} are not class ids or names (dtype {values.dtype})")
    return values.astype(np.int64)


def _to_split(
    ds: datasets.Dataset,
    split: str,
    text_col: str,
    label_col: str,
    class_names: tuple[str, ...],
    name: str,
    label_ids: Sequence[str] | None = None,
) -> Split:
    if len(ds) == 0:
        raise DataError(f"split {split!r} of {name} is empty")
    _require_column(ds, text_col, split, name)
    texts = ds.data.column(text_col)
    if not _is_text(texts):
        raise DataError(
            f"column {text_col!r} of split {split!r} of {name} holds {texts.type} values, not text"
        )
    if texts.null_count:
        raise DataError(
            f"row {_first_null(texts)} of split {split!r} of {name} has no text (null/NaN) in column {text_col!r}"
        )

    column = _label_column(ds, label_col, split, name)
    feature = ds.features[label_col]
    if isinstance(feature, datasets.ClassLabel) and label_ids is None:
        # A model trained on string labels: ClassLabel ids by their names when they are the model's classes,
        # else by position.
        labels = _integer_labels(column, split, name)
        if labels.min() < 0 or labels.max() >= len(feature.names):
            bad = labels[(labels < 0) | (labels >= len(feature.names))][0]
            raise DataError(
                f"split {split!r} of {name} has label id {bad}, outside its {len(feature.names)} classes "
                f"({', '.join(feature.names)})"
            )
        if set(feature.names) == set(class_names):
            labels = np.array([class_names.index(n) for n in feature.names])[labels]
        elif len(feature.names) != len(class_names):
            raise DataError(
                f"split {split!r} of {name} has {len(feature.names)} classes ({', '.join(feature.names)}), "
                f"the model {len(class_names)} ({', '.join(class_names)})"
            )
    else:
        if _is_text(column):
            values = _string_labels(column, split, name, label_col).to_pylist()
            index = {n: i for i, n in enumerate(class_names)}
        else:
            values = [str(v) for v in _integer_labels(column, split, name)]
            index = {n: i for i, n in enumerate(label_ids or class_names)}
        unknown = next((v for v in values if v not in index), None)
        if unknown is not None and label_ids is not None and tuple(label_ids) != tuple(class_names):
            raise DataError(
                f"split {split!r} of {name} has label id {unknown}, which is not among the label ids "
                f"({', '.join(label_ids)}) of the classes ({', '.join(class_names)})"
            )
        if unknown is not None:
            same = [n for n in class_names if n.casefold() == unknown.casefold()]
            hint = f"; did you mean {same[0]!r}? labels are case-sensitive" if same else ""
            raise DataError(
                f"split {split!r} of {name} has label {unknown!r}, which is not among the classes "
                f"({', '.join(class_names)}){hint}"
            )
        labels = np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))
    return Split(np.array(texts.to_pylist(), dtype=object), labels)


def _require_column(ds: datasets.Dataset, column: str, split: str, name: str) -> None:
    if column not in ds.column_names:
        raise DataError(
            f"split {split!r} of {name} has no column {column!r} (columns: {', '.join(ds.column_names)})"
        )


def _is_text(column: pa.ChunkedArray) -> bool:
    return pa.types.is_string(column.type) or pa.types.is_large_string(column.type)


def _unlabeled(ds: datasets.Dataset, label_col: str) -> bool:
    """A split without the label column, or marked all -1 as Hub test splits without public labels (GLUE)."""
    if label_col not in ds.column_names:
        return True
    column = ds.data.column(label_col)
    return len(ds) > 0 and pa.types.is_integer(column.type) and bool(pc.all(pc.equal(column, -1)).as_py())


def _carve(train: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Split off a seeded, stratified validation set (plain random when a class is too small).

    Every class with two or more rows keeps at least one in train. A class with a single row may still
    end up in validation only; `_require_two_classes_after_carve` catches the case where that leaves one class.
    """
    from sklearn.model_selection import train_test_split  # here: scikit-learn takes a second to import

    index = np.arange(len(train))
    counts = np.bincount(train.labels)
    stratify = train.labels if counts[counts > 0].min() >= 2 else None
    n_val = min(max(1, round(fraction * len(train))), len(train) - 1)  # train keeps a row
    if stratify is not None and min(n_val, len(train) - n_val) < len(counts[counts > 0]):
        stratify = None  # fewer validation (or training) rows than classes: cannot stratify
    keep, held = train_test_split(index, test_size=n_val, random_state=seed, stratify=stratify)
    if stratify is None:
        keep, held = _return_lost_classes(train.labels, keep, held)
    keep.sort()
    held.sort()
    return Split(train.texts[keep], train.labels[keep]), Split(train.texts[held], train.labels[held])


def _return_lost_classes(labels: np.ndarray, keep: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """After a plain random carve, give back to train one row of each class with two or more rows that
    validation took entirely, trading it for a row of the class train holds most of (validation keeps
    its size). Only a carve that lost a class changes, so every other seed gives the split it always did.
    """
    keep, held = list(keep), list(held)
    counts = np.bincount(labels)
    for lost in sorted(set(np.flatnonzero(counts >= 2)) - set(labels[keep].tolist())):
        kept_counts = np.bincount(labels[keep], minlength=len(counts))
        richest = int(kept_counts.argmax())
        if kept_counts[richest] < 2:
            break  # no class can spare a row: nothing to trade
        back = next(i for i in held if labels[i] == lost)
        out = next(i for i in keep if labels[i] == richest)
        held[held.index(back)] = out
        keep[keep.index(out)] = back
    return np.array(keep, dtype=np.int64), np.array(held, dtype=np.int64)


def _require_two_classes_after_carve(train: Split, validation: Split, class_names: Sequence[str], name: str) -> None:
    if len(np.unique(train.labels)) >= 2:
        return
    only = class_names[int(train.labels[0])]
    taken = sorted(set(validation.labels.tolist()) - {int(train.labels[0])})
    raise DataError(
        f"after holding out {len(validation)} validation row(s), the train split of {name} has only one class "
        f"({only!r}): validation took every row of {', '.join(repr(class_names[i]) for i in taken)}; "
        "give each class at least two rows, or provide a validation split (e.g. validation.csv beside train.csv)"
    )


def _first_null(column: pa.ChunkedArray) -> int:
    """1-based data row number of the first null, as a user counts rows (after a CSV header)."""
    return _first_row(column.is_null())


def _first_row(mask: pa.ChunkedArray) -> int:
    """1-based data row number of the first true value of a boolean column."""
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0]) + 1
