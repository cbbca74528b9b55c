"""The report section of scripts/benchmark.py: what `textpipe report` and `textpipe explain` cost.

A default lstm is trained on emotion's training split (2 epochs: the timings need a model, not a good one).
Then, each in a fresh process as a user runs them, and interleaved so that both see the same machine:
`textpipe evaluate` and `textpipe report` on the same validation rows. `explain` is timed in one process,
after a first call has traced the model: one 50-word text, all its leave-one-word-out variants in one call.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TEXT_50_WORDS = " ".join(
    ["i", "felt", "so", "hopeful", "about", "the", "new", "job", "but", "the", "first", "week", "left", "me",
     "tired", "and", "a", "little", "lonely", "since", "nobody", "in", "the", "office", "seemed", "to", "care",
     "about", "what", "i", "was", "doing", "yet", "by", "friday", "i", "was", "grateful", "for", "a", "kind",
     "word", "from", "my", "manager", "and", "went", "home", "feeling", "calm"]
)


def run_report_timing(repeats: int, tmp: Path, log=lambda message: None) -> dict:
    data = SHARED_DATA / "emotion"
    bundle = tmp / "bundle"
    log("report: training the model to report on")
    _run([sys.executable, "-m", "textpipe", "train", "--dataset", str(data), "--epochs", "2", "--output", str(bundle)])
    rows = ["--dataset", str(data), "--split", "validation"]
    commands = {
        "evaluate": [sys.executable, "-m", "textpipe", "evaluate", str(bundle), *rows],
        "report": [sys.executable, "-m", "textpipe", "report", str(bundle), *rows, "--output", str(tmp / "r.html")],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(repeats):
        log(f"report: round {round_ + 1} of {repeats}")
        for name, argv in commands.items():
            start = time.perf_counter()
            _run(argv)
            times[name].append(time.perf_counter() - start)
    seconds = {name: statistics.median(values) for name, values in times.items()}
    return {
        "repeats": repeats,
        "dataset": "emotion",
        "split": "validation",
        "rows": _validation_rows(data),
        "report_bytes": (tmp / "r.html").stat().st_size,
        "seconds": seconds,
        "explain_50_words_s": _explain_seconds(bundle, max(repeats, 5)),
    }


def _explain_seconds(bundle: Path, repeats: int) -> float:
    from textpipe.bundle import load_bundle

    model = load_bundle(bundle)
    model.explain([TEXT_50_WORDS])  # traces the model once, as a long-running process would have
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.explain([TEXT_50_WORDS])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _validation_rows(data: Path) -> int:
    import datasets

    return datasets.load_dataset("parquet", data_files={"v": str(data / "validation.parquet")})["v"].num_rows


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]}")
