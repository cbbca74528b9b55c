"""Score files with a bundle: rows in (inputs.py), predictions out, in input order, with constant memory.

Rows are read in windows of a few batches. The model scores a window in batches of texts of similar length
(each only as wide as its longest text) in a thread of its own, while the next window is read and the previous
one's records are written in input order. Messy input is counted, never dropped silently: rows with replaced
bytes are flagged; empty rows are kept without a prediction, or skipped and counted.

Turning input rows into model input (`inputs.read_rows`), model output into output records (`batch_records`)
and records into output lines (`record_formatter`) are separate functions, so another driver of the scorer
(beam.py) reuses all three.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import csv
import dataclasses
import io
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO

import numpy as np
import tensorflow as tf

from textpipe.atomic import atomic_file
from textpipe.bundle import Bundle, predict_by_length
from textpipe.errors import DataError
from textpipe.inputs import STDIN, InputRow, InputSpec, read_rows, resolve_inputs
from textpipe.paths import check_output_file, is_null_device

OUTPUT_FORMATS = ("jsonl", "csv")
DEFAULT_BATCH = 512
# Rows are read in windows of this many batches and batched by length within each window: the model's cost
# follows the texts' real lengths, and memory stays bounded by one window. The wider the window, the closer
# the texts of a batch are in length: 32 batches score 7% more SST-2 sentences per second than 8 did, on a
# file of 200,000 (BENCHMARKS.md, 2026-12-05).
LENGTH_WINDOW = 32
# ... and at most this many characters of text, so that a window of long documents stays a few MB.
WINDOW_CHARS = 4_000_000


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


def output_records(rows: Sequence[InputRow], probabilities: np.ndarray, class_names: Sequence[str]) -> Iterator[dict]:
    """One output record per input row; empty rows get no label or probabilities."""
    # Whole-array argmax and one conversion to Python floats: per-row NumPy calls would cost more than the
    # model does on short texts.
    labels = np.argmax(probabilities, axis=1).tolist()
    for row, probs, label in zip(rows, probabilities.tolist(), labels):
        record: dict[str, Any] = {"source": row.source, "row": row.row}
        if row.id is not None:
            record["id"] = row.id
        empty = row.empty
        if empty:
            record["label"] = None
            record["probabilities"] = None
        else:
            record["label"] = class_names[label]
            record["probabilities"] = dict(zip(class_names, probs))
        record["empty"] = empty
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

    Rows are read LENGTH_WINDOW batches (at most WINDOW_CHARS characters) at a time; each window is scored in
    batches of texts of similar length and its records come out in input order.

    Pass a ScoreSummary to have it filled in as rows go by (empty rows skipped with `skip_empty` are
    counted in it too). `shard=(i, n)` scores only the i-th (1-based) of n contiguous, disjoint parts of
    the rows, so that the n parts' outputs, concatenated in order, are the whole output.
    """
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, got {batch_size}")
    summary = summary if summary is not None else ScoreSummary()
    start = time.perf_counter()
    first, end = shard_bounds(specs, shard) if shard is not None else (0, None)

    def all_rows() -> Iterator[InputRow]:
        for spec in specs:
            yield from read_rows(spec)

    n_classes = len(bundle.class_names)

    def records(rows: Sequence[InputRow], probabilities: concurrent.futures.Future) -> Iterator[dict]:
        batch = list(output_records(rows, probabilities.result(), bundle.class_names))
        summary.scored += sum(not r["empty"] for r in batch)
        summary.seconds = time.perf_counter() - start
        yield from batch

    def counted_rows() -> Iterator[InputRow]:
        for row in itertools.islice(all_rows(), first, end):
            summary.rows_read += 1
            summary.replaced += row.replaced
            if row.empty:
                summary.empty += 1
                if skip_empty:
                    continue
            yield row

    # The model scores one window in a thread of its own while this thread reads the next window and writes
    # the records of the one before: TensorFlow releases the GIL while it computes, so reading, the model and
    # formatting overlap. At most two windows are in flight, so memory stays bounded.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="textpipe-score") as model:
        in_flight: collections.deque = collections.deque()
        for rows in _windows(counted_rows(), batch_size * LENGTH_WINDOW, WINDOW_CHARS):
            texts = np.array([row.text for row in rows], dtype=object)
            in_flight.append((rows, model.submit(predict_by_length, bundle.infer, texts, batch_size, n_classes)))
            if len(in_flight) == 2:
                yield from records(*in_flight.popleft())
        while in_flight:
            yield from records(*in_flight.popleft())
    summary.seconds = time.perf_counter() - start


def shard_bounds(specs: Sequence[InputSpec], shard: tuple[int, int]) -> tuple[int, int]:
    """Row range [first, end) of shard (i, n) over all inputs, counted by reading them once."""
    i, n = _checked_shard(*shard)
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
    return _checked_shard(i, n)


def _checked_shard(i: int, n: int) -> tuple[int, int]:
    if not 1 <= i <= n:
        raise DataError(f"shard must be I/N with 1 <= I <= N, got {i}/{n}")
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
    encoding: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    skip_empty: bool = False,
    progress: Callable[[int], None] | None = None,
    shard: tuple[int, int] | None = None,
) -> ScoreSummary:
    """Score `inputs` (UTF-8, or the text `encoding` named) into the file `output` ("-": standard output),
    written atomically.

    `progress`, if given, is called with the number of rows just written, batch by batch.
    """
    output_format = output_format_for(output, output_format)
    specs = resolve_inputs(inputs, input_format, text_column, id_column, encoding)
    check_output_file(output, [spec.path for spec in specs if spec.path != STDIN])
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


def output_format_for(output: str | Path, output_format: str | None = None) -> str:
    """The output format asked for, else the one `output`'s extension names (.csv), else jsonl."""
    output_format = output_format or ("csv" if str(output).lower().endswith(".csv") else "jsonl")
    if output_format not in OUTPUT_FORMATS:
        raise DataError(f"unknown output format {output_format!r}; choose from {', '.join(OUTPUT_FORMATS)}")
    return output_format


def batch_records(
    infer: Callable[[Any], tf.Tensor],
    texts: np.ndarray,
    rows: Sequence[InputRow],
    class_names: Sequence[str],
    batch_size: int,
) -> list[dict]:
    """Records for `rows`, in their order, from the model (`Bundle.infer`) run on their texts (an object array
    of str or bytes) in batches of at most `batch_size` texts of similar length."""
    return list(output_records(rows, predict_by_length(infer, texts, batch_size, len(class_names)), class_names))


def _windows(rows: Iterable[InputRow], size: int, chars: int) -> Iterator[list[InputRow]]:
    """`rows` in consecutive windows of `size` rows, or fewer where their texts reach `chars` characters."""
    window: list[InputRow] = []
    held = 0
    for row in rows:
        window.append(row)
        held += len(row.text)
        if len(window) == size or held >= chars:
            yield window
            window, held = [], 0
    if window:
        yield window


def _writer(out: TextIO, output_format: str, class_names: Sequence[str], with_id: bool) -> Callable[[dict], None]:
    header, line = record_formatter(output_format, class_names, with_id)
    if header is not None:
        out.write(header + "\n")
    return lambda record: out.write(line(record) + "\n")


def record_formatter(
    output_format: str, class_names: Sequence[str], with_id: bool
) -> tuple[str | None, Callable[[dict], str]]:
    """The header line (CSV only, else None) and a function from a record to its output line, without the
    newline: every driver of the scorer writes the same text."""
    if output_format == "jsonl":
        return None, lambda record: json.dumps(record, ensure_ascii=False)
    columns = ["source", "row"] + (["id"] if with_id else []) + ["label"]
    columns += [f"p_{name}" for name in class_names] + ["empty", "replaced_bytes"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def csv_line(fields: list) -> str:
        # csv quotes fields that hold commas, quotes or newlines; let it, then drop its line terminator.
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(fields)
        return buffer.getvalue()[:-1]

    def line(record: dict) -> str:
        probabilities = record["probabilities"] or {}
        return csv_line(
            [record["source"], record["row"]]
            + ([record["id"]] if with_id else [])
            + [record["label"] or ""]
            + [probabilities.get(name, "") for name in class_names]
            + [int(record["empty"]), int(record["replaced_bytes"])]
        )

    return csv_line(columns), line


@contextlib.contextmanager
def _output_stream(output: str | Path) -> Iterator[TextIO]:
    """Standard output for "-", the null device as it is, else a file that appears only when complete."""
    if str(output) == STDIN:
        yield sys.stdout
        sys.stdout.flush()
    elif is_null_device(output):
        with open(os.devnull, "w", encoding="utf-8") as f:
            yield f
    else:
        with atomic_file(output) as f:
            yield f
