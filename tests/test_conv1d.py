"""The 100-dim path: word vectors looked up in tf.data, the conv1d model, its raw-string bundle."""

import dataclasses
import random

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import FILLER, NEGATIVE, POSITIVE, TINY_SETTINGS
from textpipe.bundle import load_bundle, save_bundle
from textpipe.cli import main
from textpipe.config import Config
from textpipe.data import Split
from textpipe.errors import ConfigError
from textpipe.evaluation import evaluate
from textpipe.models import build_model, conv1d_stack, receptive_field
from textpipe.preprocess import make_dataset
from textpipe.presets import CONV1D_MIN_LENGTH
from textpipe.training import train

CONV_SETTINGS = {**TINY_SETTINGS, "model": "conv1d", "sequence_length": 24, "word_vector_dim": 16,
                 "skipgram_epochs": 3, "epochs": 10}


def co_occurring(n, seed):
    """Like the shared tiny data, but each text has two sentiment words of the same polarity.

    Frozen word vectors learned by skip-gram only separate the classes if sentiment words are
    distinguishable by their contexts, as they are in real reviews ("great fun", "dull and slow");
    with one sentiment word among random filler, "great" and "awful" share every context.
    """
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        words = rng.choices(FILLER, k=rng.randint(1, 8))
        at = rng.randint(0, len(words))
        words[at:at] = rng.sample(POSITIVE if i % 2 else NEGATIVE, 2)
        texts.append(" ".join(words))
        labels.append(i % 2)
    return Split(np.array(texts, dtype=object), np.array(labels, dtype=np.int64))


@pytest.fixture(scope="module")
def conv_data(tiny_data):
    return dataclasses.replace(tiny_data, train=co_occurring(400, 1), validation=co_occurring(100, 2),
                               test=co_occurring(200, 3))


@pytest.fixture(scope="module")
def conv_bundle(conv_data):
    return train(Config(**CONV_SETTINGS), conv_data)


TABLE = np.random.default_rng(0).normal(size=(1024, 100)).astype(np.float32)


def test_conv1d_follows_the_reference_stack():
    model = build_model(Config(model="conv1d"), n_classes=2, word_vectors=TABLE)
    assert model.input_shape == (None, None)  # token ids of any width
    layers = [(type(l).__name__, getattr(l, "filters", None)) for l in model.layers]
    assert layers == [
        ("InputLayer", None), ("SplitWindows", None), ("TrimPadding", None), ("Embedding", None),
        ("Conv1D", 64), ("Conv1D", 64), ("MaxPooling1D", None), ("Conv1D", 128), ("Conv1D", 128),
        ("TokenAveragePooling1D", None), ("Dropout", None), ("Dense", None), ("AverageOverWindows", None),
    ]
    assert all(l.kernel_size == (3,) and l.activation.__name__ == "relu" for l in model.layers if hasattr(l, "filters"))
    assert model.get_layer(index=6).pool_size == (3,)
    vectors = model.get_layer("word_vectors")
    assert vectors.trainable and vectors.output_dim == 100  # fine-tuned from the table it starts with
    frozen = build_model(Config(model="conv1d", fine_tune_word_vectors=False), 2, word_vectors=TABLE)
    assert not frozen.get_layer("word_vectors").trainable
    np.testing.assert_array_equal(vectors.embeddings.numpy(), TABLE)
    trim = model.get_layer("trim_padding")
    assert (trim.max_length, trim.min_length, trim.margin) == (64, 19, 18)
    assert receptive_field(conv1d_stack()) == (CONV1D_MIN_LENGTH, 3)  # the settings' check, without Keras
    with pytest.raises(ValueError, match=r"needs a \(vocabulary, 100\) word-vector table"):
        build_model(Config(model="conv1d"), 2)


def test_too_short_sequences_are_a_config_error():
    with pytest.raises(ConfigError, match="conv1d model needs sequence_length >= 19"):
        Config(model="conv1d", sequence_length=18)
    build_model(Config(model="conv1d", sequence_length=19), 2, word_vectors=TABLE)  # the shortest that fits builds


def test_conv1d_beats_chance_on_held_out_texts(conv_bundle, conv_data):
    result = evaluate(conv_bundle, conv_data.test)
    assert result["accuracy"] > 0.85, result
    assert conv_bundle.word_vectors["source"] == "skip-gram" and conv_bundle.word_vectors["fine_tuned"]
    assert conv_bundle.word_vector_table().shape == (conv_bundle.vocabulary_size, 16)


def test_classifier_reads_words_through_the_table(conv_bundle, tiny_data):
    table = conv_bundle.word_vector_table()
    ids = next(iter(make_dataset(conv_bundle.vectorizer, tiny_data.test, 8, shuffle=False)))[0]
    lookup = conv_bundle.classifier.get_layer("word_vectors")
    trimmed = conv_bundle.classifier.get_layer("trim_padding")(ids)
    assert trimmed.shape[1] == min(int(tf.reduce_max(tf.math.count_nonzero(ids, axis=1))) + 18, 24)
    np.testing.assert_array_equal(lookup(trimmed).numpy(), table[trimmed.numpy()])


def test_word_vectors_are_fine_tuned_unless_frozen(conv_data):
    settings = {**CONV_SETTINGS, "epochs": 2, "patience": 0, "keep_best_epoch": False}
    tuned = train(Config(**settings), conv_data)
    frozen = train(Config(**settings, fine_tune_word_vectors=False), conv_data)
    # Same seed, same skip-gram table to start from: frozen, it is unchanged; fine-tuned, training moved it.
    start = frozen.word_vector_table()
    moved = np.abs(tuned.word_vector_table() - start).max(axis=1)
    vocabulary = tuned.vectorizer.get_vocabulary()
    assert moved[vocabulary.index("great")] > 1e-4 and moved[vocabulary.index("awful")] > 1e-4
    assert tuned.classifier.get_layer("word_vectors").trainable
    assert not frozen.classifier.get_layer("word_vectors").trainable


def test_adversarial_training_pushes_frozen_word_vectors_without_changing_them(conv_data, monkeypatch):
    import textpipe.training

    tables = []

    def build(config, n_classes, word_vectors=None, **kwargs):
        tables.append(np.array(word_vectors))
        return build_model(config, n_classes, word_vectors=word_vectors, **kwargs)

    monkeypatch.setattr(textpipe.training, "build_model", build)
    settings = {**CONV_SETTINGS, "fine_tune_word_vectors": False, "adversarial": 0.1}
    bundle = textpipe.training.train(Config(**settings), conv_data)
    accuracy = (bundle.predict_proba(conv_data.test.texts).argmax(axis=1) == conv_data.test.labels).mean()
    assert accuracy > 0.8
    np.testing.assert_array_equal(bundle.classifier.get_layer("word_vectors").get_weights()[0], tables[0])


def test_warm_start_compares_only_the_conv1d_models_own_settings(conv_bundle, conv_data, tmp_path):
    # The lstm's settings (as another preset fills them) do not stand in the way; the word vectors' width does.
    # A warm start keeps its model's vectors: the word vector file a nightly config names need not be there.
    lstm_settings_differ = Config(**{**CONV_SETTINGS, "epochs": 1, "lstm_units": 8, "lstm_pooling": "max",
                                     "word_vectors": str(tmp_path / "deleted-glove.txt")})
    warm = train(lstm_settings_differ, conv_data, warm_start=conv_bundle)
    assert evaluate(warm, conv_data.test)["accuracy"] > 0.85
    with pytest.raises(ConfigError, match="cannot warm-start: word_vector_dim is 8 here but 16"):
        train(Config(**{**CONV_SETTINGS, "word_vector_dim": 8}), conv_data, warm_start=conv_bundle)
    with pytest.raises(ConfigError, match="cannot warm-start: model is 'lstm' here but 'conv1d'"):
        train(Config(**{**CONV_SETTINGS, "model": "lstm"}), conv_data, warm_start=conv_bundle)


def test_conv1d_bundle_round_trip_on_raw_strings(conv_bundle, tiny_data, tmp_path):
    path = save_bundle(conv_bundle, tmp_path / "conv")
    loaded = load_bundle(path)
    texts = list(tiny_data.test.texts) + ["", "caf\u00e9 \U0001f600", "unknown words only"]
    np.testing.assert_array_equal(loaded.predict_proba(texts), conv_bundle.predict_proba(texts))
    np.testing.assert_array_equal(loaded.word_vector_table(), conv_bundle.word_vector_table())
    # The exported model on raw strings agrees with the classifier fed by the tf.data id pipeline.
    fed = make_dataset(loaded.vectorizer, tiny_data.test, 50, shuffle=False, group_by_length=False)
    from_pipeline = loaded.classifier.predict(fed.map(lambda x, y: x), verbose=0)
    from_strings = loaded.model.predict(tf.constant(list(tiny_data.test.texts)), verbose=0)
    np.testing.assert_allclose(from_strings, from_pipeline, atol=1e-5)


def test_word_vectors_from_a_glove_file(tiny_data, tmp_path):
    rng = np.random.default_rng(0)
    words = ["great", "awful", "film", "zebra"]  # "zebra" is not in the vocabulary
    glove = tmp_path / "glove.16d.txt"
    glove.write_text("".join(f"{w} {' '.join(f'{v:.5f}' for v in rng.normal(size=16))}\n" for w in words))
    # Frozen, the table holds the file's vectors as they were read.
    settings = {**CONV_SETTINGS, "epochs": 1, "word_vectors": str(glove), "fine_tune_word_vectors": False}
    bundle = train(Config(**settings), tiny_data)
    report = bundle.word_vectors
    assert not report["fine_tuned"]
    assert report["found"] == 3 and report["found"] + report["missing"] == bundle.vocabulary_size - 2
    vocabulary = bundle.vectorizer.get_vocabulary()
    expected = np.array([float(f"{v:.5f}") for v in np.random.default_rng(0).normal(size=16)], dtype=np.float32)
    np.testing.assert_allclose(bundle.word_vector_table()[vocabulary.index("great")], expected, rtol=1e-6)

    with pytest.raises(ConfigError, match="holds 16-dim vectors but word_vector_dim is 100"):
        train(Config(**{**CONV_SETTINGS, "word_vector_dim": 100, "word_vectors": str(glove)}), tiny_data)


def test_similarity_is_the_cosine_of_the_table_rows(tiny_bundle, conv_bundle):
    for bundle in (tiny_bundle, conv_bundle):
        table, vocabulary = bundle.word_vector_table(), bundle.vectorizer.get_vocabulary()
        a, b = table[vocabulary.index("great")], table[vocabulary.index("awful")]
        expected = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        assert bundle.similarity("Great", "awful") == pytest.approx(expected, abs=1e-5)
        neighbors = bundle.neighbors("great", k=3)
        assert len(neighbors) == 3 and "great" not in [w for w, _ in neighbors]
        assert [s for _, s in neighbors] == sorted((s for _, s in neighbors), reverse=True)


def test_lstm_table_is_its_trained_embedding(tiny_bundle):
    assert tiny_bundle.word_vector_table().shape == (tiny_bundle.vocabulary_size, TINY_SETTINGS["embedding_dim"])


def test_neighbors_and_similarity_commands(saved_bundle, capsys):
    assert main(["neighbors", str(saved_bundle), "great", "-k", "4"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows == [[f"{score:.4f}", word] for word, score in load_bundle(saved_bundle).neighbors("great", 4)]
    assert len(rows) == 4 and "great" not in [word for _, word in rows]
    assert main(["similarity", str(saved_bundle), "great", "great"]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(1.0, abs=1e-4)
    # A word is read as the vectorizer reads it: lower-cased, punctuation stripped.
    assert main(["similarity", str(saved_bundle), "Great!", "great"]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(1.0, abs=1e-4)
    assert main(["similarity", str(saved_bundle), "great", "xylophone"]) == 2
    assert "'xylophone' is not in the model's vocabulary" in capsys.readouterr().err
    assert main(["neighbors", str(saved_bundle), "great", "-k", "0"]) == 2
    assert "must be a positive integer, got 0" in capsys.readouterr().err


def test_training_runs_on_deterministic_kernels_and_puts_the_setting_back(tiny_data):
    # The convolutions' gradients are summed by several threads: on the default kernels their order, and with
    # it the weights, changed now and then between runs of the same seed (SST-2, 4,500 rows: 72.6 against 70.3).
    from tensorflow.python.framework import config as tf_config

    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(tf_config.is_op_determinism_enabled())

    config = Config(**{**CONV_SETTINGS, "epochs": 2, "patience": 0, "seed": 7})
    first, second = train(config, tiny_data, callbacks=[Record()]), train(config, tiny_data)
    on_cpu = not tf.config.list_physical_devices("GPU")
    assert seen and all(seen) == on_cpu
    assert not tf_config.is_op_determinism_enabled()  # the process's setting, as training found it
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)
