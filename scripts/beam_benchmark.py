"""Throughput of `textpipe score --runner DirectRunner` against in-process scoring of the same file.

    python scripts/beam_benchmark.py BUNDLE [--lines 200000] [--repeats 3]

writes a file of SST-2 sentences (../shared/data/sst2/train.parquet beside the checkout, repeated to
--lines; without it, textpipe's sample reviews), then times, on that one file, each of:
  local     textpipe.scoring.score_files (loading the bundle included)
  beam_1    the Beam path on DirectRunner, one worker in this process (in_memory)
  beam_2    the Beam path on DirectRunner, two worker processes (multi_processing)
and prints the medians as JSON. Every timing is end to end: the Beam ones include building the pipeline and
each worker loading the bundle, which is what a user waits for. `bench_beam` is the function to call from
other scripts.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

SST2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2" / "train.parquet"
SAMPLE = Path(__file__).resolve().parents[1] / "textpipe" / "sample_data" / "train.csv"
BEAM_MODES = {
    "beam_1": ["--direct_num_workers", "1", "--direct_running_mode", "in_memory"],
    "beam_2": ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
}


def bench_beam(bundle_path: str | Path, lines_path: str | Path, tmp_dir: str | Path, repeats: int = 3) -> dict:
    """Rows/s of local scoring and of the Beam path with 1 and 2 DirectRunner workers on `lines_path` (one
    text per line), medians of `repeats` runs each, and their ratios."""
    from textpipe.beam import score_files_beam
    from textpipe.bundle import load_bundle
    from textpipe.scoring import score_files

    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)

    def local() -> int:
        return score_files(load_bundle(bundle_path), [str(lines_path)], tmp_dir / "local.jsonl").rows_read

    def on_beam(mode: str) -> int:
        for old in tmp_dir.glob(f"{mode}-*"):
            old.unlink()
        args = ["--runner", "DirectRunner", *BEAM_MODES[mode]]
        return score_files_beam(bundle_path, [str(lines_path)], str(tmp_dir / f"{mode}.jsonl"), args).rows_read

    runs = {"local": local, **{mode: (lambda mode=mode: on_beam(mode)) for mode in BEAM_MODES}}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    rows: dict[str, int] = {}
    for _ in range(repeats):  # interleaved, so a slow spell of the machine hits every variant alike
        for name, run in runs.items():
            start = time.perf_counter()
            rows[name] = run()
            seconds[name].append(time.perf_counter() - start)
    if len(set(rows.values())) != 1:
        raise RuntimeError(f"the variants read different numbers of rows: {rows}")
    n = rows["local"]
    result: dict = {"rows": n, "repeats": repeats}
    for name, times in seconds.items():
        result[f"{name}_seconds"] = round(statistics.median(times), 2)
        result[f"{name}_rows_per_s"] = round(n / statistics.median(times))
    result["beam_1_vs_local"] = round(result["beam_1_rows_per_s"] / result["local_rows_per_s"], 3)
    result["beam_2_vs_local"] = round(result["beam_2_rows_per_s"] / result["local_rows_per_s"], 3)
    result["beam_2_vs_beam_1"] = round(result["beam_2_rows_per_s"] / result["beam_1_rows_per_s"], 3)
    return result


def write_sentences(path: Path, count: int) -> str:
    """`count` lines of SST-2 train sentences (repeated as needed), else of the sample reviews; says which."""
    if SST2.is_file():
        import pyarrow.parquet as pq

        texts, source = pq.read_table(SST2, columns=["text"]).column("text").to_pylist(), "sst2 train"
    else:
        with SAMPLE.open(encoding="utf-8", newline="") as f:
            texts, source = [row["text"] for row in csv.DictReader(f)], "textpipe sample reviews"
    with path.open("w", encoding="utf-8") as f:
        for text in itertools.islice(itertools.cycle(texts), count):
            f.write(" ".join(text.split()) + "\n")
    return source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="model bundle folder (this script trains nothing)")
    parser.add_argument("--lines", type=int, default=200_000, help="lines in the input file (default: 200000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant; medians are reported")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="textpipe-beam-bench-") as tmp:
        lines = Path(tmp) / "sentences.txt"
        source = write_sentences(lines, args.lines)
        result = {"bundle": args.bundle, "input": source, **bench_beam(args.bundle, lines, Path(tmp) / "out", args.repeats)}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
