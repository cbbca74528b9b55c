"""Measure textpipe's throughput against in-memory baselines, in one run, and write BENCHMARKS.md/.json.

    python scripts/benchmark.py            # full sizes (200k and 2M lines for scoring): tens of minutes on 2 cores
    python scripts/benchmark.py --quick    # small sizes, a few minutes: checks the script still works

Every ratio compares two things measured in the same process, interleaved, as the median of --repeats runs.
Texts come from ../shared/data/sst2 when present, else from the review set shipped with textpipe.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_SST2 = ROOT.parent / "shared" / "data" / "sst2"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: minutes, not tens of minutes")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"), help="Markdown report (JSON beside it)")
    args = parser.parse_args()

    sizes = {"score_lines": 20_000, "score_big_lines": 100_000, "train_rows": 4_000} if args.quick else {
        "score_lines": 200_000, "score_big_lines": 2_000_000, "train_rows": 20_000}

    from textpipe.config import Config
    from textpipe.data import load_labeled_data

    source = SHARED_SST2 if SHARED_SST2.is_dir() else None
    data = load_labeled_data(source)
    texts = data.train.texts
    results: dict = {
        "machine": machine(),
        "command": "python scripts/benchmark.py" + (" --quick" if args.quick else ""),
        "date": datetime.date.today().isoformat(),
        "texts": "SST-2 train sentences" if source else "textpipe's sample reviews",
        "repeats": args.repeats,
    }

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bundle_path = tmp / "bundle"
        config = Config(epochs=1, seed=0)
        results["training"] = bench_training(config, data, sizes["train_rows"], args.repeats)
        results["vectorizer"] = bench_vectorizer(config, texts, args.repeats)

        from textpipe.bundle import save_bundle
        from textpipe.training import train

        small = subset(data, sizes["train_rows"])
        save_bundle(train(config, small), bundle_path)
        results["scoring"] = bench_scoring(bundle_path, texts, sizes, tmp, args.repeats)

    write_reports(results, Path(args.output))
    print(f"wrote {args.output} and {Path(args.output).with_suffix('.json')}")
    return 0


def machine() -> dict:
    import tensorflow as tf

    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "gpu": bool(tf.config.list_physical_devices("GPU")),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }


def subset(data, n):
    import dataclasses

    from textpipe.data import Split

    index = np.random.default_rng(0).permutation(len(data.train))[:n]
    return dataclasses.replace(data, train=Split(data.train.texts[index], data.train.labels[index]))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_training(config, data, rows, repeats) -> dict:
    """One epoch of the lstm fitted from the tf.data pipeline vs from in-memory numpy id arrays."""
    import keras

    from textpipe.models import build_model
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer, make_dataset, vectorize

    small = subset(data, rows).train
    rows = len(small)  # fewer when the data has fewer
    vectorizer = build_vectorizer(config.vocab_size, config.sequence_length)
    adapt_vectorizer(vectorizer, small.texts)
    ids = vectorize(vectorizer, small.texts)
    pipeline, arrays = [], []
    for _ in range(repeats):
        keras.utils.set_random_seed(0)
        model = build_model(config, 2)
        dataset = make_dataset(vectorizer, small, config.batch_size, shuffle=True, seed=0)
        pipeline.append(timed(lambda: model.fit(dataset, epochs=1, verbose=0, shuffle=False)))
        keras.utils.set_random_seed(0)
        model = build_model(config, 2)
        arrays.append(timed(lambda: model.fit(ids, small.labels, batch_size=config.batch_size, epochs=1, verbose=0)))
    p, a = statistics.median(pipeline), statistics.median(arrays)
    return {
        "rows": rows,
        "pipeline_examples_per_s": rows / p,
        "numpy_examples_per_s": rows / a,
        "ratio": a / p,
        "runs_pipeline_s": pipeline,
        "runs_numpy_s": arrays,
    }


def bench_vectorizer(config, texts, repeats) -> dict:
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer, vectorize

    adapt, apply = [], []
    for _ in range(repeats):
        vectorizer = build_vectorizer(config.vocab_size, config.sequence_length)
        adapt.append(timed(lambda: adapt_vectorizer(vectorizer, texts)))
        apply.append(timed(lambda: vectorize(vectorizer, texts)))
    return {
        "texts": len(texts),
        "adapt_texts_per_s": len(texts) / statistics.median(adapt),
        "map_texts_per_s": len(texts) / statistics.median(apply),
    }


def write_lines(path: Path, texts, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(texts[i % len(texts)].replace("\n", " ") + "\n")


def bench_scoring(bundle_path: Path, texts, sizes, tmp: Path, repeats) -> dict:
    """`score_files` on a file vs `model.predict` on the same texts held in memory as one tensor."""
    import tensorflow as tf

    from textpipe.bundle import load_bundle
    from textpipe.scoring import score_files

    n = sizes["score_lines"]
    lines = tmp / "lines.txt"
    write_lines(lines, texts, n)
    bundle = load_bundle(bundle_path)
    in_memory = tf.constant([texts[i % len(texts)] for i in range(n)])
    bundle.model.predict(in_memory[:1024], batch_size=512, verbose=0)  # warm up both paths
    score_files(bundle, [str(lines)], tmp / "warm.jsonl")
    score, predict = [], []
    for _ in range(repeats):
        score.append(timed(lambda: score_files(bundle, [str(lines)], tmp / "out.jsonl", batch_size=512)))
        predict.append(timed(lambda: bundle.model.predict(in_memory, batch_size=512, verbose=0)))
    s, p = statistics.median(score), statistics.median(predict)

    big = tmp / "big.txt"
    write_lines(big, texts, sizes["score_big_lines"])
    memory = {
        f"{n}_lines_mib": peak_memory_mib(bundle_path, lines, tmp),
        f"{sizes['score_big_lines']}_lines_mib": peak_memory_mib(bundle_path, big, tmp),
    }
    return {
        "lines": n,
        "score_rows_per_s": n / s,
        "predict_rows_per_s": n / p,
        "ratio": p / s,
        "runs_score_s": score,
        "runs_predict_s": predict,
        "peak_memory": memory,
    }


def peak_memory_mib(bundle_path: Path, lines: Path, tmp: Path) -> float:
    """Peak resident memory of a fresh process that loads the bundle and scores `lines` to a file."""
    code = (
        "import resource, sys\n"
        "from textpipe.bundle import load_bundle\n"
        "from textpipe.scoring import score_files\n"
        "score_files(load_bundle(sys.argv[1]), [sys.argv[2]], sys.argv[3])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(bundle_path), str(lines), str(tmp / "memory.jsonl")],
        capture_output=True, text=True, check=True,
    )
    return int(proc.stdout.strip().splitlines()[-1]) / 1024


def write_reports(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    m, t, v, s = results["machine"], results["training"], results["vectorizer"], results["scoring"]
    memory = "; ".join(f"{k.replace('_lines_mib', '')} lines: {mib:,.0f} MiB" for k, mib in s["peak_memory"].items())
    text = f"""# Benchmarks

Written by `scripts/benchmark.py`; numbers are medians of {results['repeats']} runs, and each ratio compares
two measurements taken in the same process, interleaved.

- command: `{results['command']}`
- date: {results['date']}
- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, GPU: {'yes' if m['gpu'] else 'no'};
  Python {m['python']}, TensorFlow {m['tensorflow']}
- texts: {results['texts']}

## Scoring: `textpipe score` against in-memory `model.predict`

Default lstm bundle, {s['lines']:,} lines in a plain text file, batch 512, JSON Lines output.

| path | rows/s |
|---|---|
| `score_files` (read, batch, predict, write) | {s['score_rows_per_s']:,.0f} |
| `model.predict` on one in-memory tensor | {s['predict_rows_per_s']:,.0f} |
| ratio (target ≥ 0.9) | **{s['ratio']:.2f}** |

Peak resident memory of a fresh scoring process (bundle loaded, TensorFlow included): {memory}.

## Training input: tf.data pipeline against numpy arrays

One epoch of the default lstm (batch 16) on {t['rows']:,} rows.

| input | examples/s |
|---|---|
| textpipe's tf.data pipeline (vectorize, cache, shuffle, batch, prefetch) | {t['pipeline_examples_per_s']:,.0f} |
| pre-vectorized numpy arrays | {t['numpy_examples_per_s']:,.0f} |
| ratio (target ≥ 0.95) | **{t['ratio']:.2f}** |

## Vectorizer

{v['texts']:,} texts: adapt {v['adapt_texts_per_s']:,.0f} texts/s; vectorize through tf.data {v['map_texts_per_s']:,.0f} texts/s.
"""
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
