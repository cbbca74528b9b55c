"""Batches cut to their longest text: a text's result never depends on its batch, and older bundles still work."""

import dataclasses
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import FILLER, TINY_SETTINGS
from textpipe.bundle import FORMAT_VERSION, load_bundle, save_bundle
from textpipe.config import Config
from textpipe.errors import DataError
from textpipe.inputs import InputSpec
from textpipe.layers import (
    AverageOverWindows, MaskedLSTM, TokenAveragePooling1D, TokenMaxPooling1D, TrimPadding,
)
from textpipe.scoring import score_rows
from textpipe.training import train

FORMAT1 = Path(__file__).parent / "data" / "format1"  # bundles written by textpipe 0.1.0
SHORT = "the film was lovely"
LONG = " ".join(random.Random(0).choices(FILLER + ["great", "dull"], k=500))


@pytest.fixture(scope="module")
def conv_bundle(tiny_data):
    settings = {**TINY_SETTINGS, "model": "conv1d", "sequence_length": 64, "word_vector_dim": 16,
                "skipgram_epochs": 1, "epochs": 2}
    return train(Config(**settings), tiny_data)


@pytest.fixture(scope="module")
def long_lstm_bundle(tiny_data):
    return train(Config(**{**TINY_SETTINGS, "sequence_length": 64, "epochs": 2}), tiny_data)


@pytest.fixture(scope="module")
def max_lstm_bundle(tiny_data):
    return train(Config(**{**TINY_SETTINGS, "sequence_length": 64, "epochs": 2, "lstm_pooling": "max"}), tiny_data)


@pytest.mark.parametrize("name", ["long_lstm_bundle", "max_lstm_bundle", "conv_bundle"])
def test_a_texts_probabilities_do_not_depend_on_its_batch(name, request, tmp_path):
    trained = request.getfixturevalue(name)
    bundle = load_bundle(save_bundle(trained, tmp_path / name))
    texts = [SHORT, LONG, "dull", ""]
    np.testing.assert_allclose(bundle.predict_proba(texts), trained.predict_proba(texts), atol=1e-6)

    def first(texts):
        return bundle.infer(np.array(texts, dtype=object)).numpy()[0]

    alone = first([SHORT])
    among_short = first([SHORT, "dull", "a great story", "boring plot and acting"])
    beside_long = first([SHORT, LONG, "dull"])
    np.testing.assert_allclose(among_short, alone, atol=1e-5)
    np.testing.assert_allclose(beside_long, alone, atol=1e-5)
    # The 500-word text is read in windows of 64 words: its probabilities are those of the mean of the
    # windows' log-odds, the 52-word last window counting as much as a full one, in whatever batch it comes.
    words = LONG.split()
    windows = [" ".join(words[i : i + 64]) for i in range(0, len(words), 64)]
    each = bundle.infer(np.array(windows, dtype=object)).numpy()[:, 0].astype(np.float64)  # P(class 1)
    log_odds = np.log(each) - np.log1p(-each)
    np.testing.assert_allclose(first([LONG])[0], 1 / (1 + np.exp(-log_odds.mean())), atol=1e-5)
    assert not np.allclose(first([LONG + " great great dull"]), first([LONG]), atol=1e-7)


def test_truncate_reads_only_the_first_window(tiny_data):
    bundle = train(Config(**{**TINY_SETTINGS, "sequence_length": 64, "epochs": 1, "long_texts": "truncate"}), tiny_data)
    first64 = " ".join(LONG.split()[:64])
    np.testing.assert_allclose(bundle.predict_proba([LONG + " awful awful"]), bundle.predict_proba([first64]), atol=1e-6)


def test_each_batch_is_cut_to_its_longest_text(long_lstm_bundle, conv_bundle):
    for bundle, margin, shortest in ((long_lstm_bundle, 0, 1), (conv_bundle, 18, 19)):
        ids = bundle.vectorizer(tf.constant(["dull", "a great story", ""]))
        assert ids.shape[1] == 3  # the vectorizer passes every token on, padded to the longest text...
        split, trim = bundle.classifier.get_layer("windows"), bundle.classifier.get_layer("trim_padding")
        assert trim(split(ids)).shape[1] == max(3 + margin, shortest)  # ...and the model reads only what it needs
        windows = split(bundle.vectorizer(tf.constant([LONG, "dull"])))
        assert windows.shape == (8 + 1, 64)  # ceil(500 / 64) windows, then the short text's one
        assert trim(windows).shape[1] == 64


def test_trim_padding_pads_narrow_inputs_and_truncates_wide_ones():
    trim = TrimPadding(max_length=6, min_length=4, margin=1)
    assert trim(tf.constant([[5, 0, 0]], tf.int64)).numpy().tolist() == [[5, 0, 0, 0]]
    assert trim(tf.constant([[5, 6, 7, 8, 0, 0, 0]], tf.int64)).numpy().tolist() == [[5, 6, 7, 8, 0]]
    assert trim(tf.constant([[1] * 9], tf.int64)).numpy().tolist() == [[1] * 6]
    assert trim(tf.zeros((0, 0), tf.int64)).shape == (0, 4)
    with pytest.raises(ValueError):
        TrimPadding(max_length=3, min_length=4)


@pytest.fixture
def lstm_masks(monkeypatch):
    """The masks Keras's LSTM is called with, from the test's start on. On a GPU, Keras runs an LSTM on
    cuDNN only with a right-padded mask and no fully masked row, and fails the batch otherwise."""
    import keras

    seen = []
    original = keras.layers.LSTM.call

    def spy(self, sequences, initial_state=None, mask=None, training=False):
        if mask is not None and tf.executing_eagerly():
            seen.append(mask.numpy())
        return original(self, sequences, initial_state=initial_state, mask=mask, training=training)

    monkeypatch.setattr(keras.layers.LSTM, "call", spy)
    return seen


def test_masked_lstm_hands_keras_only_masks_cudnn_accepts(lstm_masks):
    # An empty window must pass, and still get the zero state Keras gives a fully masked row on a CPU.
    import keras

    ids = tf.constant([[4, 5, 0], [0, 0, 0], [6, 0, 0]], tf.int64)
    vectors = keras.layers.Embedding(8, 4, mask_zero=True, embeddings_initializer="uniform")
    masked = MaskedLSTM(3, seed=0)
    plain = keras.layers.LSTM(3, seed=0)
    masked.build((None, None, 4)), plain.build((None, None, 4))
    plain.set_weights(masked.get_weights())
    expected = plain(vectors(ids)).numpy()  # Keras's generic kernel: a fully masked row keeps the zero state
    got = masked(vectors(ids)).numpy()
    assert lstm_masks[-1].tolist() == [[True, True, False], [True, False, False], [True, False, False]]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not got[1].any() and got[0].any()
    sequences = MaskedLSTM(3, return_sequences=True, seed=0)(vectors(ids)).numpy()
    assert not sequences[1].any() and sequences[0].any()
    with pytest.raises(ValueError, match="return_state"):
        MaskedLSTM(3, return_state=True)


def test_the_lstms_windows_reach_it_through_right_padded_masks_with_no_empty_row(long_lstm_bundle, lstm_masks):
    classifier = long_lstm_bundle.classifier
    classifier(long_lstm_bundle.vectorizer(tf.constant(["", LONG, "dull", "?!", SHORT])))
    mask = lstm_masks[-1]
    lengths = mask.sum(axis=1)
    assert mask.shape[0] == 8 + 4 and lengths.min() == 1  # 8 windows of the long text, one for each other
    assert (mask == (np.arange(mask.shape[1])[None, :] < lengths[:, None])).all()
    empty = long_lstm_bundle.predict_proba(["", "?!"])
    np.testing.assert_allclose(empty[0], empty[1], atol=1e-7)  # no words: one answer, the model's own


def test_token_average_pooling_covers_the_positions_real_tokens_reach():
    features = tf.reshape(tf.range(2 * 4 * 1, dtype=tf.float32), (2, 4, 1))  # [0, 1, 2, 3] and [4, 5, 6, 7]
    ids = tf.constant([[3, 3, 3, 3, 0, 0, 0, 0, 0, 0], [0] * 10], tf.int64)  # 4 tokens; none
    pooled = TokenAveragePooling1D(stride=3)([features, ids]).numpy()
    assert pooled.tolist() == [[0.5], [0.0]]  # ceil(4 / 3) = 2 positions: (0 + 1) / 2; no tokens pools to 0


def test_token_max_pooling_takes_each_channels_largest_value_over_real_tokens_only():
    features = tf.constant([[[-3.0, 1.0], [-2.0, 5.0], [9.0, 9.0]], [[4.0, 4.0], [7.0, 7.0], [8.0, 8.0]]])
    ids = tf.constant([[5, 2, 0], [0, 0, 0]], tf.int64)  # 2 tokens, then padding; none
    pooled = TokenMaxPooling1D()([features, ids]).numpy()
    # The padding's 9s are left out, negative maxima stay negative, and a text with no tokens pools to 0.
    assert pooled.tolist() == [[-2.0, 5.0], [0.0, 0.0]]


def test_windows_are_combined_by_their_mean_log_odds_each_counting_once():
    ids = tf.constant([[5] * 4 + [6] * 4 + [7] * 2, [5] * 3 + [0] * 7], tf.int64)  # windows of 4: 3 and 1
    p = np.array([0.9, 0.6, 0.2, 0.7], np.float32)  # the first text's three windows, then the second's
    combined = AverageOverWindows(4, average="log_odds")([tf.constant(p[:, None]), ids]).numpy()[:, 0]
    logit = np.log(p / (1 - p))
    np.testing.assert_allclose(combined, 1 / (1 + np.exp(-np.array([logit[:3].mean(), logit[3]]))), rtol=1e-5)
    # A softmax's rows: the mean of their logarithms, renormalized (the geometric mean).
    rows = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.2, 0.5, 0.3]], np.float32)
    got = AverageOverWindows(4, average="log_odds")([tf.constant(rows), ids]).numpy()
    geometric = np.exp(np.log(rows[:3]).mean(axis=0))
    np.testing.assert_allclose(got, [geometric / geometric.sum(), rows[3]], rtol=1e-5)
    # A text no longer than a window keeps its window's output.
    assert combined[1] == pytest.approx(0.7, abs=1e-6)


def test_windows_of_bundles_saved_before_log_odds_are_weighted_by_their_tokens():
    ids = tf.constant([[5] * 4 + [6] * 4 + [7] * 2], tf.int64)  # windows of 4, 4 and 2 tokens
    p = tf.constant([[0.9], [0.6], [0.2]])
    config = AverageOverWindows(4, average="log_odds").get_config()
    del config["average"]  # as saved before the setting existed
    earlier = AverageOverWindows.from_config(config)
    assert earlier.average == "tokens"
    assert earlier([p, ids]).numpy()[0, 0] == pytest.approx((4 * 0.9 + 4 * 0.6 + 2 * 0.2) / 10, abs=1e-6)
    with pytest.raises(ValueError, match="average must be one of"):
        AverageOverWindows(4, average="median")


def test_scoring_keeps_input_order_across_length_sorted_windows(long_lstm_bundle, tmp_path):
    rng = random.Random(1)
    texts = [" ".join(rng.choices(FILLER + ["great", "dull"], k=rng.choice([1, 3, 80]))) for _ in range(300)]
    path = tmp_path / "rows.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    records = list(score_rows(long_lstm_bundle, [InputSpec(str(path), "text")], batch_size=8))
    assert [r["row"] for r in records] == list(range(1, 301))
    got = np.array([list(r["probabilities"].values()) for r in records])
    one_by_one = np.concatenate([long_lstm_bundle.predict_proba([t]) for t in texts[:40]])
    np.testing.assert_allclose(got[:40], one_by_one, atol=1e-5)
    np.testing.assert_allclose(got, long_lstm_bundle.predict_proba(texts, batch_size=300), atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "conv1d"])
def test_bundles_of_format_1_load_and_predict_as_before(name):
    expected = json.loads((FORMAT1 / "predictions.json").read_text())
    bundle = load_bundle(FORMAT1 / name)
    assert bundle.format_version == 1
    np.testing.assert_allclose(bundle.predict_proba(expected["texts"]), expected[name], atol=1e-6)
    # Settings added later read as what that version did: every epoch run and the last kept, frozen vectors.
    assert bundle.config.patience is None and not bundle.config.keep_best_epoch
    assert not bundle.config.fine_tune_word_vectors
    assert bundle.config.lstm_pooling == "last" and not bundle.config.average_weights
    assert bundle.config.adversarial == 0.0  # not "auto": that version trained without it
    assert bundle.config.vocabulary == "frequent"  # its vocabulary: the most frequent words
    assert bundle.word_vector_table().shape[0] == bundle.vocabulary_size


def test_an_earlier_accurate_bundle_reads_its_last_output(tmp_path):
    # Bundles saved before lstm_pooling existed read their lstm's last output and hold no n-gram model, even
    # under a preset that now max-pools and adds one: otherwise a warm start would pour their weights into
    # the other model.
    shutil.copytree(FORMAT1 / "lstm", tmp_path / "lstm")
    meta = tmp_path / "lstm" / "bundle.json"
    saved = json.loads(meta.read_text())
    saved["config"]["preset"] = "accurate"
    meta.write_text(json.dumps(saved))
    bundle = load_bundle(tmp_path / "lstm")
    assert bundle.config.preset == "accurate" and bundle.config.lstm_pooling == "last" and not bundle.config.ngrams
    expected = json.loads((FORMAT1 / "predictions.json").read_text())
    np.testing.assert_allclose(bundle.predict_proba(expected["texts"]), expected["lstm"], atol=1e-6)


def test_a_format_1_bundle_looks_words_up_as_its_own_vectorizer_reads_them():
    # Its vectorizer keeps Keras' built-in standardization, which leaves the curly apostrophe in "don’t":
    # a query must find that word, not "dont", as textpipe's standardization would read it.
    bundle = load_bundle(FORMAT1 / "conv1d")
    assert bundle.vectorizer.get_config()["standardize"] == "lower_and_strip_punctuation"
    vocabulary = bundle.vectorizer.get_vocabulary()
    at = 5
    near = bundle.neighbors(vocabulary[at], k=1)[0][0]
    vocabulary[at] = "don’t"
    bundle.vectorizer.set_vocabulary(vocabulary)
    assert bundle.neighbors("Don’t!", k=1)[0][0] == near
    assert bundle.similarity("DON’T", near) == pytest.approx(bundle.similarity(near, "don’t"))
    assert bundle.similarity("don’t", "don’t") == pytest.approx(1.0)
    with pytest.raises(DataError, match="dont"):
        bundle.similarity("dont", near)


@pytest.mark.parametrize("name", ["lstm", "conv1d"])
def test_a_format_1_bundle_can_seed_a_warm_start(name, tiny_data, tmp_path):
    start = load_bundle(FORMAT1 / name)
    # A learning rate too small to move anything: the new model starts from, and keeps, the old weights.
    config = dataclasses.replace(start.config, epochs=1, learning_rate=1e-12)
    bundle = load_bundle(save_bundle(train(config, tiny_data, warm_start=start), tmp_path / name))
    assert bundle.format_version == FORMAT_VERSION
    # Its words were made by Keras' built-in standardization: the new model keeps reading text that way.
    assert bundle.vectorizer.get_config()["standardize"] == "lower_and_strip_punctuation"
    # The layers' weights other than the word vectors (format 1 kept those outside the classifier).
    def layer_weights(model):
        return [w for l in model.layers if l.name != "word_vectors" for w in l.trainable_weights]

    for new, old in zip(layer_weights(bundle.classifier), layer_weights(start.classifier), strict=True):
        np.testing.assert_allclose(new.numpy(), old.numpy(), atol=1e-6)
    np.testing.assert_allclose(bundle.word_vector_table(), start.word_vector_table(), atol=1e-6)
    if name == "lstm":  # the masked LSTM computes the same thing on a cut batch as on one padded to 16
        expected = json.loads((FORMAT1 / "predictions.json").read_text())
        np.testing.assert_allclose(bundle.predict_proba(expected["texts"]), expected["lstm"], atol=1e-5)


def test_long_texts_are_predicted_in_smaller_batches_in_their_order(monkeypatch):
    import textpipe.bundle as bundle_module

    monkeypatch.setattr(bundle_module, "PREDICT_CHARS", 1000)
    calls = []

    def infer(texts):  # the "probability" of a text is its length, to check the order of the results
        calls.append([len(t) for t in texts])
        return tf.constant([[float(len(t))] for t in texts])

    texts = np.array(["x" * n for n in (300, 5, 2000, 10, 250, 7, 400)], dtype=object)
    got = bundle_module.predict_by_length(infer, texts, batch_size=4, n_classes=2)
    np.testing.assert_array_equal(got[:, 1], [len(t) for t in texts])
    # Sorted by length; at most 4 texts, and at most 1,000 characters' worth of the longest in a batch.
    assert calls == [[5, 7, 10, 250], [300, 400], [2000]]
