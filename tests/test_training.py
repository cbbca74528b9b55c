import dataclasses
import json
import shutil
import warnings

import numpy as np
import pytest

from conftest import TINY_SETTINGS
from textpipe.config import Config
from textpipe.errors import ConfigError
from textpipe.evaluation import classification_metrics, evaluate
from textpipe.models import build_model
from textpipe.training import train


def test_tiny_lstm_beats_chance_on_held_out_texts(tiny_bundle, tiny_data):
    result = evaluate(tiny_bundle, tiny_data.test)
    assert result["n"] == 200
    assert result["accuracy"] > 0.85, result
    assert tiny_bundle.metrics["validation"]["accuracy"] > 0.85


def test_lstm_follows_the_reference_layout():
    model = build_model(Config(), n_classes=2)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "SplitWindows", "TrimPadding", "Embedding", "MaskedLSTM", "Dropout", "Dense",
                     "AverageOverWindows"]
    _, windows, trim, embedding, lstm, dropout, head, average = model.layers
    assert windows.window == average.window == 64  # longer texts are read 64 tokens at a time
    assert (trim.max_length, trim.min_length, trim.margin) == (64, 1, 0)
    assert model.input_shape == (None, None)  # any width: each batch is cut to its longest text
    assert (embedding.input_dim, embedding.output_dim, embedding.mask_zero) == (1024, 256, True)
    assert lstm.units == 128 and dropout.rate == 0.5
    assert head.units == 1 and head.activation.__name__ == "sigmoid"
    assert model.loss == "binary_crossentropy"


def test_lstm_pooling_max_pools_every_output_over_the_windows_tokens(tiny_data):
    model = build_model(Config(lstm_pooling="max"), n_classes=2)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "SplitWindows", "TrimPadding", "Embedding", "MaskedLSTM", "TokenMaxPooling1D",
                     "Dropout", "Dense", "AverageOverWindows"]
    lstm, pool = model.layers[4:6]
    assert lstm.return_sequences and lstm.units == 128
    # The pooling reads the trimmed token ids, so it leaves out exactly the positions the LSTM masks.
    assert pool.input[1] is model.get_layer("trim_padding").output
    bundle = train(Config(**{**TINY_SETTINGS, "lstm_pooling": "max"}), tiny_data)
    assert evaluate(bundle, tiny_data.test)["accuracy"] > 0.85
    assert bundle.config.lstm_pooling == "max"


def test_more_than_two_classes_get_a_softmax_head():
    model = build_model(Config(), n_classes=6)
    head = model.get_layer("probabilities")
    assert head.units == 6 and head.activation.__name__ == "softmax"
    assert model.loss == "sparse_categorical_crossentropy"


def test_three_classes_train_end_to_end(tiny_data):
    # Relabel: class 2 for texts containing "the", otherwise the sentiment label.
    def relabel(split):
        labels = np.array([2 if "the" in t.split() else y for t, y in zip(split.texts, split.labels)])
        return dataclasses.replace(split, labels=labels)

    data = dataclasses.replace(
        tiny_data,
        train=relabel(tiny_data.train),
        validation=relabel(tiny_data.validation),
        test=relabel(tiny_data.test),
        class_names=("negative", "positive", "has-the"),
    )
    bundle = train(Config(**TINY_SETTINGS), data)
    probabilities = bundle.predict_proba(list(data.validation.texts[:5]))
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert len(bundle.metrics["validation"]["confusion_matrix"]) == 3
    # It learned the rule: well above always answering the largest class, on texts it never saw.
    majority = np.bincount(data.test.labels).max() / len(data.test)
    assert evaluate(bundle, data.test)["accuracy"] > majority + 0.3


def test_same_seed_same_vocabulary_and_metrics(tiny_data):
    config = Config(**{**TINY_SETTINGS, "epochs": 2})
    a, b = train(config, tiny_data), train(config, tiny_data)
    assert a.vectorizer.get_vocabulary() == b.vectorizer.get_vocabulary()
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-4)
    texts = list(tiny_data.test.texts[:20])
    np.testing.assert_allclose(a.predict_proba(texts), b.predict_proba(texts), atol=1e-5)


def test_metrics_against_hand_computed_values():
    labels = np.array([0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    m = classification_metrics(labels, probs, ("neg", "pos"))
    assert m["accuracy"] == 0.6
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]
    assert m["per_class"]["pos"]["precision"] == 2 / 3
    assert m["per_class"]["neg"]["recall"] == 0.5
    assert m["roc_auc"] == pytest.approx(5 / 6)


def test_warm_start_continues_from_the_given_weights(tiny_bundle, tiny_data):
    one_epoch = Config(**{**TINY_SETTINGS, "epochs": 1})
    warm = train(one_epoch, tiny_data, warm_start=tiny_bundle)
    cold = train(one_epoch, tiny_data)
    # Starting from a trained model, one more epoch stays well ahead of one epoch from scratch.
    assert warm.history["loss"][0] < cold.history["loss"][0] / 2
    assert evaluate(warm, tiny_data.test)["accuracy"] > 0.85


def test_warm_start_keeps_the_vocabulary_and_refuses_other_classes_and_shapes(tiny_bundle, tiny_data):
    with pytest.raises(ConfigError, match="cannot warm-start: lstm_units is 8 here but 16"):
        train(Config(**{**TINY_SETTINGS, "lstm_units": 8}), tiny_data, warm_start=tiny_bundle)
    with pytest.raises(ConfigError, match="cannot warm-start: lstm_pooling is 'max' here but 'last'"):
        train(Config(**{**TINY_SETTINGS, "lstm_pooling": "max"}), tiny_data, warm_start=tiny_bundle)
    # New data with new words keeps the starting vocabulary: the embedding rows stay tied to their words.
    other_text = dataclasses.replace(
        tiny_data, train=dataclasses.replace(tiny_data.train, texts=np.array([t + " extra words here" for t in tiny_data.train.texts], dtype=object))
    )
    continued = train(Config(**{**TINY_SETTINGS, "epochs": 1}), other_text, warm_start=tiny_bundle)
    assert continued.vectorizer.get_vocabulary() == tiny_bundle.vectorizer.get_vocabulary()
    renamed = dataclasses.replace(tiny_data, class_names=("bad", "good"))
    with pytest.raises(ConfigError, match="cannot warm-start: the classes differ"):
        train(Config(**TINY_SETTINGS), renamed, warm_start=tiny_bundle)


def test_strategy_selection_without_gpus():
    import tensorflow as tf

    from textpipe.training import distribution_strategy

    assert not tf.config.list_physical_devices("GPU")  # this suite runs on CPU
    default = distribution_strategy("auto")
    assert default is tf.distribute.get_strategy() and default.num_replicas_in_sync == 1
    assert isinstance(distribution_strategy("mirrored"), tf.distribute.MirroredStrategy)
    with pytest.raises(Exception, match="strategy must be one of auto, default, mirrored, multiworker"):
        Config(strategy="tpu")


@pytest.mark.parametrize(
    "tf_config, message",
    [
        ("{not json", "TF_CONFIG is not valid JSON"),
        ('["worker"]', "TF_CONFIG must look like"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "task worker:2 is not in its cluster"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "task chief:0 is not in its cluster"),
    ],
)
def test_multiworker_refuses_a_bad_tf_config_before_starting(monkeypatch, tf_config, message):
    from textpipe.training import distribution_strategy

    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError, match=message):
        distribution_strategy("multiworker")


def test_only_the_chief_keeps_a_saved_bundle(tiny_bundle, tmp_path, monkeypatch):
    import tempfile

    from textpipe.bundle import save_bundle

    (tmp_path / "scratch").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    save_bundle(dataclasses.replace(tiny_bundle, is_chief=False), tmp_path / "model")
    assert not (tmp_path / "model").exists() and not any((tmp_path / "scratch").iterdir())
    save_bundle(tiny_bundle, tmp_path / "model")
    assert (tmp_path / "model" / "model.keras").is_file()


@pytest.mark.parametrize("pooling", ["last", pytest.param("max", marks=pytest.mark.slow)])
def test_mirrored_and_mixed_precision_train_and_reload(pooling, tiny_data, tmp_path):
    import keras

    from textpipe.bundle import load_bundle, save_bundle

    config = Config(**{**TINY_SETTINGS, "epochs": 6, "strategy": "mirrored", "mixed_precision": True,
                       "lstm_pooling": pooling})
    bundle = train(config, tiny_data)
    head, average = bundle.classifier.get_layer("probabilities"), bundle.classifier.layers[-1]
    lstm = next(layer for layer in bundle.classifier.layers if isinstance(layer, keras.layers.LSTM))
    assert head.dtype_policy.compute_dtype == average.dtype_policy.compute_dtype == "float32"
    assert lstm.dtype_policy.compute_dtype == "float16" and lstm.dtype_policy.variable_dtype == "float32"
    assert evaluate(bundle, tiny_data.test)["accuracy"] > 0.8
    saved = save_bundle(bundle, tmp_path / "mixed")
    # A bundle saved as earlier textpipe versions did, with the loss-scaling optimizer's state, which Keras
    # warns it skips when it loads: load_bundle hides that warning, and it has nothing to warn about now.
    earlier = tmp_path / "earlier"
    shutil.copytree(saved, earlier)
    bundle.model.save(earlier / "model.keras")
    meta = json.loads((earlier / "bundle.json").read_text())
    del meta["model_sha256"]  # earlier versions kept no digest of model.keras
    (earlier / "bundle.json").write_text(json.dumps(meta))
    texts = list(tiny_data.test.texts[:20])
    for path in (saved, earlier):
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            reloaded = load_bundle(path)
        np.testing.assert_array_equal(reloaded.predict_proba(texts), bundle.predict_proba(texts))
    assert keras.mixed_precision.dtype_policy().name == "float32"  # the global policy is left as it was


def test_the_library_never_prints(tiny_data, tmp_path, capsys):
    import textpipe

    bundle = textpipe.train(Config(**{**TINY_SETTINGS, "epochs": 2, "ngrams": True}), tiny_data)
    reloaded = textpipe.load_bundle(textpipe.save_bundle(bundle, tmp_path / "m"))
    reloaded.predict(list(tiny_data.test.texts[:3]))
    textpipe.evaluate(reloaded, tiny_data.test)
    assert capsys.readouterr() == ("", "")  # TensorFlow's own C++ log lines are the caller's to silence
