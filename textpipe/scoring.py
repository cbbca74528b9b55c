"""Score text files with a bundle: stream rows in, predictions out, in input order, with constant memory.

Inputs are plain text (one document per line), CSV/TSV or JSON Lines with a text column, or "-" for
standard input. Rows flow through a tf.data pipeline (read, batch, prefetch) so reading overlaps with the
model; each batch's predictions are written as soon as they are ready.

Messy input is counted, never dropped silently: undecodable bytes are replaced (U+FFFD) and the row flagged;
empty rows are kept without a prediction, or skipped and counted.

The pieces that turn a raw input row into model input (`read_rows`) and model output into an output record
(`output_records`) are shared by every driver of the scorer.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import csv
import dataclasses
import io
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO

import numpy as np
import tensorflow as tf

from textpipe.atomic import atomic_file
from textpipe.bundle import Bundle, to_class_probabilities
from textpipe.data import find_column
from textpipe.errors import DataError, one_line

STDIN = "-"
INPUT_FORMATS = ("text", "csv", "tsv", "jsonl")
OUTPUT_FORMATS = ("jsonl", "csv")
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
DEFAULT_BATCH = 512
# The csv module refuses fields over 128 KiB by default; a long document in one cell is legitimate input.
csv.field_size_limit(2**31 - 1)


@dataclasses.dataclass(frozen=True)
class InputRow:
    source: str  # the input's path as given, or "-"
    row: int  # 1-based line number (text, JSON Lines) or data row number after the header (CSV/TSV)
    text: str
    id: str | None = None  # the id column's value, when one was named
    replaced: bool = False  # undecodable bytes were replaced with U+FFFD

    @property
    def empty(self) -> bool:
        return not self.text.strip()


@dataclasses.dataclass
class ScoreSummary:
    rows_read: int = 0
    scored: int = 0
    empty: int = 0  # kept without a prediction, or skipped with skip_empty
    replaced: int = 0  # rows whose undecodable bytes were replaced
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        return (
            f"{self.rows_read} rows read, {self.scored} scored, {self.empty} empty, "
            f"{self.replaced} with replaced bytes; {self.seconds:.1f} s, {self.rate:,.0f} rows/s"
        )


@dataclasses.dataclass(frozen=True)
class InputSpec:
    path: str
    format: str  # one of INPUT_FORMATS
    text_column: str | None = None
    id_column: str | None = None


def resolve_inputs(
    paths: Sequence[str],
    input_format: str | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
) -> list[InputSpec]:
    """Check every input before any work starts: it exists, its format is known, its header has the columns."""
    if not paths:
        raise DataError("no input files given")
    if input_format is not None and input_format not in INPUT_FORMATS:
        raise DataError(f"unknown input format {input_format!r}; choose from {', '.join(INPUT_FORMATS)}")
    if sum(p == STDIN for p in paths) > 1:
        raise DataError("standard input ('-') can be read only once")
    specs = []
    for path in paths:
        if path != STDIN and not Path(path).is_file():
            raise DataError(f"input file not found: {path}")
        fmt = input_format or SUFFIX_FORMATS.get(Path(path).suffix.lower(), "text")
        if fmt == "text" and id_column is not None:
            raise DataError(f"--id-column needs CSV/TSV or JSON Lines input; {path} is read as plain text")
        spec = InputSpec(path, fmt, text_column, id_column)
        if fmt in ("csv", "tsv") and path != STDIN:
            spec = dataclasses.replace(spec, text_column=_csv_text_column(spec))
        specs.append(spec)
    return specs


def read_rows(spec: InputSpec) -> Iterator[InputRow]:
    """The rows of one input, in order, decoded with replacement of undecodable bytes."""
    with _open_binary(spec.path) as raw:
        if spec.format == "text":
            rows = _text_rows(spec, raw)
        elif spec.format == "jsonl":
            rows = _jsonl_rows(spec, raw)
        else:
            rows = _csv_rows(spec, raw)
        yield from rows


def output_records(rows: Sequence[InputRow], probabilities: np.ndarray, class_names: Sequence[str]) -> Iterator[dict]:
    """One output record per input row; empty rows get no label or probabilities."""
    for row, probs in zip(rows, probabilities):
        record: dict[str, Any] = {"source": row.source, "row": row.row}
        if row.id is not None:
            record["id"] = row.id
        if row.empty:
            record["label"] = None
            record["probabilities"] = None
        else:
            record["label"] = class_names[int(np.argmax(probs))]
            record["probabilities"] = {name: float(p) for name, p in zip(class_names, probs)}
        record["empty"] = row.empty
        record["replaced_bytes"] = row.replaced
        yield record


def score_rows(
    bundle: Bundle,
    specs: Sequence[InputSpec],
    *,
    batch_size: int = DEFAULT_BATCH,
    skip_empty: bool = False,
    summary: ScoreSummary | None = None,
    shard: tuple[int, int] | None = None,
) -> Iterator[dict]:
    """Output records for every row of `specs`, in input order, predicted batch by batch.

    Pass a ScoreSummary to have it filled in as rows go by (empty rows skipped with `skip_empty` are
    counted in it too). `shard=(i, n)` scores only the i-th (1-based) of n contiguous, disjoint parts of
    the rows, so that the n parts' outputs, concatenated in order, are the whole output.
    """
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, got {batch_size}")
    summary = summary if summary is not None else ScoreSummary()
    start = time.perf_counter()
    first, end = shard_bounds(specs, shard) if shard is not None else (0, None)
    infer = _inference_function(bundle)

    def all_rows() -> Iterator[InputRow]:
        for spec in specs:
            yield from read_rows(spec)

    def counted_rows() -> Iterator[InputRow]:
        for row in itertools.islice(all_rows(), first, end):
            summary.rows_read += 1
            summary.replaced += row.replaced
            if row.empty:
                summary.empty += 1
                if skip_empty:
                    continue
            yield row

    # tf.data carries the batches of texts; their InputRow objects wait in a queue beside it, in the same
    # order, so metadata never round-trips through tensors. The generator yields whole batches: tf.data
    # calls into Python once per element, which would cost more than the model for short texts.
    pending: collections.deque[list[InputRow]] = collections.deque()
    failure: list[BaseException] = []
    batches = tf.data.Dataset.from_generator(
        lambda: _batched(counted_rows(), batch_size, pending, failure),
        output_signature=tf.TensorSpec((None,), tf.string),
    )
    for texts in batches.prefetch(2):
        rows = pending.popleft()
        probabilities = to_class_probabilities(infer(texts).numpy())
        summary.scored += sum(not r.empty for r in rows)
        summary.seconds = time.perf_counter() - start
        yield from output_records(rows, probabilities, bundle.class_names)
    if failure:
        raise failure[0]
    summary.seconds = time.perf_counter() - start


def shard_bounds(specs: Sequence[InputSpec], shard: tuple[int, int]) -> tuple[int, int]:
    """Row range [first, end) of shard (i, n) over all inputs, counted by reading them once."""
    i, n = shard
    if not 1 <= i <= n:
        raise DataError(f"shard must be I/N with 1 <= I <= N, got {i}/{n}")
    if any(spec.path == STDIN for spec in specs):
        raise DataError("sharding needs input files: standard input cannot be counted and read again")
    total = sum(sum(1 for _ in read_rows(spec)) for spec in specs)
    return total * (i - 1) // n, total * i // n


def parse_shard(text: str) -> tuple[int, int]:
    """'2/8' -> (2, 8)."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise DataError(f"shard must look like I/N (e.g. 2/8), got {text!r}") from None
    if not 1 <= i <= n:
        raise DataError(f"shard must be I/N with 1 <= I <= N, got {text}")
    return i, n


def score_files(
    bundle: Bundle,
    inputs: Sequence[str],
    output: str | Path,
    *,
    output_format: str | None = None,
    input_format: str | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    skip_empty: bool = False,
    progress: Callable[[int], None] | None = None,
    shard: tuple[int, int] | None = None,
) -> ScoreSummary:
    """Score `inputs` into the file `output` ("-": standard output), written atomically.

    `progress`, if given, is called with the number of rows just written, batch by batch.
    """
    output_format = output_format or ("csv" if str(output).lower().endswith(".csv") else "jsonl")
    if output_format not in OUTPUT_FORMATS:
        raise DataError(f"unknown output format {output_format!r}; choose from {', '.join(OUTPUT_FORMATS)}")
    if str(output) != STDIN and Path(output).is_dir():
        raise DataError(f"output {output} is a folder; name a file to write the predictions to")
    specs = resolve_inputs(inputs, input_format, text_column, id_column)
    summary = ScoreSummary()
    records = score_rows(
        bundle, specs, batch_size=batch_size, skip_empty=skip_empty, summary=summary, shard=shard
    )
    with _output_stream(output) as out, contextlib.closing(records):
        write = _writer(out, output_format, bundle.class_names, with_id=id_column is not None)
        written = 0
        for record in records:
            write(record)
            written += 1
            if progress is not None and written % batch_size == 0:
                progress(batch_size)
        if progress is not None and written % batch_size:
            progress(written % batch_size)
    return summary


def _inference_function(bundle: Bundle) -> Callable[[tf.Tensor], tf.Tensor]:
    # One traced graph for every batch size, instead of Keras' per-call overhead of predict().
    model = bundle.model
    return tf.function(
        lambda texts: model(texts, training=False), input_signature=[tf.TensorSpec((None,), tf.string)]
    )


def _batched(
    rows: Iterable[InputRow], size: int, pending: collections.deque[list[InputRow]], failure: list[BaseException]
) -> Iterator[np.ndarray]:
    """Texts for tf.data in batches of `size`, each batch's rows queued in `pending`. An error while reading
    ends the stream and is kept in `failure` for the consumer to raise as it is (tf.data would wrap it)."""
    try:
        for batch in _chunks(rows, size):
            pending.append(list(batch))
            yield np.array([row.text for row in batch], dtype=object)
    except Exception as e:
        failure.append(e)


def _chunks(items: Iterable[InputRow], size: int) -> Iterator[tuple[InputRow, ...]]:
    iterator = iter(items)
    while chunk := tuple(itertools.islice(iterator, size)):
        yield chunk


def _decode(raw: bytes, first: bool = False) -> tuple[str, bool]:
    """UTF-8 text of one line and whether bytes had to be replaced; a byte-order mark on line 1 is dropped."""
    if first and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


@contextlib.contextmanager
def _open_binary(path: str) -> Iterator[io.BufferedIOBase]:
    if path == STDIN:
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as f:
            yield f


def _text_rows(spec: InputSpec, raw: io.BufferedIOBase) -> Iterator[InputRow]:
    for number, line in enumerate(raw, start=1):
        text, replaced = _decode(line.rstrip(b"\r\n"), first=number == 1)
        yield InputRow(spec.path, number, text, None, replaced)


def _jsonl_rows(spec: InputSpec, raw: io.BufferedIOBase) -> Iterator[InputRow]:
    for number, line in enumerate(raw, start=1):
        decoded, replaced = _decode(line, first=number == 1)
        if not decoded.strip():
            yield InputRow(spec.path, number, "", None, replaced)
            continue
        try:
            record = json.loads(decoded)
        except json.JSONDecodeError as e:
            raise DataError(f"{spec.path} line {number}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{spec.path} line {number}: expected a JSON object, got {type(record).__name__}")
        column = find_column(list(record), spec.text_column, "text", f"{spec.path} line {number}")
        text = record.get(column)
        if not isinstance(text, str):
            problem = "has no" if column not in record else f"has a non-text ({type(text).__name__})"
            raise DataError(f"{spec.path} line {number} {problem} {column!r} field")
        text, escaped = _replace_surrogates(text)  # JSON "\ud83d" escapes can encode half a character
        yield InputRow(spec.path, number, text, _id_value(record, spec, number), replaced or escaped)


def _csv_rows(spec: InputSpec, raw: io.BufferedIOBase) -> Iterator[InputRow]:
    # utf-8-sig: spreadsheet programs start "CSV UTF-8" files with a byte-order mark.
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, delimiter=_delimiter(spec))
    try:
        header = next(reader, None)
        if header is None:
            return
        _, text_index, id_index = _csv_columns(header, spec)
        yield from _csv_fields(spec, reader, header, text_index, id_index)
    except csv.Error as e:
        raise DataError(f"{spec.path} row {max(reader.line_num - 1, 1)}: {one_line(e)}") from None


def _csv_fields(
    spec: InputSpec, reader: Iterator[list[str]], header: list[str], text_index: int, id_index: int | None
) -> Iterator[InputRow]:
    needed = max(text_index, -1 if id_index is None else id_index)
    for number, fields in enumerate(reader, start=1):
        if not fields:
            yield InputRow(spec.path, number, "")  # a blank line
            continue
        if len(fields) <= needed:
            raise DataError(f"{spec.path} row {number} has {len(fields)} fields and no {header[needed]!r} column")
        value, replaced = _unescape(fields[text_index])
        row_id = _unescape(fields[id_index])[0] if id_index is not None else None
        yield InputRow(spec.path, number, value, row_id, replaced)


def _csv_columns(header: list[str], spec: InputSpec) -> tuple[str, int, int | None]:
    """The text column's name and index, and the id column's index, checked against the header."""
    column = find_column(header, spec.text_column, "text", spec.path)
    if spec.id_column is not None and spec.id_column not in header:
        raise DataError(f"{spec.path} has no id column {spec.id_column!r} (columns: {', '.join(header)})")
    id_index = header.index(spec.id_column) if spec.id_column is not None else None
    return column, header.index(column), id_index


def _delimiter(spec: InputSpec) -> str:
    return "\t" if spec.format == "tsv" else ","


def _unescape(field: str) -> tuple[str, bool]:
    # surrogateescape keeps undecodable bytes as lone surrogates; turn them into U+FFFD, and say so.
    try:
        field.encode("utf-8")
        return field, False
    except UnicodeEncodeError:
        return field.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace"), True


def _replace_surrogates(text: str) -> tuple[str, bool]:
    try:
        text.encode("utf-8")
        return text, False
    except UnicodeEncodeError:
        return text.encode("utf-16", errors="surrogatepass").decode("utf-16", errors="replace"), True


def _csv_text_column(spec: InputSpec) -> str:
    with open(spec.path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
        header = next(csv.reader(text, delimiter=_delimiter(spec)), None)
    if header is None:
        raise DataError(f"{spec.path} is empty: a CSV/TSV input needs a header row")
    return _csv_columns(header, spec)[0]


def _id_value(record: dict, spec: InputSpec, number: int) -> str | None:
    if spec.id_column is None:
        return None
    if spec.id_column not in record:
        raise DataError(f"{spec.path} line {number} has no {spec.id_column!r} field")
    return str(record[spec.id_column])


def _writer(out: TextIO, output_format: str, class_names: Sequence[str], with_id: bool) -> Callable[[dict], None]:
    if output_format == "jsonl":
        return lambda record: out.write(json.dumps(record, ensure_ascii=False) + "\n")
    columns = ["source", "row"] + (["id"] if with_id else []) + ["label"]
    columns += [f"p_{name}" for name in class_names] + ["empty", "replaced_bytes"]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)

    def write(record: dict) -> None:
        probabilities = record["probabilities"] or {}
        writer.writerow(
            [record["source"], record["row"]]
            + ([record["id"]] if with_id else [])
            + [record["label"] or ""]
            + [probabilities.get(name, "") for name in class_names]
            + [int(record["empty"]), int(record["replaced_bytes"])]
        )

    return write


@contextlib.contextmanager
def _output_stream(output: str | Path) -> Iterator[TextIO]:
    """Standard output for "-", else a file that appears only when complete."""
    if str(output) == STDIN:
        yield sys.stdout
        sys.stdout.flush()
    else:
        with atomic_file(output) as f:
            yield f
