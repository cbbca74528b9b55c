"""The startup section of scripts/benchmark.py: how long the command line takes to report a mistake.

Each case runs `textpipe` in a fresh process (the installed console script's code, `python -m textpipe`) and
times it to its exit; the baseline, measured interleaved in the same run, is a process that imports
TensorFlow and does nothing else: what every one of these errors cost when the command line imported
TensorFlow before looking at its arguments.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

# (name, argv after `textpipe`, the exit status it must give); {tmp} is a scratch folder.
CASES = [
    ("usage error (`train --epochs many`)", ["train", "--epochs", "many"], 2),
    ("missing dataset (`train --dataset does-not-exist/`)", ["train", "--dataset", "{tmp}/does-not-exist/"], 2),
    ("missing config file (`train --config nope.toml`)", ["train", "--config", "{tmp}/nope.toml"], 2),
    ("bad setting (`train --preset fast`)", ["train", "--preset", "fast"], 2),
    ("missing bundle (`evaluate no-bundle`)", ["evaluate", "{tmp}/no-bundle"], 2),
    ("missing input (`score BUNDLE nope.txt -o out.jsonl`)", ["score", "{tmp}/bundle", "{tmp}/nope.txt", "-o", "{tmp}/o.jsonl"], 2),
    ("unknown encoding (`score BUNDLE in.txt --encoding klingon`)", ["score", "{tmp}/bundle", "{tmp}/in.txt", "--encoding", "klingon", "-o", "{tmp}/o.jsonl"], 2),
    ("export over a folder that is not one (`export BUNDLE notes/`)", ["export", "{tmp}/bundle", "{tmp}/notes"], 2),
    ("unreachable Hub (`train --dataset nosuch/dataset`, no network)", ["train", "--dataset", "nosuch/dataset"], 2),
    ("`textpipe --version`", ["--version"], 0),
]
BASELINE = [sys.executable, "-c", "import tensorflow"]


def run_startup(repeats: int, tmp: Path, log=lambda message: None) -> dict:
    (tmp / "bundle").mkdir()
    (tmp / "bundle" / "bundle.json").write_text("{}")  # enough for the checks made before loading it
    (tmp / "in.txt").write_text("a line\n")
    (tmp / "notes").mkdir()
    (tmp / "notes" / "keep.txt").write_text("keep")
    commands = {name: ([sys.executable, "-m", "textpipe", *(a.format(tmp=tmp) for a in argv)], status)
                for name, argv, status in CASES}
    times: dict[str, list[float]] = {name: [] for name in ["baseline", *commands]}
    for round_ in range(repeats):
        log(f"startup: round {round_ + 1} of {repeats}")
        times["baseline"].append(_timed(BASELINE, 0))
        for name, (argv, status) in commands.items():
            times[name].append(_timed(argv, status))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {"repeats": repeats, "baseline_s": medians.pop("baseline"), "seconds": medians}


def _timed(argv: list[str], status: int) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    if done.returncode != status:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}, expected {status}: {done.stderr[-500:]}")
    return seconds


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(run_startup(int(sys.argv[1]) if len(sys.argv) > 1 else 3, Path(folder), print), indent=2))
