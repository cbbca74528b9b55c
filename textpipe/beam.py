"""Score files on Apache Beam: the local scorer's rows, model and records, spread over a runner's workers.

    inputs, resolved and checked here before the pipeline starts (inputs.resolve_inputs)
      -> Create, one element per file -> ReadRows: inputs.read_rows, the local scorer's parser
      -> Reshuffle: the rows spread over the workers even when they all come from one file
      -> RunInference(BundleModelHandler): BatchElements, then each batch's class probabilities from the model
         run on texts of similar length together (bundle.predict_by_length)
      -> each row's line from scoring.output_formatter -> WriteToText: OUT-00000-of-0000N.jsonl (or .csv, a header
         per shard)

The output is unordered, but every record carries its source and row number, so sorted by them it is the
local scorer's output. Needs the optional extra: pip install 'textpipe[beam]'.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from textpipe.errors import ConfigError, DataError

try:
    import apache_beam as beam
    from apache_beam.metrics import Metrics
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.ml.inference.base import ModelHandler, RunInference
    from apache_beam.options.pipeline_options import PipelineOptions
except ImportError:  # the base install scores in-process only
    raise ConfigError("scoring on a Beam runner needs Apache Beam: pip install 'textpipe[beam]'") from None

import numpy as np

from textpipe.quiet import imported_silently_in_workers, quiet_workers

with imported_silently_in_workers():  # Beam's worker processes import textpipe, and with it TensorFlow, here
    from textpipe.bundle import load_bundle, predict_by_length
from textpipe.inputs import STDIN, InputRow, InputSpec, read_rows, resolve_inputs
from textpipe.paths import check_outside_bundle
from textpipe.scoring import (
    DEFAULT_BATCH,
    ScoreSummary,
    LENGTH_WINDOW,
    output_format_for,
    output_formatter,
)

NAMESPACE = "textpipe"  # Beam metrics namespace of the counters below (ScoreSummary's field names)
COUNTERS = ("rows_read", "scored", "empty", "replaced")


@dataclasses.dataclass
class BeamScoreSummary(ScoreSummary):
    files: list[str] = dataclasses.field(default_factory=list)  # the output shards, where they can be listed


@dataclasses.dataclass
class LoadedBundle:
    infer: Callable[[Any], Any]
    class_names: tuple[str, ...]


class BundleModelHandler(ModelHandler[InputRow, tuple[InputRow, np.ndarray], LoadedBundle]):
    """RunInference's view of a bundle: loaded once per worker process; a batch of InputRow in, each row with its
    class probabilities out.

    BatchElements makes batches of `min_batch_size` to `max_batch_size` rows, growing them while larger
    batches are faster; give both the same value for fixed batches. Each is scored in model calls of at most
    `model_batch_size` texts of similar length (default: `max_batch_size`).
    """

    def __init__(
        self,
        bundle_path: str | Path,
        *,
        min_batch_size: int = 1,
        max_batch_size: int = DEFAULT_BATCH,
        model_batch_size: int | None = None,
    ):
        if not 1 <= min_batch_size <= max_batch_size:
            raise DataError(f"batch sizes must satisfy 1 <= min <= max, got {min_batch_size} and {max_batch_size}")
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self._bundle_path = str(bundle_path)
        self._model_batch_size = model_batch_size or max_batch_size

    def load_model(self) -> LoadedBundle:
        bundle = load_bundle(self._bundle_path)
        return LoadedBundle(bundle.infer, bundle.class_names)

    def run_inference(
        self, batch: Sequence[InputRow], model: LoadedBundle, inference_args: dict | None = None
    ) -> list[tuple[InputRow, np.ndarray]]:
        texts = np.array([row.text for row in batch], dtype=object)
        probabilities = predict_by_length(model.infer, texts, self._model_batch_size, len(model.class_names))
        return list(zip(batch, probabilities))

    def get_num_bytes(self, batch: Sequence[InputRow]) -> int:
        return sum(len(row.text) for row in batch)  # the default pickles the whole batch just to measure it


class ReadRows(beam.DoFn):
    """The rows of one input file, parsed exactly as the local scorer parses them, and counted."""

    def __init__(self, skip_empty: bool):
        self._skip_empty = skip_empty
        self._counters = {name: Metrics.counter(NAMESPACE, name) for name in ("rows_read", "empty", "replaced")}

    def process(self, spec: InputSpec) -> Iterator[InputRow]:
        counts = dict.fromkeys(self._counters, 0)
        try:
            for row in read_rows(spec):
                counts["rows_read"] += 1
                counts["replaced"] += row.replaced
                if row.empty:
                    counts["empty"] += 1
                    if self._skip_empty:
                        continue
                yield row
        finally:  # one update per file: a counter update per row would cost more than reading the row
            for name, count in counts.items():
                self._counters[name].inc(count)


class FormatRows(beam.DoFn):
    """Scored rows as the local scorer's output lines; counts the scored ones."""

    def __init__(self, output_format: str, class_names: Sequence[str], with_id: bool):
        self._format = (output_format, tuple(class_names), with_id)
        self._scored = Metrics.counter(NAMESPACE, "scored")

    def setup(self) -> None:
        self._text = output_formatter(*self._format)[1]

    def process(self, scored: tuple[InputRow, np.ndarray]) -> Iterator[str]:
        row, probabilities = scored
        if not row.empty:
            self._scored.inc()
        yield self._text([row], probabilities[np.newaxis])[:-1]  # WriteToText ends each line


def score_files_beam(
    bundle_path: str | Path,
    inputs: Sequence[str],
    output: str,
    pipeline_args: Sequence[str] = ("--runner", "DirectRunner"),
    *,
    output_format: str | None = None,
    input_format: str | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    encoding: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    min_batch_size: int | None = None,
    skip_empty: bool = False,
) -> BeamScoreSummary:
    """Score `inputs` (files or glob patterns) on the Beam runner `pipeline_args` name, writing `output`'s
    shards (predictions.jsonl -> predictions-00000-of-0000N.jsonl); returns the counts from Beam's metrics.

    `pipeline_args` are Beam's own options (e.g. ["--runner", "DataflowRunner", "--project", "P", ...]).
    The bundle and every input are checked before the pipeline starts. Beam batches hold `min_batch_size`
    (default: `batch_size`) to LENGTH_WINDOW times `batch_size` rows, each scored in model calls of at most
    `batch_size` texts of similar length, as the local scorer does.
    """
    output_format = output_format_for(output, output_format)
    prefix, suffix = shard_names(output, output_format)
    specs = resolve_inputs(inputs, input_format, text_column, id_column, encoding,
                           stdin_refused="a pipeline cannot read standard input; give input files or glob patterns")
    if "://" not in output:
        check_outside_bundle(output, bundle_path)
    # Resolve a link (retraining promotes by switching one) once, here: every worker loads the same version.
    bundle_path = Path(bundle_path).resolve()
    class_names = load_bundle(bundle_path).class_names
    handler = BundleModelHandler(
        bundle_path,
        min_batch_size=min(min_batch_size or batch_size, batch_size),
        max_batch_size=batch_size * LENGTH_WINDOW,
        model_batch_size=batch_size,
    )
    header, _ = output_formatter(output_format, class_names, id_column is not None)
    header = None if header is None else header[:-1]  # WriteToText ends the header line, as every other line

    started, start = time.time(), time.perf_counter()
    pipeline = beam.Pipeline(options=PipelineOptions([*pipeline_args, *worker_log_args(pipeline_args)]))
    _ = (
        pipeline
        | "Inputs" >> beam.Create(specs)
        | "ReadRows" >> beam.ParDo(ReadRows(skip_empty))
        | "Spread" >> beam.Reshuffle()
        | "Score" >> RunInference(handler)
        | "Format" >> beam.ParDo(FormatRows(output_format, class_names, id_column is not None))
        | "Write" >> beam.io.WriteToText(prefix, file_name_suffix=suffix, header=header)
    )
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except Exception as e:
        raise _textpipe_error(e) or e
    summary = BeamScoreSummary(seconds=time.perf_counter() - start, files=_written(prefix, suffix, started))
    for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        setattr(summary, counter.key.metric.name, getattr(summary, counter.key.metric.name) + (value or 0))
    return summary


def worker_log_args(pipeline_args: Sequence[str]) -> list[str]:
    """Beam options that keep the DirectRunner's worker processes, which write to this terminal, to errors while
    the command line hides the libraries' logs (quiet.quiet_workers). None on other runners (their workers log
    where the runner keeps logs), with `--verbose`, or when `pipeline_args` set the workers' log level."""
    options = PipelineOptions(list(pipeline_args)).get_all_options()
    runner = str(options.get("runner") or "DirectRunner").rsplit(".", 1)[-1]  # Beam's default runner
    if not quiet_workers() or runner.lower() not in ("directrunner", "direct"):
        return []
    return [] if options.get("default_sdk_harness_log_level") is not None else ["--default_sdk_harness_log_level=ERROR"]


def shard_names(output: str, output_format: str) -> tuple[str, str]:
    """predictions.jsonl -> ("predictions", ".jsonl"); an output without a suffix gets the format's."""
    if output == STDIN:
        raise DataError("a pipeline writes sharded files, not standard output; name a file for --output")
    if Path(output).is_dir():
        raise DataError(f"output {output} is a folder; name a file to write the predictions to")
    suffix = os.path.splitext(output)[1] or f".{output_format}"
    return (output[: -len(suffix)] if output.endswith(suffix) else output), suffix


def _written(prefix: str, suffix: str, since: float) -> list[str]:
    if "://" in prefix:  # a remote filesystem: the runner's own tools list it
        return []
    shards = glob.glob(f"{glob.escape(prefix)}-*-of-*{glob.escape(suffix)}")
    return sorted(p for p in shards if os.path.getmtime(p) >= since - 1)  # not an earlier run's shards


def _textpipe_error(error: Exception) -> Exception | None:
    """A worker's DataError or BundleError, which runners hand back inside their own exception's text, as the
    one-line error it was; None for anything else."""
    from textpipe import errors

    found = re.search(r"textpipe\.errors\.(DataError|BundleError|ConfigError): ([^\n]+)", str(error))
    return getattr(errors, found.group(1))(found.group(2).strip()) if found else None
