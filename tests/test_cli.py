import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from textpipe.bundle import load_bundle
from textpipe.cli import main


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(err):
    lines = [line for line in err.splitlines() if line.startswith("textpipe:")]
    assert len(lines) == 1, err
    return lines[0]


def write_reviews(folder, n_train=300):
    from conftest import make_sentences

    folder.mkdir()
    for split, n, seed in [("train", n_train, 11), ("test", 60, 12)]:
        texts, labels = make_sentences(n, seed)
        names = ["bad" if y == 0 else "good" for y in labels]
        pd.DataFrame({"review": texts, "sentiment": names}).to_csv(folder / f"{split}.csv", index=False)
    return folder


def test_train_evaluate_predict_from_the_command_line(tmp_path, capsys, monkeypatch):
    data = write_reviews(tmp_path / "reviews")
    settings = tmp_path / "settings.toml"
    settings.write_text("vocab_size = 64\nsequence_length = 16\nembedding_dim = 16\nlstm_units = 16\nepochs = 2\n")
    out_dir = tmp_path / "bundle"
    monkeypatch.chdir(tmp_path)
    status, out, err = run(
        capsys, "train", "--dataset", "reviews", "--config", settings, "--epochs", 6, "--batch-size", 16,
        "--output", out_dir, "--seed", 3, "--log-dir", tmp_path / "logs",
    )
    assert status == 0, err
    assert "270 train, 30 validation (carved from train)" in out
    assert "classes: bad, good; columns: 'review', 'sentiment'" in out
    assert f"bundle saved to {out_dir}" in out
    bundle = load_bundle(out_dir)
    assert bundle.config.epochs == 6  # the flag beat the file
    assert bundle.config.vocab_size == 64  # the file beat the default
    assert len(bundle.history["loss"]) == 6
    assert list((tmp_path / "logs").rglob("events.out.tfevents.*"))  # TensorBoard logs
    assert bundle.config.dataset == str(data)  # the relative path given, recorded absolute

    # Defaults to the training data's test split, read from wherever evaluate runs: here a folder with a
    # different reviews/ in it, which must not be read instead.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_reviews(elsewhere / "reviews", n_train=20)
    (elsewhere / "reviews" / "test.csv").write_text("review,sentiment\nthe film,good\n")
    monkeypatch.chdir(elsewhere)
    status, out, err = run(capsys, "evaluate", out_dir, "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["n"] == 60
    assert result["accuracy"] > 0.75
    assert {"accuracy", "macro_f1", "n", "confusion_matrix"} <= set(result)

    status, out, err = run(capsys, "evaluate", out_dir, "--dataset", data, "--split", "test")
    assert status == 0 and "accuracy" in out and "confusion matrix" in out

    status, out, err = run(capsys, "predict", out_dir, "the film was lovely", "a dreadful show")
    assert status == 0, err
    labels = [line.split("\t")[0] for line in out.splitlines()]
    assert labels == ["good", "bad"]

    # A tab or a line break in a text stays inside its one field of its one line.
    status, out, err = run(capsys, "predict", out_dir, "lovely\tfilm", "a dreadful\nshow", "c:\\new")
    assert status == 0, err
    assert [line.split("\t")[2] for line in out.splitlines()] == ["lovely\\tfilm", "a dreadful\\nshow", "c:\\\\new"]
    assert [len(line.split("\t")) for line in out.splitlines()] == [3, 3, 3]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--dataset", "{tmp}/missing-folder"], "no such file or folder"),
        (["train", "--dataset", "{tmp}/data", "--text-column", "body"], "no column 'body'"),
        (["train", "--dataset", "{tmp}/data", "--epochs", "0"], "epochs must be at least 1"),
        (["train", "--config", "{tmp}/nope.toml"], "config file not found"),
        (["train", "--strategy", "tpu", "--mixed-precision"], "strategy must be one of auto, default, mirrored"),
        (["train", "--lstm-pooling", "mean"], "lstm_pooling must be one of last, max, got 'mean'"),
        (["train", "--vocabulary", "rare"], "vocabulary must be one of frequent, informative, got 'rare'"),
        (["evaluate", "{tmp}/no-bundle"], "no model bundle at"),
        (["train", "--dataset", "{tmp}/data", "--output", "{tmp}/data"], "not a textpipe bundle; refusing"),
        (["predict", "{tmp}/no-bundle", "hello"], "no model bundle at"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    write_reviews(tmp_path / "data", n_train=20)
    status, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert status == 2
    line = one_line_error(err)
    assert line.startswith("textpipe: error: ") and message in line


def test_evaluate_on_a_split_that_does_not_exist(saved_bundle, tmp_path, capsys):
    write_reviews(tmp_path / "data", n_train=20)
    status, _, err = run(capsys, "evaluate", saved_bundle, "--dataset", tmp_path / "data", "--split", "validation")
    assert status == 2
    assert "no split 'validation'" in one_line_error(err)


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--epochs", "many"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_unexpected_errors_exit_1(monkeypatch, capsys, saved_bundle):
    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr("textpipe.bundle.load_bundle", broken)
    status, _, err = run(capsys, "predict", saved_bundle, "hi")
    assert status == 1
    assert "unexpected error: RuntimeError: something inside broke" in one_line_error(err)


def test_installed_command_and_unreachable_hub(tmp_path):
    """`python -m textpipe` works, and a Hub id without network fails fast with advice, not a traceback."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-m", "textpipe", "train", "--dataset", "some-user/some-dataset"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    line = one_line_error(proc.stderr)
    assert "some-user/some-dataset" in line and "local folder or file" in line
    assert not (tmp_path / "textpipe-model").exists()


def test_the_spellings_of_training_switches_reach_the_settings():
    from textpipe.cli import build_parser
    from textpipe.config import load_config

    def settings(*flags):
        args = build_parser().parse_args(["train", *flags])
        return load_config(args.config, {name: getattr(args, name) for name in args.config_fields})

    plain = settings()
    assert (plain.patience, plain.keep_best_epoch, plain.fine_tune_word_vectors) == (3, True, True)
    switched = settings("--patience", "off", "--keep-last-epoch", "--freeze-word-vectors", "--no-ngrams")
    assert (switched.patience, switched.keep_best_epoch, switched.fine_tune_word_vectors) == (0, False, False)
    assert not switched.ngrams and settings("--preset", "accurate").ngrams
    assert not settings("--preset", "accurate", "--no-ngrams").ngrams  # a flag wins over the preset


def test_an_interrupted_command_exits_130_with_one_line(monkeypatch, capsys):
    import textpipe.cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(textpipe.cli, "run_predict", interrupted)
    assert main(["predict", "any-bundle", "a text"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "textpipe: interrupted\n" and captured.out == ""
