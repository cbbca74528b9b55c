"""Training under MultiWorkerMirroredStrategy: two worker processes on localhost ports, configured by TF_CONFIG.

The strategy must be created before TensorFlow runs anything in a process, so every worker is a fresh
subprocess, never this pytest process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_SETTINGS, make_sentences

# One worker's whole run: train on the same CSV, save, and report what the test compares.
WORKER = textwrap.dedent(
    """
    import hashlib, json, sys
    import numpy as np
    from textpipe.bundle import save_bundle
    from textpipe.config import Config
    from textpipe.data import load_labeled_data
    from textpipe.training import train

    import keras

    class Crash(keras.callbacks.Callback):  # a machine failing in the middle of a run
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == crash_at:
                raise SystemExit(3)

    settings, crash_at = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    config = Config(**settings)
    bundle = train(config, load_labeled_data(settings["dataset"], seed=config.seed), callbacks=[Crash()])
    save_bundle(bundle, config.output)
    weights = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in bundle.classifier.get_weights()))
    vocabulary = hashlib.sha256("\\n".join(bundle.vectorizer.get_vocabulary()).encode())
    print("RESULT " + json.dumps({
        "chief": bundle.is_chief,
        "weights": weights.hexdigest(),
        "vocabulary": vocabulary.hexdigest(),
        "accuracy": bundle.metrics["validation"]["accuracy"],
        "epochs_run": len(bundle.history["loss"]),
    }))
    """
)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def write_csv(path: Path, n: int, seed: int) -> Path:
    texts, labels = make_sentences(n, seed)
    path.write_text("text,label\n" + "".join(f"{t},{'positive' if y else 'negative'}\n" for t, y in zip(texts, labels)))
    return path


def run_cluster(tmp_path: Path, settings: dict, workers: int = 2, crash_at: int | None = None) -> list[dict]:
    """Start `workers` processes with TF_CONFIG naming each one's place; wait for all; parse their results.

    With `crash_at`, every worker stops at the start of that epoch (status 3) and None is returned.
    """
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(workers)]}
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    procs = []
    for index in range(workers):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            "TMPDIR": str(scratch),  # where a non-chief worker's throwaway copy goes
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": "",
        }
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(settings), json.dumps(crash_at)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    results = []
    for index, proc in enumerate(procs):
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail(f"worker {index} did not finish in 300 s")
        assert proc.returncode == (0 if crash_at is None else 3), f"worker {index} failed:\n{err[-3000:]}"
        if crash_at is not None:
            continue
        line = next(l for l in out.splitlines() if l.startswith("RESULT "))
        results.append(json.loads(line[len("RESULT "):]))
    assert not any(scratch.iterdir()), f"temporary files left behind: {list(scratch.iterdir())}"
    return results or None


@pytest.mark.slow
def test_two_workers_train_the_same_model_and_only_the_chief_writes_it(tmp_path):
    from textpipe.bundle import load_bundle
    from textpipe.data import load_labeled_data

    dataset = write_csv(tmp_path / "train.csv", 480, seed=1)
    output = tmp_path / "model"
    settings = {**TINY_SETTINGS, "epochs": 6, "patience": 0, "strategy": "multiworker", "dataset": str(dataset),
                "output": str(output), "backup_dir": str(tmp_path / "backup")}
    chief, worker = run_cluster(tmp_path, settings)

    assert (chief["chief"], worker["chief"]) == (True, False)
    # All-reduced gradients keep the replicas in lockstep; the vocabulary was adapted on each worker alike.
    assert chief["vocabulary"] == worker["vocabulary"]
    assert chief["weights"] == worker["weights"]
    assert chief["accuracy"] > 0.8, chief

    bundle = load_bundle(output)  # the chief's bundle, the only one
    assert bundle.config.strategy == "multiworker"
    assert not any((tmp_path / "backup").iterdir())  # each worker deletes its backup when training ends
    data = load_labeled_data(str(dataset), seed=settings["seed"])
    accuracy = float(np.mean(bundle.predict(data.validation.texts) == np.array(data.class_names)[data.validation.labels]))
    assert accuracy == pytest.approx(chief["accuracy"])


@pytest.mark.slow
def test_a_restarted_cluster_resumes_from_the_workers_backups(tmp_path):
    dataset = write_csv(tmp_path / "train.csv", 480, seed=1)
    backup = tmp_path / "backup"
    settings = {**TINY_SETTINGS, "epochs": 6, "patience": 0, "strategy": "multiworker", "dataset": str(dataset),
                "output": str(tmp_path / "model"), "backup_dir": str(backup)}
    assert run_cluster(tmp_path, settings, crash_at=4) is None
    assert sorted(p.name for p in backup.iterdir()) == ["worker-0", "worker-1"]  # one backup per worker
    assert not (tmp_path / "model").exists()

    chief, worker = run_cluster(tmp_path, settings)  # restarted: epochs 5 and 6 are left
    assert chief["epochs_run"] == worker["epochs_run"] == 2
    assert chief["weights"] == worker["weights"]
    assert chief["accuracy"] > 0.8, chief
    assert not any(backup.iterdir())


@pytest.mark.slow
def test_cli_multiworker_without_tf_config_is_a_cluster_of_one(tmp_path):
    dataset = write_csv(tmp_path / "train.csv", 240, seed=2)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    args = ["--dataset", str(dataset), "--output", str(tmp_path / "model"), "--backup-dir", str(tmp_path / "backup"),
            "--strategy", "multiworker", "--epochs", "2", "--vocab-size", "64", "--sequence-length", "16",
            "--embedding-dim", "8", "--lstm-units", "8"]
    proc = subprocess.run([sys.executable, "-m", "textpipe", "train", *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"bundle saved to {tmp_path / 'model'}" in proc.stdout
    assert (tmp_path / "model" / "model.keras").is_file() and not any((tmp_path / "backup").iterdir())

    env["TF_CONFIG"] = '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}'
    proc = subprocess.run([sys.executable, "-m", "textpipe", "train", *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "TF_CONFIG's task worker:3 is not in its cluster" in proc.stderr
