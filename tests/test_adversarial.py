"""Adversarial training on the word vectors (models.AdversarialClassifier, --adversarial)."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_SETTINGS
from textpipe.config import Config
from textpipe.models import AdversarialClassifier, adversarial_push, build_model
from textpipe.presets import ADVERSARIAL_FRACTION, ADVERSARIAL_MIN_TEXTS, MAX_AUTO_LENGTH, resolve_auto


def test_the_push_follows_the_gradient_and_is_epsilon_times_the_rows_read():
    table = tf.constant(np.random.default_rng(0).normal(size=(6, 4)), tf.float32)
    # A gather's gradient: rows 1 and 3 read (3 twice, so its two parts add up); rows 0, 2, 4, 5 not read.
    values = tf.constant(np.random.default_rng(1).normal(size=(3, 4)), tf.float32)
    gradient = tf.IndexedSlices(values, tf.constant([1, 3, 3]), tf.constant([6, 4]))
    rows = adversarial_push(table, gradient, 0.25)
    assert sorted(rows.indices.numpy()) == [1, 3]  # each row read, once
    push = tf.convert_to_tensor(rows).numpy()
    dense = tf.convert_to_tensor(gradient).numpy()
    assert not push[[0, 2, 4, 5]].any()
    np.testing.assert_allclose(np.linalg.norm(push), 0.25 * np.linalg.norm(table.numpy()[[1, 3]]), rtol=1e-5)
    cosine = (push * dense).sum() / (np.linalg.norm(push) * np.linalg.norm(dense))
    assert cosine == pytest.approx(1.0, abs=1e-6)


def test_a_step_applies_the_gradients_at_the_batch_and_at_the_pushed_table():
    """With SGD at learning rate 1 and no dropout, one step moves every weight by minus the sum of the loss's
    gradients at the weights as they are and with the table pushed by adversarial_push."""
    config = Config(**{**TINY_SETTINGS, "dropout": 0.0, "adversarial": 0.3})
    model = build_model(config, 2)
    assert isinstance(model, AdversarialClassifier)
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x = np.zeros((8, 10), dtype=np.int64)
    for row, length in enumerate(rng.integers(1, 11, size=8)):
        x[row, :length] = rng.integers(2, config.vocab_size, size=length)
    y = rng.integers(0, 2, size=(8, 1)).astype(np.float32)
    table = model.get_layer("embedding").embeddings
    before = [v.numpy() for v in model.trainable_variables]
    loss = keras.losses.BinaryCrossentropy()

    def gradients():
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        return [tf.convert_to_tensor(g).numpy() for g in tape.gradient(value, model.trainable_variables)]

    clean = gradients()
    index = [i for i, v in enumerate(model.trainable_variables) if v is table][0]
    push = tf.convert_to_tensor(adversarial_push(tf.convert_to_tensor(table), clean[index], 0.3)).numpy()
    assert np.abs(push).sum() > 0
    table.assign(table.numpy() + push)
    pushed = gradients()
    table.assign(before[index])

    model.train_on_batch(x, y)
    for variable, start, a, b in zip(model.trainable_variables, before, clean, pushed):
        np.testing.assert_allclose(variable.numpy(), start - (a + b), rtol=1e-4, atol=1e-6)
    assert not np.allclose(clean[index], pushed[index])  # the push changed what the step learned


def test_the_first_plain_steps_push_nothing():
    """With SGD at learning rate 1 and no dropout, a step within plain_steps fits the unpushed batch twice (every
    weight moves by minus twice the loss's gradient); the next step pushes the table again."""
    config = Config(**{**TINY_SETTINGS, "dropout": 0.0, "adversarial": 0.3})
    model = build_model(config, 2)
    model.plain_steps = 1
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="binary_crossentropy")
    x = np.array([[5, 6, 7, 0], [8, 9, 0, 0], [10, 11, 12, 13]], dtype=np.int64)
    y = np.array([[1.0], [0.0], [1.0]], dtype=np.float32)
    loss = keras.losses.BinaryCrossentropy()

    def step_matches_twice_the_gradient():
        before = [v.numpy() for v in model.trainable_variables]
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        clean = [tf.convert_to_tensor(g).numpy() for g in tape.gradient(value, model.trainable_variables)]
        model.train_on_batch(x, y)
        return all(
            np.allclose(v.numpy(), start - 2 * g, rtol=1e-4, atol=1e-6)
            for v, start, g in zip(model.trainable_variables, before, clean)
        )

    assert step_matches_twice_the_gradient()
    assert not step_matches_twice_the_gradient()  # step 2: past plain_steps, the push is back


def test_train_trains_one_plain_epoch_only_when_the_word_vectors_start_random(tiny_data):
    from textpipe.training import train

    class PlainSteps(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(self.model.plain_steps)

    seen: list[int] = []
    settings = {**TINY_SETTINGS, "epochs": 1, "adversarial": 0.1}
    bundle = train(Config(**settings), tiny_data, callbacks=[PlainSteps()])
    assert seen == [len(tiny_data.train.texts) // TINY_SETTINGS["batch_size"]]  # 400 texts: 25 batches of 16
    train(Config(**settings), tiny_data, callbacks=[PlainSteps()], warm_start=bundle)
    conv1d = {**settings, "model": "conv1d", "sequence_length": 24, "skipgram_epochs": 1}
    train(Config(**conv1d), tiny_data, callbacks=[PlainSteps()])
    assert seen[1:] == [0, 0]  # a warm start's Embedding and the conv1d model's skip-gram table mean something


def test_each_pass_of_a_step_draws_its_own_dropout_masks():
    """The adversarial pass moves Dropout's seeds on too: a step advances them twice as far as a plain step."""
    x = np.array([[5, 6, 7, 0], [8, 9, 0, 0]], dtype=np.int64)
    y = np.array([[1.0], [0.0]], dtype=np.float32)
    advances = []
    for adversarial in (0.0, 0.3):
        model = build_model(Config(**TINY_SETTINGS, adversarial=adversarial), 2)
        before = [v.numpy() for v in model.non_trainable_variables]
        model.train_on_batch(x, y)
        advances.append(sum(np.abs(v.numpy() - b).sum() for v, b in zip(model.non_trainable_variables, before)))
    assert advances[0] > 0 and advances[1] == 2 * advances[0]


def test_trains_beats_chance_and_saves_a_plain_model(tiny_data, tmp_path):
    from textpipe.bundle import load_bundle, save_bundle
    from textpipe.training import train

    bundle = train(Config(**TINY_SETTINGS, adversarial=0.1), tiny_data)
    probabilities = bundle.predict_proba(tiny_data.test.texts)
    assert (probabilities.argmax(axis=1) == tiny_data.test.labels).mean() > 0.8
    path = save_bundle(bundle, tmp_path / "bundle")
    with zipfile.ZipFile(path / "model.keras") as archive:
        saved = json.loads(archive.read("config.json"))
    assert "AdversarialClassifier" not in json.dumps(saved)  # loads without textpipe's training step
    reloaded = load_bundle(path)
    np.testing.assert_allclose(reloaded.predict_proba(tiny_data.test.texts), probabilities, rtol=1e-5, atol=1e-6)
    assert reloaded.config.adversarial == 0.1


def test_auto_is_on_with_enough_texts_when_half_of_them_are_sentence_length():
    short, long = "a b c d", " ".join(["w"] * 65)  # 4 words; 65, one over the seed preset's 64
    # The numbers the README gives: 0.1 for the lstm and 0.025 for the conv1d model, from 2,000 texts.
    assert ADVERSARIAL_FRACTION == {"lstm": 0.1, "conv1d": 0.025} and ADVERSARIAL_MIN_TEXTS == 2000
    half = ADVERSARIAL_MIN_TEXTS // 2
    assert Config().adversarial == "auto" and Config(model="conv1d").adversarial == "auto"
    assert Config(preset="accurate").adversarial == "auto" and Config(preset="accurate", model="conv1d").adversarial == "auto"
    for model in ("lstm", "conv1d"):
        chosen = resolve_auto(Config(model=model), [short] * (half + 1) + [long] * half).adversarial
        assert chosen == ADVERSARIAL_FRACTION[model]
    assert resolve_auto(Config(), [short] * half + [long] * (half + 1)).adversarial == 0.0
    assert resolve_auto(Config(), [short] * half + [long] * half).adversarial == 0.1  # exactly half fit
    assert resolve_auto(Config(), [short] * (ADVERSARIAL_MIN_TEXTS - 1)).adversarial == 0.0  # too few texts
    # The texts' length decides, not the window's: 65-word texts stay off in 80-token windows.
    assert resolve_auto(Config(sequence_length=80), [long] * ADVERSARIAL_MIN_TEXTS).adversarial == 0.0
    assert resolve_auto(Config(sequence_length=16), [" ".join(["w"] * 20)] * ADVERSARIAL_MIN_TEXTS).adversarial == 0.1
    # Under the preset that leaves the length to the data: on for both models on sentences; off on longer texts,
    # though the conv1d model's window holds them (the lstm's stops at its cap).
    for model in ("lstm", "conv1d"):
        chosen = resolve_auto(Config(preset="accurate", model=model), [short] * (half + 1) + [long] * half)
        assert chosen.adversarial == ADVERSARIAL_FRACTION[model]
    for model, window in (("conv1d", 72), ("lstm", MAX_AUTO_LENGTH["lstm"])):
        chosen = resolve_auto(Config(preset="accurate", model=model), [short] * half + [long] * (half + 1))
        assert chosen.sequence_length == window and chosen.adversarial == 0.0
    # A number given wins over the texts; a model built before they are seen trains plainly.
    assert resolve_auto(Config(adversarial=0.3), [long]).adversarial == 0.3
    assert resolve_auto(Config(adversarial=0), [short] * ADVERSARIAL_MIN_TEXTS).adversarial == 0
    assert not isinstance(build_model(Config(**TINY_SETTINGS), 2), AdversarialClassifier)
    assert isinstance(build_model(Config(**TINY_SETTINGS, adversarial=0.1), 2), AdversarialClassifier)


def test_trains_under_a_mirrored_strategy_and_mixed_precision(tiny_data):
    from textpipe.training import train

    config = Config(**{**TINY_SETTINGS, "strategy": "mirrored", "mixed_precision": True, "adversarial": 0.1})
    bundle = train(config, tiny_data)
    probabilities = bundle.predict_proba(tiny_data.test.texts)
    assert (probabilities.argmax(axis=1) == tiny_data.test.labels).mean() > 0.8


def test_train_says_when_it_trains_adversarially(tiny_data, tmp_path, capsys, monkeypatch):
    from textpipe import presets
    from textpipe.bundle import load_bundle
    from textpipe.cli import main

    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f"{t},{l}\n" for t, l in zip(tiny_data.train.texts, tiny_data.train.labels)))
    small = ["--dataset", str(data), "--epochs", "2", "--embedding-dim", "8", "--lstm-units", "8", "--vocab-size", "64"]
    assert main(["train", *small, "--output", str(tmp_path / "few")]) == 0  # 400 texts: too few
    assert "adversarial" not in capsys.readouterr().out
    monkeypatch.setattr(presets, "ADVERSARIAL_MIN_TEXTS", 100)
    assert main(["train", *small, "--output", str(tmp_path / "auto")]) == 0
    # The lstm's random word vectors train unpushed for an epoch first.
    assert "classifier: lstm, at most 2 epochs, adversarial training (0.1) from epoch 2\n" in capsys.readouterr().out
    assert load_bundle(tmp_path / "auto").config.adversarial == 0.1
    assert main(["train", *small, "--adversarial", "0", "--output", str(tmp_path / "off")]) == 0
    assert "adversarial" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["train", *small, "--adversarial", "often"])
    assert info.value.code == 2
    assert "--adversarial: expected a number or auto, got 'often'" in capsys.readouterr().err


def test_a_settings_file_may_leave_it_to_the_data_or_give_a_number(tmp_path):
    from textpipe.config import ConfigError, load_config

    path = tmp_path / "settings.toml"
    path.write_text('adversarial = "auto"\n')
    assert load_config(path).adversarial == "auto"
    path.write_text("adversarial = 0.05\n")
    assert load_config(path).adversarial == 0.05
    path.write_text("adversarial = true\n")
    with pytest.raises(ConfigError, match="'adversarial' must be"):
        load_config(path)
