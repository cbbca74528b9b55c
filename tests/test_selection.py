"""Choosing what a run ends with: the best epoch by validation macro F1, presets, settings from the data."""

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import f1_score

from conftest import TINY_SETTINGS
from textpipe.bundle import load_bundle, save_bundle
from textpipe.cli import main
from textpipe.config import Config, load_config
from textpipe.errors import ConfigError
from textpipe.metrics import MacroF1
from textpipe.presets import (
    ADVERSARIAL_FRACTION,
    ADVERSARIAL_MIN_TEXTS,
    MAX_AUTO_LENGTH,
    MIN_WORD_COUNT,
    SKIPGRAM_MIN_COUNT,
    auto_settings,
    min_word_count,
    resolve_auto,
    words,
)
from textpipe.training import train


@pytest.mark.parametrize("n_classes", [2, 4])
def test_macro_f1_matches_scikit_learn_over_several_batches(n_classes):
    rng = np.random.default_rng(n_classes)
    labels = rng.integers(0, n_classes, size=300)
    labels[labels == n_classes - 1] = 0  # one class never present: it counts as 0, as in evaluate()
    if n_classes == 2:
        probabilities = rng.random((300, 1)).astype(np.float32)
        predicted = (probabilities[:, 0] > 0.5).astype(int)
    else:
        probabilities = rng.dirichlet(np.ones(n_classes), size=300).astype(np.float32)
        predicted = probabilities.argmax(axis=1)
    metric = MacroF1(n_classes)
    for start in range(0, 300, 64):
        metric.update_state(labels[start:start + 64], probabilities[start:start + 64])
    expected = f1_score(labels, predicted, labels=list(range(n_classes)), average="macro", zero_division=0)
    assert abs(float(metric.result()) - expected) < 1e-6
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_training_keeps_its_best_epoch_and_stops_after_patience(tiny_data):
    # Flipped validation labels: the better the model learns train, the worse it does on validation, so the
    # best epoch is an early one and training stops `patience` epochs after it.
    flipped = dataclasses.replace(tiny_data.validation, labels=1 - tiny_data.validation.labels)
    data = dataclasses.replace(tiny_data, validation=flipped)
    bundle = train(Config(**{**TINY_SETTINGS, "epochs": 12, "patience": 2}), data)
    scores = bundle.history["val_macro_f1"]
    best = int(np.argmax(scores))  # the first of equal scores
    assert len(scores) == best + 3 < 12
    assert bundle.kept_epoch == {"epoch": best + 1, "last_epoch": best + 3, "selected_by": "val_macro_f1",
                                 "stopped_early": True, "score": scores[best]}
    # The weights kept are that epoch's: the model scores the same macro F1 on validation again.
    assert abs(bundle.metrics["validation"]["macro_f1"] - scores[best]) < 1e-6


def test_without_patience_every_epoch_runs_and_the_last_can_be_kept(tiny_data):
    bundle = train(Config(**{**TINY_SETTINGS, "epochs": 3, "patience": 0, "keep_best_epoch": False}), tiny_data)
    assert len(bundle.history["loss"]) == 3
    assert bundle.kept_epoch["epoch"] == 3 and bundle.kept_epoch["selected_by"] == "last epoch"
    assert abs(bundle.metrics["validation"]["macro_f1"] - bundle.history["val_macro_f1"][-1]) < 1e-6



@pytest.mark.parametrize("keep_best_epoch", [True, False])
def test_averaged_weights_are_the_ones_validated_kept_and_saved(tiny_data, tmp_path, keep_best_epoch):
    # Flipped validation labels stop training early, where fit() alone would end with the last step's weights.
    flipped = dataclasses.replace(tiny_data.validation, labels=1 - tiny_data.validation.labels)
    data = dataclasses.replace(tiny_data, validation=flipped)
    settings = {**TINY_SETTINGS, "epochs": 12, "patience": 2, "average_weights": True, "keep_best_epoch": keep_best_epoch}
    bundle = train(Config(**settings), data)
    scores = bundle.history["val_macro_f1"]
    assert bundle.kept_epoch["stopped_early"] and len(scores) < 12
    kept = int(np.argmax(scores)) if keep_best_epoch else len(scores) - 1
    assert bundle.kept_epoch["epoch"] == kept + 1
    # The model ends with the weights that scored the kept epoch's validation macro F1: the averaged ones.
    assert abs(bundle.metrics["validation"]["macro_f1"] - scores[kept]) < 1e-6
    reloaded = load_bundle(save_bundle(bundle, tmp_path / "m"))
    assert reloaded.config.average_weights
    np.testing.assert_allclose(reloaded.predict_proba(data.test.texts), bundle.predict_proba(data.test.texts), atol=1e-6)


def test_averaged_weights_learn_and_differ_from_the_last_step(tiny_data):
    settings = {**TINY_SETTINGS, "patience": 0, "keep_best_epoch": False}
    plain = train(Config(**settings), tiny_data)
    averaged = train(Config(**settings, average_weights=True), tiny_data)
    # Same seed and data: only the averaging differs, and the averaged model still learns the task.
    assert not np.allclose(averaged.predict_proba(tiny_data.test.texts), plain.predict_proba(tiny_data.test.texts))
    assert averaged.metrics["validation"]["accuracy"] > 0.75


def test_average_weights_flag_is_said_and_saved_with_the_bundle(tiny_data, tmp_path, capsys):
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f"{t},{l}\n" for t, l in zip(tiny_data.train.texts, tiny_data.train.labels)))
    status = main(["train", "--dataset", str(data), "--average-weights", "--epochs", "1", "--embedding-dim", "8",
                   "--lstm-units", "8", "--vocab-size", "64", "--output", str(tmp_path / "m")])
    assert status == 0 and load_bundle(tmp_path / "m").config.average_weights
    assert "classifier: lstm, at most 1 epoch, its weights averaged over the last steps" in capsys.readouterr().out
    status = main(["train", "--dataset", str(data), "--model", "conv1d", "--no-average-weights", "--epochs", "1",
                   "--sequence-length", "19", "--vocab-size", "64", "--word-vector-dim", "8", "--skipgram-epochs", "1",
                   "--output", str(tmp_path / "c")])
    assert status == 0 and load_bundle(tmp_path / "c").config.average_weights is False
    assert "averaged" not in capsys.readouterr().out


def test_kept_epoch_survives_a_save(tiny_bundle, tmp_path):
    reloaded = load_bundle(save_bundle(tiny_bundle, tmp_path / "m"))
    assert reloaded.kept_epoch == tiny_bundle.kept_epoch and reloaded.kept_epoch["epoch"] >= 1


def test_presets_fill_only_the_settings_not_given(tmp_path):
    seed = Config()
    assert (seed.preset, seed.vocab_size, seed.sequence_length, seed.batch_size, seed.epochs) == ("seed", 1024, 64, 16, 10)
    accurate = Config(preset="accurate")
    assert (accurate.vocab_size, accurate.sequence_length, accurate.batch_size) == ("auto", "auto", 32)
    assert (seed.lstm_pooling, accurate.lstm_pooling) == ("last", "max")
    assert (seed.ngrams, accurate.ngrams) == (False, True)
    # A setting the preset gives per model: the seed preset averages the conv1d model's weights, not the lstm's.
    conv1d = Config(model="conv1d")
    assert (seed.average_weights, conv1d.average_weights, accurate.average_weights) == (False, True, False)
    # The accurate preset's conv1d model trains as the seed preset's does: batches of 16, weights averaged.
    accurate_conv1d = Config(model="conv1d", preset="accurate")
    assert (accurate_conv1d.batch_size, accurate_conv1d.average_weights) == (16, True)
    assert Config(model="conv1d", average_weights=False).average_weights is False
    assert Config.from_dict(conv1d.to_dict()) == conv1d
    with pytest.raises(ConfigError, match="model must be one of lstm, conv1d, got 'cnn'"):
        Config(model="cnn")
    # A value given explicitly wins, even when it is the seed's own.
    assert Config(preset="accurate", sequence_length=64).sequence_length == 64
    assert Config(preset="accurate", lstm_pooling="last").lstm_pooling == "last"
    assert Config(preset="accurate", ngrams=False).ngrams is False
    path = tmp_path / "settings.toml"
    path.write_text('preset = "accurate"\nbatch_size = 16\n')
    from_file = load_config(path, {"vocab_size": 1024})
    assert (from_file.batch_size, from_file.vocab_size, from_file.sequence_length) == (16, 1024, "auto")
    assert Config.from_dict(accurate.to_dict()) == accurate
    with pytest.raises(ConfigError, match="preset must be one of seed, accurate"):
        Config(preset="fast")
    with pytest.raises(ConfigError, match="sequence_length must be a number or 'auto'"):
        Config(sequence_length="long")


def test_auto_settings_follow_the_training_texts():
    texts = ["Alpha, beta!"] * 17 + ["gamma " * 20, "delta " * 300, "once"]
    assert words(texts[0]) == ["alpha", "beta"]
    lstm = auto_settings(texts, "lstm")
    # alpha, beta, gamma, delta are seen twice or more; "once" is not. Plus padding and [UNK].
    assert lstm["vocab_size"] == 6
    # 19 of the 20 texts (95%) have at most 20 words: rounded up to a multiple of 8.
    assert lstm["sequence_length"] == 24
    assert auto_settings(texts + ["gamma " * 25], "lstm")["sequence_length"] == 32  # 20 of 21: rounded up
    assert auto_settings(["word " * 5000] * 3, "lstm")["sequence_length"] == MAX_AUTO_LENGTH["lstm"] == 32
    assert auto_settings(["word " * 5000] * 3, "conv1d")["sequence_length"] == 512  # the conv1d model's cap
    assert auto_settings(["a b", "a b"], "conv1d")["sequence_length"] == 19  # the conv1d stack's minimum
    # The conv1d model's window holds the longest text; a higher min_count keeps fewer words.
    conv1d = auto_settings(texts, "conv1d", min_count=18)
    assert conv1d["sequence_length"] == 304  # "delta " * 300, rounded up to a multiple of 8
    assert conv1d["vocab_size"] == 4  # gamma and delta (20 and 300 times); not alpha and beta (17 each)


def test_conv1d_learning_its_word_vectors_keeps_words_seen_five_times():
    texts = ["rare " * 4 + "common " * 5 + "once", "filler text", "filler text"]
    assert min_word_count(Config(model="conv1d")) == SKIPGRAM_MIN_COUNT == 5
    assert min_word_count(Config(model="lstm")) == MIN_WORD_COUNT == 2
    # Vectors read from a file or learned from more text than the training texts: words seen twice.
    assert min_word_count(Config(model="conv1d", word_vectors="glove.txt")) == MIN_WORD_COUNT
    assert min_word_count(Config(model="conv1d", unlabeled="more.txt")) == MIN_WORD_COUNT
    conv1d = resolve_auto(Config(model="conv1d", preset="accurate"), texts)
    lstm = resolve_auto(Config(model="lstm", preset="accurate"), texts)
    # conv1d: common (5 times) only; lstm: also rare (4), filler and text (2). Plus padding and [UNK].
    assert (conv1d.vocab_size, lstm.vocab_size) == (3, 6)


def test_resolve_auto_reads_each_text_once(monkeypatch):
    import textpipe.presets as presets

    texts = ["a short one", "and another short one"] * ADVERSARIAL_MIN_TEXTS
    read = []
    monkeypatch.setattr(presets, "words", lambda text: read.append(text) or text.split())
    config = resolve_auto(Config(preset="accurate"), texts)
    assert len(read) == len(texts)  # one pass chooses the vocabulary, the length and adversarial training
    assert (config.vocab_size, config.sequence_length, config.adversarial) == (7, 8, ADVERSARIAL_FRACTION["lstm"])


@pytest.mark.slow
def test_accurate_preset_resolves_auto_from_the_data_and_saves_numbers(tiny_data, tmp_path, capsys):
    settings = {k: v for k, v in TINY_SETTINGS.items() if k not in ("vocab_size", "sequence_length")}
    bundle = train(Config(**{**settings, "preset": "accurate", "epochs": 2}), tiny_data)
    expected = auto_settings(tiny_data.train.texts, "lstm")
    assert bundle.config.vocab_size == expected["vocab_size"] == bundle.vocabulary_size
    assert bundle.config.sequence_length == expected["sequence_length"] == 16  # texts of up to 12 words
    assert bundle.config.ngrams and 0 <= bundle.ngrams["network_weight"] <= 1  # the n-gram model's mix
    # A warm start takes the starting bundle's numbers: its weights are shaped by them.
    again = train(Config(**{**settings, "preset": "accurate", "epochs": 1}), tiny_data, warm_start=bundle)
    assert (again.config.vocab_size, again.config.sequence_length) == (expected["vocab_size"], 16)

    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f"{t},{l}\n" for t, l in zip(tiny_data.train.texts, tiny_data.train.labels)))
    status = main(["train", "--dataset", str(data), "--preset", "accurate", "--sequence-length", "12", "--no-ngrams",
                   "--epochs", "2", "--embedding-dim", "8", "--lstm-units", "8", "--output", str(tmp_path / "m")])
    out = capsys.readouterr().out
    assert status == 0 and "kept epoch" in out and "n-gram" not in out
    reloaded = load_bundle(tmp_path / "m")
    saved = reloaded.config
    assert (saved.preset, saved.sequence_length, saved.batch_size, saved.ngrams) == ("accurate", 12, 32, False)
    assert not reloaded.ngrams and reloaded.network is reloaded.classifier
    # Chosen from the 90% of the file left for training once validation is carved out.
    assert isinstance(saved.vocab_size, int) and 3 < saved.vocab_size <= expected["vocab_size"]
