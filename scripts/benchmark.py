"""Measure textpipe against what a practitioner would use instead, in one run, and write BENCHMARKS.md/.json.

    python scripts/benchmark.py                       # everything at full size: hours on 2 cores
    python scripts/benchmark.py --sections accuracy --max-train-rows 5000
    python scripts/benchmark.py --sections accuracy --datasets sst2_sentences   # SST-2's whole sentences only
    python scripts/benchmark.py --sections accuracy --datasets imdb --methods lstm_accurate --seeds 1 --first-seed 2
                                                      # one more seed, joined to the row's earlier seeds
    python scripts/benchmark.py --sections throughput,scoring
    python scripts/benchmark.py --quick               # small sizes, a few minutes: checks the script still works

Sections:
- accuracy: textpipe's lstm and conv1d (defaults, every epoch, --preset accurate) against TF-IDF + logistic regression, on
  SST-2, IMDB and emotion from ../shared/data (and, on request, SST-2's whole sentences), means over --seeds
  (see accuracy_benchmark.py);
- throughput: tf.data training input against numpy arrays, and model-only inference against the machine's
  floating-point floor;
- optimizer: epochs of `--preset accurate`'s lstm with textpipe's RowwiseRMSprop against Keras's RMSprop;
- vectorizer: adapting and vectorizing with textpipe's standardization against Keras' built-in one, on
  sentences, tweets and reviews;
- scoring: `textpipe score` against in-memory `predict` (rows/s, peak memory), and the Beam path on the
  DirectRunner against `textpipe score` (see beam_benchmark.py);
- startup: the command line's time to report a mistake, against a process that only imports TensorFlow
  (see startup_benchmark.py).

Every ratio compares two things measured in the same process, interleaved, as the median of --repeats runs.
A run of some sections keeps the other sections' earlier results in the report, each with its own command,
date and machine. An accuracy run stopped part way (killed, out of time) goes on from its last finished fit when
the same command is run again on the same code (BENCHMARKS.partial.json beside the report keeps them); each fit
keeps the machine it ran on.
"""

from __future__ import annotations

import argparse
import contextlib
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

import textpipe
from textpipe.quiet import quiet_libraries

ROOT = Path(__file__).resolve().parents[1]
SHARED_SST2 = ROOT.parent / "shared" / "data" / "sst2"
SECTIONS = ("accuracy", "throughput", "optimizer", "vectorizer", "scoring", "startup", "report")


def main() -> int:
    from accuracy_benchmark import ALL_DATASETS, DATASETS, METHODS, dataset_of, join_seeds, result_key

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: minutes, not hours")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, from {', '.join(SECTIONS)}")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="accuracy: comma-separated, from " + ", ".join(ALL_DATASETS) + " (default: " + ", ".join(DATASETS) + ")")
    parser.add_argument("--methods", default=",".join(METHODS), help="accuracy: comma-separated, from " + ", ".join(METHODS) + "; the others keep their earlier results")
    parser.add_argument("--seeds", type=int, default=3, help="accuracy: seeds per method; means and spread are reported")
    parser.add_argument("--first-seed", type=int, default=0, help="accuracy: the first seed run; from 1 on, each method's runs join its earlier runs of the other seeds (same textpipe version and held-out rows)")
    parser.add_argument("--max-train-rows", type=int, help="accuracy: fit on at most this many training rows (same rows for every method)")
    parser.add_argument("--repeats", type=int, default=3, help="throughput, vectorizer, scoring: runs per measurement; the median is reported")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"), help="Markdown report (JSON beside it)")
    parser.add_argument("--report-only", action="store_true", help="measure nothing; rewrite the Markdown from the JSON")
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    args.methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    for name, allowed in ((sections, SECTIONS), (datasets, ALL_DATASETS), (args.methods, METHODS)):
        unknown = sorted(set(name) - set(allowed))
        if unknown:
            parser.error(f"unknown: {', '.join(unknown)}; choose from {', '.join(allowed)}")
    if args.seeds < 1 or args.first_seed < 0:
        parser.error("--seeds must be at least 1 and --first-seed at least 0")

    output = Path(args.output)
    json_path = output.with_suffix(".json")
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    results = {k: v for k, v in results.items() if k in SECTIONS}  # reports from before sections existed
    if args.report_only:
        write_reports(results, output)
        print(f"wrote {output} from {json_path}")
        return 0
    from textpipe.bundle import FORMAT_VERSION  # imports TensorFlow: here, once its logs are quieted

    stamp = {
        "command": "python scripts/benchmark.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "textpipe": textpipe.__version__,
        "bundle_format": FORMAT_VERSION,
    }
    journal = None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "accuracy" in sections:
            journal = accuracy_journal(args, datasets, output, stamp["machine"])
            # Datasets (at each training-pool size) not run this time keep their earlier results, and methods
            # not run this time keep theirs; each says which command produced it.
            accuracy = run_accuracy_section(args, datasets, tmp, journal)
            earlier = {result_key(name.partition("@")[0], data.get("max_train_rows")): data  # keys before sizes
                       for name, data in results.get("accuracy", {}).get("datasets", {}).items()}
            for name, data in accuracy["datasets"].items():
                data.update(command=stamp["command"], date=stamp["date"], cores_used=stamp["machine"]["cores_used"])
                for method in data["methods"].values():
                    method.update(command=stamp["command"], date=stamp["date"], textpipe=stamp["textpipe"],
                                  bundle_format=stamp["bundle_format"], held_out_by=data["held_out_by"])
                    for run in method["runs"]:
                        run.update(command=stamp["command"], date=stamp["date"])
                        run.setdefault("machine", stamp["machine"]["cpu"])  # a resumed run's earlier fits keep theirs
                before = earlier.get(name, {})
                # Only results of this textpipe version: what a method's settings mean changes between them.
                kept = {method: run for method, run in before.get("methods", {}).items()
                        if method in METHODS and run.get("textpipe") == stamp["textpipe"]}
                if args.first_seed > 0:  # these seeds join the earlier ones, each run keeping its command
                    for method, run in data["methods"].items():
                        if method in kept and kept[method].get("held_out_by", "row") == data["held_out_by"]:
                            data["methods"][method] = join_seeds(kept[method], run)
                data["methods"] = {**kept, **data["methods"]}
                data["seeds"] = sorted({run["seed"] for method in data["methods"].values() for run in method["runs"]})
                if data["pretrained_vectors"] is None and "conv1d_accurate_vectors" in kept:
                    data["pretrained_vectors"] = before.get("pretrained_vectors")  # the vectors it used
                if data.get("unlabeled_text") is None and any(method.endswith("_unlabeled") for method in kept):
                    data["unlabeled_text"] = before.get("unlabeled_text")  # the text it read
            merged = {**earlier, **accuracy["datasets"]}
            # Dataset by dataset, the whole training set before capped pools, smaller caps last.
            known = [key for key in merged if dataset_of(key)[0] in ALL_DATASETS]  # datasets since dropped are left out

            def order(key: str) -> tuple[int, float]:
                name, cap = dataset_of(key)
                return ALL_DATASETS.index(name), -(float("inf") if cap is None else cap)

            accuracy["datasets"] = {key: merged[key] for key in sorted(known, key=order)}
            results["accuracy"] = {**stamp, **accuracy}
        if "throughput" in sections:
            results["throughput"] = {**stamp, **run_throughput_section(args, tmp)}
        if "optimizer" in sections:
            results["optimizer"] = {**stamp, **run_optimizer_section(args)}
        if "vectorizer" in sections:
            results["vectorizer"] = {**stamp, **run_vectorizer_section(args)}
        if "scoring" in sections:
            results["scoring"] = {**stamp, **run_scoring_section(args, tmp)}
        if "startup" in sections:
            from startup_benchmark import run_startup

            (tmp / "startup").mkdir()
            results["startup"] = {**stamp, **run_startup(max(args.repeats, 5), tmp / "startup", log)}
        if "report" in sections:
            from report_benchmark import run_report_timing

            (tmp / "report").mkdir()
            results["report"] = {**stamp, **run_report_timing(args.repeats, tmp / "report", log)}
    write_reports(results, output)
    if journal is not None:
        journal.close()
    print(f"wrote {output} and {json_path}")
    return 0


def accuracy_seeds(args) -> list[int]:
    return [args.first_seed] if args.quick else list(range(args.first_seed, args.first_seed + args.seeds))


def accuracy_journal(args, datasets, output: Path, machine: dict):
    """The journal of this accuracy run's finished fits, beside the report: the same command, run again on the
    same code after it was stopped, goes on from the fits it holds. `machine` is `machine()`'s description."""
    import accuracy_benchmark
    from accuracy_benchmark import Journal, code_digest

    identity = {
        "datasets": datasets, "methods": list(args.methods), "seeds": accuracy_seeds(args),
        "max_train_rows": args.max_train_rows, "quick": args.quick,
        "code": code_digest(Path(textpipe.__file__).parent, Path(accuracy_benchmark.__file__)),
        "python": machine["python"], "tensorflow": machine["tensorflow"],
    }
    journal = Journal(output.with_suffix(".partial.json"), identity, machine["cpu"])
    if journal.fits:
        log(f"resuming: {len(journal.fits)} fits done, from {journal.path}")
    return journal


def run_accuracy_section(args, datasets, tmp: Path, journal) -> dict:
    from accuracy_benchmark import run_accuracy

    seeds = accuracy_seeds(args)
    if args.quick:
        return run_accuracy(datasets, seeds, args.max_train_rows or 600, 1, tmp, log, quick=True, only=args.methods,
                            journal=journal)
    return run_accuracy(datasets, seeds, args.max_train_rows, None, tmp, log, only=args.methods, journal=journal)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def throughput_data(args):
    """Sizes for --quick or full runs, and the texts to measure on (SST-2 when present)."""
    from textpipe.data import load_labeled_data

    sizes = {"score_lines": 20_000, "score_big_lines": 100_000, "train_rows": 1_000, "inference_rows": 4_096}
    if not args.quick:
        sizes = {"score_lines": 200_000, "score_big_lines": 2_000_000, "train_rows": 8_000, "inference_rows": 32_768}
    source = SHARED_SST2 if SHARED_SST2.is_dir() else None
    return sizes, load_labeled_data(source), "SST-2 train sentences" if source else "textpipe's sample reviews"


def length_datasets(data) -> dict:
    """Training texts of three typical lengths: SST-2 sentences, emotion tweets, IMDB reviews (read at 64
    tokens), from ../shared/data where present; else the built-in sample reviews alone."""
    from textpipe.data import load_labeled_data

    shared = SHARED_SST2.parent
    if not shared.is_dir():
        return {"sample reviews": data}
    return {name: load_labeled_data(shared / folder, seed=0)
            for name, folder in (("SST-2", "sst2"), ("emotion", "emotion"), ("IMDB", "imdb"))}


def run_throughput_section(args, tmp: Path) -> dict:
    from textpipe.config import Config

    sizes, data, name = throughput_data(args)
    config = Config(epochs=1, seed=0)
    results: dict = {"texts": name, "repeats": args.repeats}
    datasets = length_datasets(data)
    results["training"] = {
        label: bench_training(config, texts, sizes["train_rows"], args.repeats) for label, texts in datasets.items()
    }
    results["determinism"] = bench_determinism(datasets, sizes["train_rows"], args.repeats)
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
    """The second epoch of the default lstm on the same rows (the first includes tracing), fed four ways,
    interleaved:

    - fixed: every batch padded to sequence_length, as textpipe 0.1 did (`fixed_length=True`);
    - numpy: the same, from pre-vectorized numpy arrays instead of the tf.data pipeline (its overhead);
    - cut: batches in random order of texts, each cut to its longest text;
    - grouped: textpipe's default, batches of texts of similar length, each cut to its longest text.
    """
    import keras

    from textpipe.models import build_model
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer, make_dataset, text_lengths, vectorize

    small = subset(data, rows).train
    rows = len(small)  # fewer when the data has fewer
    n_classes = len(data.class_names)
    vectorizer = build_vectorizer(config.vocab_size, config.sequence_length)
    adapt_vectorizer(vectorizer, small.texts)
    ids = vectorize(vectorizer, small.texts)
    variants = {
        "fixed": lambda: (build_model(config, n_classes, fixed_length=True),
                          make_dataset(vectorizer, small, config.batch_size, shuffle=True, group_by_length=False)),
        "cut": lambda: (build_model(config, n_classes),
                        make_dataset(vectorizer, small, config.batch_size, shuffle=True, group_by_length=False)),
        "grouped": lambda: (build_model(config, n_classes),
                            make_dataset(vectorizer, small, config.batch_size, shuffle=True)),
    }
    runs: dict[str, list[float]] = {name: [] for name in (*variants, "numpy")}
    steps: dict[str, float] = {}
    for _ in range(repeats):
        for name, make in variants.items():
            keras.utils.set_random_seed(0)
            model, dataset = make()
            clock = epoch_clock()
            model.fit(dataset, epochs=2, verbose=0, shuffle=False, callbacks=[clock])
            runs[name].append(clock.seconds[-1])
            trim = model.get_layer("trim_padding")
            steps[name] = sum(int(trim(x).shape[1]) * len(x) for x, _ in dataset) / rows
        keras.utils.set_random_seed(0)
        model, clock = build_model(config, n_classes, fixed_length=True), epoch_clock()
        model.fit(ids, small.labels, batch_size=config.batch_size, epochs=2, verbose=0, callbacks=[clock])
        runs["numpy"].append(clock.seconds[-1])
    seconds = {name: statistics.median(times) for name, times in runs.items()}
    return {
        "rows": rows,
        "tokens_per_text": float(np.mean(text_lengths(ids).numpy())),
        "steps_per_text": steps,
        "examples_per_s": {name: rows / s for name, s in seconds.items()},
        "speedup_vs_fixed": {name: seconds["fixed"] / s for name, s in seconds.items()},
        "runs_s": runs,
    }


def epoch_clock():
    """A Keras callback that keeps each epoch's wall-clock seconds in `.seconds`."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    return EpochClock()


def bench_determinism(datasets: dict, rows: int, repeats: int) -> dict:
    """The second epoch of each default model on the same rows, with TensorFlow's deterministic kernels (what
    `textpipe train` runs under on CPU, so that a seed gives one model) and without, interleaved. The conv1d
    model reads random_word_vectors."""
    import contextlib

    import keras

    from textpipe.config import Config
    from textpipe.models import build_model
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer, make_dataset
    from textpipe.training import deterministic_ops

    defaults = Config()
    table = random_word_vectors(defaults)
    results: dict = {}
    for name, data in datasets.items():
        small = subset(data, rows).train
        n_classes = len(data.class_names)
        vectorizer = build_vectorizer(defaults.vocab_size, defaults.sequence_length)  # the same for both models
        adapt_vectorizer(vectorizer, small.texts)
        for model_name in ("lstm", "conv1d"):
            config = Config(model=model_name, seed=0)
            runs: dict[str, list[float]] = {"deterministic": [], "default": []}
            for _ in range(repeats):
                for kernels in runs:
                    keras.utils.set_random_seed(0)
                    model = build_model(config, n_classes, word_vectors=table if model_name == "conv1d" else None)
                    dataset = make_dataset(vectorizer, small, config.batch_size, shuffle=True)
                    clock = epoch_clock()
                    with deterministic_ops() if kernels == "deterministic" else contextlib.nullcontext():
                        model.fit(dataset, epochs=2, verbose=0, shuffle=False, callbacks=[clock])
                    runs[kernels].append(clock.seconds[-1])
            seconds = {kernels: statistics.median(times) for kernels, times in runs.items()}
            results.setdefault(name, {})[model_name] = {
                "rows": len(small),
                "examples_per_s": {kernels: len(small) / s for kernels, s in seconds.items()},
                "cost_ratio": seconds["deterministic"] / seconds["default"],
                "runs_s": runs,
            }
    return results


# optimizer section: timed epochs per fit, after the first (which includes tracing).
OPTIMIZER_EPOCHS = 3


def run_optimizer_section(args) -> dict:
    """Epochs of `--preset accurate`'s lstm on the same rows of each dataset, its settings chosen from the
    whole training set (so its Embedding has the rows a real fit's has, up to 20,000 words; --quick: from the
    rows timed), trained with textpipe's RowwiseRMSprop and with Keras's own RMSprop, interleaved, under the
    deterministic kernels `textpipe train` uses. Both take the same steps (to float rounding); Keras's
    recomputes every row's moving average every step. Each fit times OPTIMIZER_EPOCHS epochs after its first;
    the median of all of them is reported."""
    from unittest import mock

    import keras

    import textpipe.models
    from textpipe.config import Config
    from textpipe.models import build_model
    from textpipe.presets import resolve_auto
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer, make_dataset
    from textpipe.training import deterministic_ops

    sizes, sample, _ = throughput_data(args)
    rows = sizes["train_rows"]
    results: dict = {"repeats": args.repeats, "epochs_per_fit": OPTIMIZER_EPOCHS, "texts": {}}
    for name, data in length_datasets(sample).items():
        small = subset(data, rows).train
        texts = small.texts if args.quick else data.train.texts  # --quick: the settings of the rows timed
        config = resolve_auto(Config(model="lstm", preset="accurate", ngrams=False, seed=0), texts)
        vectorizer = build_vectorizer(config.vocab_size, config.sequence_length)
        adapt_vectorizer(vectorizer, texts)
        optimizers = {"rowwise": textpipe.models.RowwiseRMSprop, "keras": keras.optimizers.RMSprop}
        runs: dict[str, list[float]] = {label: [] for label in optimizers}
        for _ in range(args.repeats):
            for label, optimizer in optimizers.items():
                keras.utils.set_random_seed(0)
                with mock.patch.object(textpipe.models, "RowwiseRMSprop", optimizer):
                    model = build_model(config, len(data.class_names))
                dataset = make_dataset(vectorizer, small, config.batch_size, shuffle=True)
                clock = epoch_clock()
                with deterministic_ops():
                    model.fit(dataset, epochs=1 + OPTIMIZER_EPOCHS, verbose=0, shuffle=False, callbacks=[clock])
                runs[label].extend(clock.seconds[1:])
        seconds = {label: statistics.median(times) for label, times in runs.items()}
        results["texts"][name] = {
            "rows": len(small),
            "vocab_size": config.vocab_size,
            "sequence_length": config.sequence_length,
            "adversarial": config.adversarial,
            "examples_per_s": {label: len(small) / s for label, s in seconds.items()},
            "speedup": seconds["keras"] / seconds["rowwise"],
            "runs_s": runs,
        }
    return results


def random_word_vectors(config) -> np.ndarray:
    """A word-vector table of the shape the conv1d model reads under `config`, for timing: its cost does not
    depend on the values."""
    return np.random.default_rng(0).standard_normal((config.vocab_size, config.word_vector_dim), dtype=np.float32)


def run_vectorizer_section(args) -> dict:
    """The default vectorizer's cost with textpipe's standardization against Keras' built-in one (which reads
    non-ASCII text differently), on each training set of length_datasets: at most 2,000 texts with --quick."""
    _, data, _ = throughput_data(args)
    rows = 2_000 if args.quick else None
    return {
        "repeats": args.repeats,
        "texts": {name: bench_vectorizer(d.train.texts[:rows], args.repeats) for name, d in length_datasets(data).items()},
    }


def bench_vectorizer(texts, repeats) -> dict:
    """Adapting a default vectorizer to `texts` and vectorizing them through tf.data, with each standardization,
    interleaved: texts/s (medians) and textpipe's time ÷ the built-in's."""
    from textpipe.config import Config
    from textpipe.layers import standardize
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer, vectorize

    config = Config()
    ways = {"builtin": "lower_and_strip_punctuation", "textpipe": standardize}
    seconds: dict = {name: {"adapt": [], "vectorize": []} for name in ways}
    for _ in range(repeats):
        for name, standardization in ways.items():
            vectorizer = build_vectorizer(config.vocab_size, config.sequence_length, standardization)
            seconds[name]["adapt"].append(timed(lambda: adapt_vectorizer(vectorizer, texts)))
            seconds[name]["vectorize"].append(timed(lambda: vectorize(vectorizer, texts)))
    median = {name: {step: statistics.median(runs) for step, runs in steps.items()} for name, steps in seconds.items()}
    return {
        "texts": len(texts),
        "chars_per_text": float(np.mean([len(t) for t in texts])),
        "texts_per_s": {name: {step: len(texts) / s for step, s in steps.items()} for name, steps in median.items()},
        "cost_ratio": {step: median["textpipe"][step] / median["builtin"][step] for step in ("adapt", "vectorize")},
        "runs_s": seconds,
    }


def bench_inference(texts, rows: int, repeats: int) -> dict:
    """Model-only inference (token ids in, probabilities out) of the default models on batches of texts of
    similar length, as Bundle.predict_proba and `textpipe score` form them, against the floor that the
    floating-point work of the texts' real tokens sets on this machine: FLOPs / measured matmul rate."""
    import tensorflow as tf

    from textpipe.config import Config
    from textpipe.models import build_model
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer, text_lengths, vectorize
    from textpipe.presets import CONV1D_MIN_LENGTH

    config = Config()
    vectorizer = build_vectorizer(config.vocab_size, config.sequence_length)
    adapt_vectorizer(vectorizer, texts)
    ids = vectorize(vectorizer, np.resize(texts, rows))
    lengths = text_lengths(ids).numpy()
    ids = ids[np.argsort(lengths, kind="stable")]
    lengths = np.sort(lengths)
    rate = matmul_flops_per_s(repeats)
    results: dict = {"rows": rows, "batch": 512, "matmul_gflops_per_s": rate / 1e9,
                     "tokens_per_text": float(lengths.mean()), "models": {}}
    table = random_word_vectors(config)
    for name in ("lstm", "conv1d"):
        model = build_model(Config(model=name), 2, word_vectors=table if name == "conv1d" else None)
        batches = [tf.constant(ids[i : i + 512]) for i in range(0, rows, 512)]
        call = tf.function(model, reduce_retracing=True)

        def run_all(call=call, batches=batches) -> None:
            for batch in batches:
                call(batch, training=False).numpy()

        run_all()  # trace every batch shape before timing
        seconds = statistics.median(timed(run_all) for _ in range(repeats))
        if name == "lstm":  # one LSTM step per real token
            flops = sum(model_flops(model, int(n)) for n in lengths)
        else:  # the convolutions over the steps real tokens reach (the text and the receptive field after it)
            field = CONV1D_MIN_LENGTH
            flops = sum(model_flops(model, min(max(int(n) + field - 1, field), config.sequence_length)) for n in lengths)
        floor = rate * rows / flops
        results["models"][name] = {
            "flops_per_text": flops / rows,
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
    on time. `length` is the number of steps counted: the callers pass a text's real tokens.
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


def long_texts(texts, words: int = 80) -> list[str]:
    """Texts of `words` words, each several of `texts` joined: nearly all run past the default 64 tokens once
    punctuation is stripped, so are read in two windows."""
    out, current = [], []
    for text in texts:
        current += text.split()
        if len(current) >= words:
            out.append(" ".join(current[:words]))
            current = []
    return out


def bench_scoring(bundle_path: Path, texts, sizes, tmp: Path, repeats) -> dict:
    """`score_files` on a file against in-memory `Bundle.predict_proba` and Keras' `model.predict` on the same
    texts; and `score_files` on short texts against texts that fill every step (same number of lines)."""
    from textpipe.bundle import load_bundle
    import textpipe.scoring as scoring
    from textpipe.scoring import score_files

    n = sizes["score_lines"]
    lines, long_lines = tmp / "lines.txt", tmp / "long.txt"
    write_lines(lines, texts, n)
    write_lines(long_lines, long_texts(texts), n)
    bundle = load_bundle(bundle_path)
    in_memory = np.array([texts[i % len(texts)] for i in range(n)], dtype=object)
    bundle.model.predict(in_memory[:1024], batch_size=512, verbose=0)  # warm up every path
    bundle.predict_proba(in_memory[:4096])
    score_files(bundle, [str(lines)], tmp / "warm.jsonl")
    runs: dict[str, list[float]] = {
        "score": [], "score_narrow": [], "predict_proba": [], "keras_predict": [], "score_long": []
    }
    for _ in range(repeats):
        runs["score"].append(timed(lambda: score_files(bundle, [str(lines)], tmp / "out.jsonl", batch_size=512)))
        with length_window(NARROW_WINDOW):
            runs["score_narrow"].append(timed(lambda: score_files(bundle, [str(lines)], tmp / "out.jsonl", batch_size=512)))
        runs["predict_proba"].append(timed(lambda: bundle.predict_proba(in_memory, batch_size=512)))
        runs["keras_predict"].append(timed(lambda: bundle.model.predict(in_memory, batch_size=512, verbose=0)))
        runs["score_long"].append(timed(lambda: score_files(bundle, [str(long_lines)], tmp / "out.jsonl", batch_size=512)))
    rate = {name: n / statistics.median(times) for name, times in runs.items()}

    big = tmp / "big.txt"
    write_lines(big, texts, sizes["score_big_lines"])
    memory = {
        f"{n}_lines_mib": peak_memory_mib(bundle_path, lines, tmp),
        f"{sizes['score_big_lines']}_lines_mib": peak_memory_mib(bundle_path, big, tmp),
    }
    return {
        "lines": n,
        "rows_per_s": rate,
        "ratio": rate["score"] / rate["predict_proba"],
        "short_vs_long": rate["score"] / rate["score_long"],
        "window": scoring.LENGTH_WINDOW,
        "narrow_window": NARROW_WINDOW,
        "wide_vs_narrow": rate["score"] / rate["score_narrow"],
        "runs_s": runs,
        "peak_memory": memory,
    }


# The window, in batches, that score_files read rows in before it grew: the wider one is measured against it.
NARROW_WINDOW = 8


@contextlib.contextmanager
def length_window(batches: int):
    """score_files reads rows `batches` batches at a time while inside."""
    import textpipe.scoring as scoring

    default, scoring.LENGTH_WINDOW = scoring.LENGTH_WINDOW, batches
    try:
        yield
    finally:
        scoring.LENGTH_WINDOW = default


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
    # Only the benchmark's own lines, as on the command line: TensorFlow's logs stay hidden unless asked for
    # (TF_CPP_MIN_LOG_LEVEL=0 shows them).
    with quiet_libraries():
        sys.exit(main())
