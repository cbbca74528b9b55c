"""Score files with a bundle: rows in (inputs.py), predictions out, in input order, with constant memory.

Rows are read in windows of a few batches. The model scores a window in batches of texts of similar length
(each only as wide as its longest text) in a thread of its own, while the next window is read and the previous
one's lines are written in input order. Messy input is counted, never dropped silently: rows with replaced
bytes are flagged; empty rows are kept without a prediction, or skipped and counted.

Turning input rows into model input (`inputs.read_rows`) and rows with their probabilities into output text
(`output_formatter`) are separate functions, so another driver of the scorer (beam.py) reuses both. The text is
formatted a window at a time, straight from the rows and the probability array: building a record per row and
encoding it would cost the main thread as much as the model's own work on short texts.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import csv
import dataclasses
import gc
import io
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO

import numpy as np

from textpipe.atomic import atomic_file
from textpipe.bundle import Bundle, predict_by_length
from textpipe.errors import DataError
from textpipe.inputs import SHARD_NEEDS_FILES, STDIN, InputRow, InputSpec, checked_shard, read_rows, resolve_inputs
from textpipe.paths import check_output_file, is_null_device

OUTPUT_FORMATS = ("jsonl", "csv")
DEFAULT_BATCH = 512
# Rows are read in windows of this many batches and batched by length within each window: the model's cost
# follows the texts' real lengths, and memory stays bounded by one window. The wider the window, the closer
# the texts of a batch are in length: 32 batches score about 11% more SST-2 sentences per second than 8 do, on a
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
    for row, probs, label in zip(rows, *_as_lists(probabilities)):
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
    """Output records (`output_records`) for every row of `specs`, in input order, predicted batch by batch.

    Pass a ScoreSummary to have it filled in as rows go by (empty rows skipped with `skip_empty` are
    counted in it too). `shard=(i, n)` scores only the i-th (1-based) of n contiguous, disjoint parts of
    the rows, so that the n parts' outputs, concatenated in order, are the whole output.
    """
    for rows, probabilities in scored_windows(bundle, specs, batch_size, skip_empty, summary, shard):
        yield from output_records(rows, probabilities, bundle.class_names)


def scored_windows(
    bundle: Bundle,
    specs: Sequence[InputSpec],
    batch_size: int = DEFAULT_BATCH,
    skip_empty: bool = False,
    summary: ScoreSummary | None = None,
    shard: tuple[int, int] | None = None,
) -> Iterator[tuple[list[InputRow], np.ndarray]]:
    """The rows of `specs` in input order, LENGTH_WINDOW batches (at most WINDOW_CHARS characters) at a time,
    each window with its class probabilities (one row each; an empty row's are meaningless), scored in batches
    of texts of similar length. The arguments are score_rows'."""
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, got {batch_size}")
    summary = summary if summary is not None else ScoreSummary()
    start = time.perf_counter()
    first, end = shard_bounds(specs, shard) if shard is not None else (0, None)

    def all_rows() -> Iterator[InputRow]:
        for spec in specs:
            yield from read_rows(spec)

    n_classes = len(bundle.class_names)

    def scored(rows: list[InputRow], probabilities: concurrent.futures.Future) -> tuple[list[InputRow], np.ndarray]:
        result = probabilities.result()
        summary.scored += sum(not row.empty for row in rows)
        summary.seconds = time.perf_counter() - start
        return rows, result

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
    # the one before: TensorFlow releases the GIL while it computes, so reading, the model and formatting
    # overlap. At most two windows are in flight, so memory stays bounded.
    # Stopped early (an error, Ctrl-C), the window not yet started is dropped, not scored first.
    model = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="textpipe-score")
    try:
        in_flight: collections.deque = collections.deque()
        for rows in _windows(counted_rows(), batch_size * LENGTH_WINDOW, WINDOW_CHARS):
            texts = np.array([row.text for row in rows], dtype=object)
            in_flight.append((rows, model.submit(predict_by_length, bundle.infer, texts, batch_size, n_classes)))
            if len(in_flight) == 2:
                yield scored(*in_flight.popleft())
        while in_flight:
            yield scored(*in_flight.popleft())
    finally:
        model.shutdown(cancel_futures=True)
    summary.seconds = time.perf_counter() - start


@contextlib.contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """Keep the objects that exist on entry out of the garbage collector's full passes until exit.

    Scoring makes a few objects per row, enough to set off a full pass now and then, and each pass walks every
    object in the process: with TensorFlow and a model loaded, several hundred thousand, about 0.2 s a pass,
    during which no thread runs Python. Frozen objects are collected as usual once unfrozen. Process-wide, so
    score_files holds it only while it writes; a program that froze objects before is left to its own choice.
    """
    if gc.get_freeze_count():
        yield
        return
    try:
        gc.freeze()
        yield
    finally:
        gc.unfreeze()


def shard_bounds(specs: Sequence[InputSpec], shard: tuple[int, int]) -> tuple[int, int]:
    """Row range [first, end) of shard (i, n) over all inputs, counted by reading them once."""
    i, n = checked_shard(*shard)
    if any(spec.path == STDIN for spec in specs):
        raise DataError(SHARD_NEEDS_FILES)
    total = sum(sum(1 for _ in read_rows(spec)) for spec in specs)
    return total * (i - 1) // n, total * i // n


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
    windows = scored_windows(bundle, specs, batch_size, skip_empty, summary, shard)
    header, text = output_formatter(output_format, bundle.class_names, with_id=id_column is not None)
    with _output_stream(output) as out, contextlib.closing(windows), _older_objects_frozen():
        if header is not None:
            out.write(header)
        for rows, probabilities in windows:
            for start in range(0, len(rows), batch_size):  # written, and reported, batch by batch
                batch = rows[start : start + batch_size]
                out.write(text(batch, probabilities[start : start + batch_size]))
                if progress is not None:
                    progress(len(batch))
    return summary


def output_format_for(output: str | Path, output_format: str | None = None) -> str:
    """The output format asked for, else the one `output`'s extension names (.csv), else jsonl."""
    output_format = output_format or ("csv" if str(output).lower().endswith(".csv") else "jsonl")
    if output_format not in OUTPUT_FORMATS:
        raise DataError(f"unknown output format {output_format!r}; choose from {', '.join(OUTPUT_FORMATS)}")
    return output_format


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


def output_formatter(
    output_format: str, class_names: Sequence[str], with_id: bool
) -> tuple[str | None, Callable[[Sequence[InputRow], np.ndarray], str]]:
    """The header (CSV only, else None) and a function from rows and their class probabilities to the output
    text of those rows, each line ending in a newline; every driver of the scorer writes the same text.

    A JSON line is `output_records`' record as json.dumps(record, ensure_ascii=False) writes it; a CSV row holds
    the same fields, with empty cells where a record has null or no id.
    """
    class_names = tuple(class_names)
    if output_format == "jsonl":
        return None, _jsonl_formatter(class_names)
    columns = ["source", "row"] + (["id"] if with_id else []) + ["label"]
    columns += [f"p_{name}" for name in class_names] + ["empty", "replaced_bytes"]
    no_probabilities = [""] * len(class_names)

    def fields(row: InputRow, probabilities: list[float], label: int) -> list:
        empty = row.empty
        return (
            [row.source, row.row]
            + ([row.id if row.id is not None else ""] if with_id else [])
            + (["", *no_probabilities] if empty else [class_names[label], *probabilities])
            + [int(empty), int(row.replaced)]
        )

    def text(rows: Sequence[InputRow], probabilities: np.ndarray) -> str:
        buffer = io.StringIO()
        # csv quotes fields that hold commas, quotes or line breaks; floats are written as repr writes them.
        csv.writer(buffer, lineterminator="\n").writerows(map(fields, rows, *_as_lists(probabilities)))
        return buffer.getvalue()

    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(columns)
    return header.getvalue(), text


def _jsonl_formatter(class_names: tuple[str, ...]) -> Callable[[Sequence[InputRow], np.ndarray], str]:
    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    labels = [dumps(name) for name in class_names]
    # One %-template per line: the JSON text of each class name is fixed, its probability is repr of a float, as
    # in json.dumps. A "%" in a class name is escaped for the template.
    pairs = ", ".join(f"{dumps(name).replace('%', '%%')}: %r" for name in class_names)
    scored = '%s, "label": %s, "probabilities": {' + pairs + '}, "empty": false, "replaced_bytes": %s}\n'
    sources: dict[str, str] = {}

    def start(row: InputRow) -> str:
        source = sources.get(row.source)
        if source is None:
            source = sources[row.source] = f'{{"source": {dumps(row.source)}, "row": '
        return f"{source}{row.row}" + ("" if row.id is None else f', "id": {dumps(row.id)}')

    def line(row: InputRow, probabilities: list[float], label: int) -> str:
        flag = "true" if row.replaced else "false"
        if row.empty:
            return f'{start(row)}, "label": null, "probabilities": null, "empty": true, "replaced_bytes": {flag}}}\n'
        return scored % (start(row), labels[label], *probabilities, flag)

    def text(rows: Sequence[InputRow], probabilities: np.ndarray) -> str:
        if not np.isfinite(probabilities).all():  # json.dumps spells these NaN and Infinity, repr nan and inf
            return "".join(dumps(record) + "\n" for record in output_records(rows, probabilities, class_names))
        return "".join(map(line, rows, *_as_lists(probabilities)))

    return text


def _as_lists(probabilities: np.ndarray) -> tuple[list[list[float]], list[int]]:
    """Each row's probabilities as Python floats and its most likely class: one conversion for the whole array,
    where per-row NumPy calls would cost more than the model does on short texts."""
    return probabilities.tolist(), np.argmax(probabilities, axis=1).tolist()


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
