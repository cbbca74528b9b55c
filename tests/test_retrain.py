"""scripts/retrain.py and textpipe.retrain: train, judge, promote atomically, resume, lock, roll back.

Most tests share one history (weak model promoted, strong warm-started model promoted, weak model kept)
and work on copies of it, so the file trains only a handful of tiny models.
"""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import types
from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import TINY_SETTINGS, make_sentences
import textpipe.retrain as rt
from textpipe.bundle import load_bundle
from textpipe.cli import main

ROOT = Path(__file__).resolve().parents[1]
WEAK = {**TINY_SETTINGS, "epochs": 1, "learning_rate": 1e-6}
STRONG = {**TINY_SETTINGS, "epochs": 5, "patience": 0}  # every epoch: the tests count them
NAMES = ("negative", "positive")


def write_csv(path, texts, labels):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels))


def write_dataset(folder, sizes=(("train", 300), ("validation", 100), ("test", 200)), seed=10, suffix=""):
    for i, (split, n) in enumerate(sizes):
        texts, labels = make_sentences(n, seed + i)
        write_csv(folder / f"{split}.csv", [t + suffix for t in texts], [NAMES[y] for y in labels])


def toml_value(value):
    return json.dumps(value)  # strings, numbers, booleans and lists of strings read the same in TOML


def write_toml(path, data=None, model=None, promotion=None, extra=""):
    sections = {
        "data": {"sources": ["data/reviews", "data/extra.csv"], "eval_split": "test"} if data is None else data,
        "model": WEAK if model is None else model,
        "promotion": {"production": "models/sentiment", "metric": "accuracy", "margin": 0.002, "keep": 5}
        if promotion is None else promotion,
    }
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def cli(*argv):
    return main(["retrain", *(str(a) for a in argv)])


def run_and_report(production, *argv):
    """Exit status and the report the run wrote (the one new file in the reports folder)."""
    reports = rt.versions_dir(production) / "reports"
    before = set(reports.glob("*.json")) if reports.is_dir() else set()
    status = cli(*argv)
    (new,) = set(reports.glob("*.json")) - before
    return status, json.loads(new.read_text())


def snapshot(production):
    """Every byte production serves, and where its link points."""
    real = production.resolve()
    files = {str(p.relative_to(real)): p.read_bytes() for p in sorted(real.rglob("*")) if p.is_file()}
    return {"link": os.readlink(production) if production.is_symlink() else None, "files": files}


def copy_root(history, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(history.root, root, symlinks=True)
    return root, root / "models" / "sentiment"


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrain")
    write_dataset(root / "data" / "reviews")
    texts, labels = make_sentences(80, 20)
    write_csv(root / "data" / "extra.csv", texts, [NAMES[y] for y in labels])
    production = root / "models" / "sentiment"
    weak, strong = write_toml(root / "weak.toml"), write_toml(root / "strong.toml", model=STRONG)
    sample = make_sentences(40, 99)[0]
    h = types.SimpleNamespace(root=root, production=production, weak=weak, strong=strong, sample=sample)

    h.first_status, h.first = run_and_report(production, "--config", weak)
    h.first_versions = [v.name for v in rt.list_versions(production)]
    h.weak_probabilities = load_bundle(production).predict_proba(sample)
    h.second_status, h.second = run_and_report(production, "--config", strong, "--warm-start")
    h.before_worse = snapshot(production)
    h.worse_status, h.worse = run_and_report(production, "--config", weak)
    h.after_worse = snapshot(production)
    return h


def test_first_run_promotes_into_an_empty_production(history):
    assert history.first_status == 0
    assert history.first["decision"] == "promoted" and "no production bundle" in history.first["reason"]
    assert history.first_versions == [history.first["version"]]
    assert history.production.is_symlink()  # swapped by os.replace: always a complete bundle


def test_better_candidate_is_promoted_and_warm_started(history):
    report = history.second
    assert history.second_status == 0 and report["decision"] == "promoted" and report["version"].startswith("0002-")
    assert report["warm_start"] == {"requested": True, "used": True, "reason": None}
    assert rt.current_version(history.production) == report["version"]
    assert load_bundle(history.production).metrics["retrain"]["metrics"]["accuracy"] > 0.9


def test_worse_candidate_is_not_promoted_and_production_is_byte_identical(history):
    assert history.worse_status == 3
    assert history.worse["decision"] == "kept" and "<" in history.worse["reason"]
    assert history.after_worse == history.before_worse
    versions = [v.name for v in rt.list_versions(history.production)]
    assert versions == [history.first["version"], history.second["version"]]
    assert not history.production.with_name("sentiment.work").exists()
    assert not history.production.with_name("sentiment.lock").exists()


def test_report_fields(history):
    report = history.second
    assert report["report"].endswith(f"reports/{report['run']}.json")
    assert report["sources"] == [
        {"source": "data/reviews", "train": 300, "validation": 100, "validation_from_train": False, "eval": 200},
        {"source": "data/extra.csv", "train": 72, "validation": 8, "validation_from_train": True, "eval": 0},
    ]
    assert report["settings"]["model"]["epochs"] == 5 and report["settings"]["metric"] == "accuracy"
    assert report["settings"]["warm_start"] and not report["settings"]["dry_run"]
    assert report["candidate"]["metrics"]["n"] == 200 and report["production"]["metrics"]["n"] == 200
    assert report["production"] == {"path": str(history.production), "found": True,
                                    "version": history.first["version"], "metrics": report["production"]["metrics"]}
    assert report["candidate"]["metrics"]["accuracy"] > report["production"]["metrics"]["accuracy"]
    assert len(report["candidate"]["history"]["loss"]) == 5
    assert report["resume"] == {"started_at_epoch": 0, "epochs_run": 5, "reused_candidate": False}
    assert set(report["durations"]) == {"load_production", "load_data", "train", "evaluate", "promote", "total"}
    assert report["error"] is None and report["started"] <= report["finished"]


@pytest.mark.slow  # two trainings, one killed part way
def test_killed_run_leaves_production_intact_and_resumes_from_its_last_epoch(history, tmp_path, monkeypatch):
    root, production = copy_root(history, tmp_path)
    config = write_toml(root / "resume.toml", model={**STRONG, "epochs": 4, "seed": 3})
    work, lock = root / "models" / "sentiment.work", root / "models" / "sentiment.lock"
    before = snapshot(production)

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rt.retrain(rt.load_settings(config), callbacks=[Kill()])
    assert snapshot(production) == before
    assert work.is_dir() and not lock.exists()

    # As if the killed run had died without releasing its lock: a lock of a pid that is gone.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock.write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(), "started": "earlier"}))
    # This run finishes training, then is interrupted before it decides.
    with monkeypatch.context() as patch:
        patch.setattr(rt, "_decide", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt))
        status, report = run_and_report(production, "--config", config)
    assert status == 130 and report["decision"] == "interrupted"
    assert report["resume"] == {"started_at_epoch": 2, "epochs_run": 2, "reused_candidate": False}
    assert len(report["candidate"]["history"]["loss"]) == 4
    assert report["lock_taken_over"]["pid"] == gone.pid
    assert snapshot(production) == before

    status, report = run_and_report(production, "--config", config)  # reuses the trained candidate
    assert status in (0, 3) and report["resume"]["reused_candidate"] and report["resume"]["epochs_run"] == 0
    assert len(report["candidate"]["history"]["loss"]) == 4
    assert not lock.exists() and not work.exists()


def test_dry_run_with_an_unusable_warm_start_records_why_and_changes_nothing(history, tmp_path):
    root, production = copy_root(history, tmp_path)
    # Fewer LSTM units: production's weights have other shapes, so they cannot seed this model.
    config = write_toml(root / "other.toml", model={**STRONG, "epochs": 2, "lstm_units": 8})
    before, versions = snapshot(production), rt.list_versions(production)
    status, report = run_and_report(production, "--config", config, "--dry-run", "--warm-start")
    assert status == 3 and report["decision"] == "dry run" and report["would_promote"] is False
    assert report["warm_start"]["used"] is False and "lstm_units" in report["warm_start"]["reason"]
    assert snapshot(production) == before and rt.list_versions(production) == versions


def test_a_dry_run_exits_with_the_decision_it_would_make(history, tmp_path, capsys):
    root, _ = copy_root(history, tmp_path)
    promotion = {"production": "models/fresh", "metric": "accuracy", "margin": 0.002, "keep": 5}
    config = write_toml(root / "fresh.toml", promotion=promotion)
    capsys.readouterr()
    status, report = run_and_report(root / "models" / "fresh", "--config", config, "--dry-run")
    assert status == 0 and report["decision"] == "dry run" and report["would_promote"] is True
    assert "dry run, would promote: no production bundle" in capsys.readouterr().out
    assert not (root / "models" / "fresh").exists()


def test_rollback_restores_the_previous_versions_predictions(history, tmp_path):
    root, production = copy_root(history, tmp_path)
    status, report = run_and_report(production, "--config", root / "strong.toml", "--rollback")
    assert status == 0 and report["decision"] == "rolled back"
    assert rt.current_version(production) == history.first["version"]
    np.testing.assert_array_equal(load_bundle(production).predict_proba(history.sample), history.weak_probabilities)
    status, report = run_and_report(production, "--config", root / "strong.toml", "--rollback")
    assert status == 2 and "no earlier version" in report["error"]


def test_rollback_keeps_a_plain_folder_production_as_a_version(history, tmp_path):
    root, production = copy_root(history, tmp_path)
    plain = production.with_name("plain")
    shutil.copytree(production.resolve(), plain)
    production.unlink()
    plain.rename(production)  # as `textpipe train --output models/sentiment` would leave it
    assert cli("--config", root / "strong.toml", "--rollback") == 0
    # The plain folder is newer than every version: the previous one is the last promoted.
    assert rt.current_version(production) == history.second["version"]
    names = [v.name for v in rt.list_versions(production)]
    assert len(names) == 3 and names[:2] == [history.first["version"], history.second["version"]]


def test_promoting_over_a_plain_folder_keeps_it_as_the_previous_version(history, tmp_path):
    root, production = copy_root(history, tmp_path)
    first, second = rt.list_versions(production)
    shutil.copytree(second, production.with_name("plain"))
    production.unlink()
    production.with_name("plain").rename(production)
    name = rt._promote(production, load_bundle(first))
    adopted, promoted = rt.list_versions(production)[2:]
    assert promoted.name == name == rt.current_version(production)
    assert (adopted / "model.keras").read_bytes() == (second / "model.keras").read_bytes()
    assert cli("--config", root / "strong.toml", "--rollback") == 0
    assert rt.current_version(production) == adopted.name


def test_prune_keeps_the_current_and_the_newest_earlier_versions(tmp_path):
    production = tmp_path / "p"
    names = [f"{i:04d}-20250101T00000{i}Z" for i in range(1, 6)]
    for name in names:
        (tmp_path / "p.versions" / name).mkdir(parents=True)
    production.symlink_to(Path("p.versions") / names[2])
    assert rt.prune_versions(production, keep=2) == names[:2]
    assert [v.name for v in rt.list_versions(production)] == names[2:]
    assert rt.prune_versions(production, keep=0) == names[3:]
    assert [v.name for v in rt.list_versions(production)] == [names[2]]


def test_a_held_lock_refuses_a_second_run(tmp_path, capsys):
    config = write_toml(tmp_path / "retrain.toml")
    lock = tmp_path / "models" / "sentiment.lock"
    lock.parent.mkdir()
    held = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "now"})
    lock.write_text(held)
    assert cli("--config", config) == 1
    err = capsys.readouterr().err
    assert f"pid {os.getpid()}" in err and "sentiment.lock" in err
    assert lock.read_text() == held and not (tmp_path / "models" / "sentiment").exists()


@pytest.mark.parametrize(
    "sections, named",
    [
        ({"model": {**WEAK, "colour": "red"}}, "colour"),
        ({"model": {**WEAK, "epochs": "10"}}, "epochs"),
        ({"model": {"dataset": "imdb"}}, "dataset"),
        ({"promotion": {"metric": "accuracy"}}, "production"),
        ({"promotion": {"production": "m", "kep": 5}}, "kep"),
        ({"promotion": {"production": "m", "keep": "5"}}, "keep"),
        ({"promotion": {"production": "m", "metric": "f1"}}, "metric"),
        ({"data": {"sources": "imdb"}}, "sources"),
        ({"extra": "[extras]\nx = 1\n"}, "extras"),
    ],
)
def test_config_errors_exit_2_naming_the_key(tmp_path, capsys, sections, named):
    extra = sections.pop("extra", "")
    config = write_toml(tmp_path / "retrain.toml", extra=extra, **sections)
    assert cli("--config", config) == 2
    err = capsys.readouterr().err
    assert err.startswith("retrain: error:") and (repr(named) in err or f" {named} " in err), err
    assert len(err.strip().splitlines()) == 1


def test_sources_with_other_classes_are_refused(history, tmp_path, capsys):
    texts, labels = make_sentences(40, 5)
    write_csv(tmp_path / "data" / "stars.csv", texts, ["bad"] * 20 + ["good"] * 20)
    shutil.copytree(history.root / "data" / "reviews", tmp_path / "data" / "reviews")
    config = write_toml(tmp_path / "retrain.toml", data={"sources": ["data/reviews", "data/stars.csv"]})
    assert cli("--config", config) == 2
    err = capsys.readouterr().err
    assert "negative, positive" in err and "bad, good" in err


def test_the_script_exits_2_on_a_bad_config(tmp_path):
    config = write_toml(tmp_path / "retrain.toml", model={"epochs": "ten"})
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "retrain.py"), "--config", str(config)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and "'epochs'" in done.stderr


def test_judged_on_the_validation_split_the_candidate_chooses_its_epoch_on_rows_of_train(tmp_path):
    # SST-2's case: its test split has no labels, so the models are judged on its validation split, here
    # named dev; the single file has no such split and adds training rows only.
    write_dataset(tmp_path / "data" / "reviews", sizes=(("train", 300), ("dev", 100)))
    texts, labels = make_sentences(80, 20)
    write_csv(tmp_path / "data" / "extra.csv", [t + " extra" for t in texts], [NAMES[y] for y in labels])
    config = write_toml(tmp_path / "retrain.toml",
                        data={"sources": ["data/reviews", "data/extra.csv"], "eval_split": "validation"})
    data, counts = rt.load_sources(rt.load_settings(config))
    judged, _ = make_sentences(100, 11)  # the dev split's texts
    assert list(data.test.texts) == judged
    assert not set(data.validation.texts) & set(judged)
    assert counts == [
        {"source": "data/reviews", "train": 270, "validation": 30, "validation_from_train": True, "eval": 100},
        {"source": "data/extra.csv", "train": 72, "validation": 8, "validation_from_train": True, "eval": 0},
    ]


def test_a_relative_source_is_read_beside_the_config_never_from_the_working_directory(tmp_path, monkeypatch, capsys):
    write_dataset(tmp_path / "work" / "data" / "reviews")  # where the job happens to start, not beside the config
    (tmp_path / "jobs" / "data").mkdir(parents=True)  # data/ is there, its reviews are not
    config = write_toml(tmp_path / "jobs" / "retrain.toml", data={"sources": ["data/reviews"], "eval_split": "test"})
    monkeypatch.chdir(tmp_path / "work")
    assert cli("--config", config) == 2
    err = capsys.readouterr().err
    assert f"no such file or folder: {tmp_path / 'jobs' / 'data' / 'reviews'}" in err
    assert f"relative sources are read from {tmp_path / 'jobs'}" in err
