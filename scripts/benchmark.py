"""Measure textpipe against what a practitioner would use instead, in one run, and write BENCHMARKS.md/.json.

    python scripts/benchmark.py                       # everything at full size: hours on 2 cores
    python scripts/benchmark.py --sections accuracy --max-train-rows 5000
    python scripts/benchmark.py --sections throughput,scoring
    python scripts/benchmark.py --quick               # small sizes, a few minutes: checks the script still works

Sections:
- accuracy: textpipe's lstm and conv1d (defaults and tuned flags) against TF-IDF + logistic regression, on
  SST-2, IMDB and emotion from ../shared/data, means over --seeds (see accuracy_benchmark.py);
- throughput: tf.data training input against numpy arrays, the vectorizer, and model-only inference against
  the machine's floating-point floor;
- scoring: `textpipe score` against in-memory `predict` (rows/s, peak memory), and the Beam path on the
  DirectRunner against `textpipe score` (see beam_benchmark.py).

Every ratio compares two things measured in the same process, interleaved, as the median of --repeats runs.
A run of some sections keeps the other sections' earlier results in the report, each with its own command,
date and machine.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_SST2 = ROOT.parent / "shared" / "data" / "sst2"
SECTIONS = ("accuracy", "throughput", "scoring")


def main() -> int:
    from accuracy_benchmark import DATASETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: minutes, not hours")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, from {', '.join(SECTIONS)}")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="accuracy: comma-separated, from " + ", ".join(DATASETS))
    parser.add_argument("--seeds", type=int, default=3, help="accuracy: seeds per method; means and spread are reported")
    parser.add_argument("--max-train-rows", type=int, help="accuracy: fit on at most this many training rows (same rows for every method)")
    parser.add_argument("--repeats", type=int, default=3, help="throughput, scoring: runs per measurement; the median is reported")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"), help="Markdown report (JSON beside it)")
    parser.add_argument("--report-only", action="store_true", help="measure nothing; rewrite the Markdown from the JSON")
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for name, allowed in ((sections, SECTIONS), (datasets, DATASETS)):
        unknown = sorted(set(name) - set(allowed))
        if unknown:
            parser.error(f"unknown: {', '.join(unknown)}; choose from {', '.join(allowed)}")

    output = Path(args.output)
    json_path = output.with_suffix(".json")
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    results = {k: v for k, v in results.items() if k in SECTIONS}  # reports from before sections existed
    if args.report_only:
        write_reports(results, output)
        return 0
    stamp = {
        "command": "python scripts/benchmark.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "accuracy" in sections:
            # Datasets not run this time keep their earlier results; each says which command produced it.
            accuracy = run_accuracy_section(args, datasets, tmp)
            for data in accuracy["datasets"].values():
                data.update(command=stamp["command"], date=stamp["date"], cores_used=stamp["machine"]["cores_used"])
            earlier = results.get("accuracy", {}).get("datasets", {})
            merged = {**earlier, **accuracy["datasets"]}
            accuracy["datasets"] = {name: merged[name] for name in DATASETS if name in merged}
            results["accuracy"] = {**stamp, **accuracy}
        if "throughput" in sections:
            results["throughput"] = {**stamp, **run_throughput_section(args, tmp)}
        if "scoring" in sections:
            results["scoring"] = {**stamp, **run_scoring_section(args, tmp)}
    write_reports(results, output)
    print(f"wrote {output} and {json_path}")
    return 0


def run_accuracy_section(args, datasets, tmp: Path) -> dict:
    from accuracy_benchmark import run_accuracy

    if args.quick:
        return run_accuracy(datasets, [0], args.max_train_rows or 600, 1, tmp, log, quick=True)
    return run_accuracy(datasets, list(range(args.seeds)), args.max_train_rows, None, tmp, log)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def throughput_data(args):
    """Sizes for --quick or full runs, and the texts to measure on (SST-2 when present)."""
    from textpipe.data import load_labeled_data

    sizes = {"score_lines": 20_000, "score_big_lines": 100_000, "train_rows": 4_000, "inference_rows": 4_096}
    if not args.quick:
        sizes = {"score_lines": 200_000, "score_big_lines": 2_000_000, "train_rows": 20_000, "inference_rows": 32_768}
    source = SHARED_SST2 if SHARED_SST2.is_dir() else None
    return sizes, load_labeled_data(source), "SST-2 train sentences" if source else "textpipe's sample reviews"


def run_throughput_section(args, tmp: Path) -> dict:
    from textpipe.config import Config

    sizes, data, name = throughput_data(args)
    config = Config(epochs=1, seed=0)
    results: dict = {"texts": name, "repeats": args.repeats}
    results["training"] = bench_training(config, data, sizes["train_rows"], args.repeats)
    results["vectorizer"] = bench_vectorizer(config, data.train.texts, args.repeats)
    results["inference"] = bench_inference(data.train.texts, sizes["inference_rows"], args.repeats)
    return results


def run_scoring_section(args, tmp: Path) -> dict:
    from textpipe.bundle import save_bundle
    from textpipe.config import Config
    from textpipe.training import train

    sizes, data, name = throughput_data(args)
    results: dict = {"texts": name, "repeats": args.repeats}
    bundle_path = tmp / "bundle"
    save_bundle(train(Config(epochs=1, seed=0), subset(data, sizes["train_rows"])), bundle_path)
    results["scoring"] = bench_scoring(bundle_path, data.train.texts, sizes, tmp, args.repeats)
    if importlib.util.find_spec("apache_beam") is not None:
        from beam_benchmark import bench_beam

        results["beam"] = bench_beam(bundle_path, tmp / "lines.txt", tmp / "beam", args.repeats)
    else:
        log("apache-beam is not installed (pip install -e '.[beam]'): the Beam comparison is left out")
    return results


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
        "cores_used": len(os.sched_getaffinity(0)),
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


def bench_inference(texts, rows: int, repeats: int) -> dict:
    """Model-only inference (token ids or word vectors in, probabilities out) of the default models,
    against the floor their floating-point work sets on this machine: FLOPs per text / measured matmul rate."""
    import tensorflow as tf

    from textpipe.config import Config
    from textpipe.models import build_model
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer, vectorize

    config = Config()
    vectorizer = build_vectorizer(config.vocab_size, config.sequence_length)
    adapt_vectorizer(vectorizer, texts)
    ids = vectorize(vectorizer, np.resize(texts, rows))
    rate = matmul_flops_per_s(repeats)
    results: dict = {"rows": rows, "batch": 512, "matmul_gflops_per_s": rate / 1e9, "models": {}}
    for name in ("lstm", "conv1d"):
        model = build_model(Config(model=name), 2)
        if name == "lstm":
            inputs = ids
        else:  # the conv1d model reads 100-dim word vectors, which the pipeline looks up per batch
            inputs = np.random.default_rng(0).standard_normal((rows, config.sequence_length, config.word_vector_dim), dtype=np.float32)
        batches = [tf.constant(inputs[i : i + 512]) for i in range(0, rows, 512)]
        call = tf.function(model, reduce_retracing=True)

        def run_all(call=call, batches=batches) -> None:
            for batch in batches:
                call(batch, training=False).numpy()

        call(batches[0], training=False)
        call(batches[-1], training=False)  # trace both batch shapes before timing
        seconds = statistics.median(timed(run_all) for _ in range(repeats))
        flops = model_flops(model, config.sequence_length)
        floor = rate / flops
        results["models"][name] = {
            "flops_per_text": flops,
            "texts_per_s": rows / seconds,
            "floor_texts_per_s": floor,
            "share_of_floor": rows / seconds / floor,
        }
    return results


def matmul_flops_per_s(repeats: int, n: int = 2048) -> float:
    """The machine's float32 matrix-multiply rate: the median of timed (n x n) @ (n x n) products."""
    import tensorflow as tf

    a = tf.random.normal((n, n), seed=0)
    b = tf.random.normal((n, n), seed=1)
    product = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    product(a, b).numpy()
    runs = 10
    seconds = statistics.median(timed(lambda: [product(a, b).numpy() for _ in range(runs)]) for _ in range(repeats))
    return 2 * n**3 * runs / seconds


def model_flops(model, length: int) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of one text through the model's matrix products.

    Element-wise work (activations, gates, pooling, masking) is left out, so the floor is a true lower bound
    on time. An LSTM on a CPU runs every step of the padded sequence, so all `length` steps count.
    """
    import keras

    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.LSTM):
            kernel, recurrent = layer.cell.kernel.shape, layer.cell.recurrent_kernel.shape
            flops += 2 * length * (kernel[0] * kernel[1] + recurrent[0] * recurrent[1])
        elif isinstance(layer, keras.layers.Conv1D):
            width, channels, filters = layer.kernel.shape
            length -= width - 1
            flops += 2 * length * width * channels * filters
        elif isinstance(layer, keras.layers.MaxPooling1D):
            length //= layer.pool_size[0]
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return int(flops)


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
    path.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")  # first: the Markdown is derived
    from benchmark_report import render

    path.write_text(render(results))


if __name__ == "__main__":
    sys.exit(main())
