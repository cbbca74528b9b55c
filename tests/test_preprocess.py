import dataclasses
import random
import string

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import mutual_info_score

from conftest import FILLER, NEGATIVE, POSITIVE, TINY_SETTINGS, make_sentences
from textpipe.bundle import load_bundle, save_bundle
from textpipe.config import Config
from textpipe.data import Split
from textpipe.layers import standardize
from textpipe.presets import words
from textpipe.preprocess import adapt_vectorizer, build_vectorizer, information_gain, informative_vocabulary, make_dataset
from textpipe.training import train


def adapted(texts, vocab_size=1024, sequence_length=8):
    v = build_vectorizer(vocab_size, sequence_length)
    adapt_vectorizer(v, np.array(texts, dtype=object))
    return v


def test_vocabulary_is_capped_and_starts_with_padding_and_unknown():
    texts = [" ".join(f"w{i}" for i in range(j, j + 50)) for j in range(40)]
    v = adapted(texts, vocab_size=32)
    vocab = v.get_vocabulary()
    assert len(vocab) == 32
    assert vocab[:2] == ["", "[UNK]"]


def test_pads_at_the_end_and_truncates_to_sequence_length():
    v = adapted(["one two three four five six seven eight nine ten"], sequence_length=4)
    ids = v(tf.constant(["one two", "one two three four five six"])).numpy()
    assert ids.shape == (2, 4)
    assert ids[0, 2:].tolist() == [0, 0]  # padding id 0 after the text
    assert (ids[0, :2] > 1).all()
    assert (ids[1] > 1).all()  # truncated, no padding


def test_standardizes_case_and_punctuation():
    v = adapted(["Great movie"])
    a, b = v(tf.constant(["great movie", "GREAT, movie!!"])).numpy()
    assert a.tolist() == b.tolist()


def tokens(vectorizer_or_standardize, texts):
    if callable(vectorizer_or_standardize):
        texts = vectorizer_or_standardize(tf.constant(texts))
    return [[w.decode() for w in row] for row in tf.strings.split(texts).to_list()]


def test_standardization_is_keras_builtin_on_ascii():
    rng = random.Random(0)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " \t\n\r\v\f"
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 40))) for _ in range(2000)]
    builtin = keras.layers.TextVectorization(ragged=True)
    builtin.adapt(tf.constant(texts))
    ours = keras.layers.TextVectorization(standardize=standardize, ragged=True)
    ours.set_vocabulary(builtin.get_vocabulary()[2:])
    assert ours(tf.constant(texts)).to_list() == builtin(tf.constant(texts)).to_list()
    assert tokens(standardize, texts) == [words(t) for t in texts]


UNICODE_TEXTS = {
    "Don\u2019t \u201cLOVE\u201d it\u2026 \u2014 really": ["dont", "love", "it", "really"],
    "great\U0001F60D\U0001F60D!!": ["great", "\U0001F60D", "\U0001F60D"],
    "\u2764\ufe0flove \U0001F44D\U0001F3FD ok\U0001F468\u200d\U0001F469": [
        "\u2764", "love", "\U0001F44D", "ok", "\U0001F468", "\U0001F469"],
    "caf\ufffd ok\ufffd\ufffd CAF\u00c9\u00a0cr\u00e8me\u2009\u00bb\u00ab x\x85y \u00a35 \u00d7 \u00a9": [
        "caf", "ok", "caf\u00e9", "cr\u00e8me", "x", "y", "5", "\u00a9"],
    "\u0395\u039b\u039b\u0391\u03a3 \u041f\u0420\u0418\u0412\u0415\u0422 \u4f60\u597d\u3002\u4e16\u754c \u0928\u092e\u0938\u094d\u0924\u0947": [
        "\u03b5\u03bb\u03bb\u03b1\u03c2", "\u043f\u0440\u0438\u0432\u0435\u0442", "\u4f60\u597d\u4e16\u754c",
        "\u0928\u092e\u0938\u094d\u0924\u0947"],
}


def test_unicode_punctuation_is_dropped_and_each_emoji_is_a_word():
    texts = list(UNICODE_TEXTS)
    assert tokens(standardize, texts) == list(UNICODE_TEXTS.values())
    assert [words(t) for t in texts] == list(UNICODE_TEXTS.values())  # the same rule in Python
    v = adapted(["dont love it great"])
    a, b = v(tf.constant(["Don\u2019t LOVE it\u2026 great\U0001F60D", "dont love it great \U0001F60D"])).numpy()
    assert a.tolist() == b.tolist()


def test_words_seen_only_outside_train_are_unknown():
    v = adapted(["good film", "bad film"])
    assert "excellent" not in v.get_vocabulary()
    assert v(tf.constant(["excellent"])).numpy()[0, 0] == 1  # [UNK]


def test_dataset_yields_id_batches_in_order_when_not_shuffled():
    texts = np.array([f"text number {i}" for i in range(10)], dtype=object)
    split = Split(texts, np.arange(10) % 2)
    v = adapted(list(texts))
    ds = make_dataset(v, split, batch_size=4, shuffle=False, group_by_length=False, windows=8)
    batches = list(ds.as_numpy_iterator())
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert ds.cardinality().numpy() == 3
    # With `windows`, every batch is padded to it; these texts are shorter, so nothing is cut.
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), v(tf.constant(texts)).numpy())
    uncut = make_dataset(v, split, batch_size=4, shuffle=False, group_by_length=False)
    assert [x.shape[1] for x, _ in uncut.as_numpy_iterator()] == [3, 3, 3]  # else to the batch's longest text


def test_windows_make_every_part_of_a_long_text_an_example():
    words = [f"w{i}" for i in range(20)]
    texts = np.array([" ".join(words), "w1 w2", ""], dtype=object)
    v = adapted(words, sequence_length=None)
    split = Split(texts, np.array([0, 1, 1]))
    ds = make_dataset(v, split, batch_size=3, shuffle=False, windows=8)
    assert ds.cardinality().numpy() == 2  # 3 windows of the long text, then the two short texts: 5 examples
    examples = sorted((x[x != 0].tolist(), int(y)) for xs, ys in ds.as_numpy_iterator() for x, y in zip(xs, ys))
    full = v(tf.constant(texts[:1])).numpy()[0].tolist()
    short = v(tf.constant(["w1 w2"])).numpy()[0].tolist()[:2]
    assert examples == sorted([(full[0:8], 0), (full[8:16], 0), (full[16:20], 0), (short, 1), ([], 1)])
    shuffled = [x.tolist() for x, _ in make_dataset(v, split, 3, shuffle=True, seed=3, windows=8).as_numpy_iterator()]
    again = [x.tolist() for x, _ in make_dataset(v, split, 3, shuffle=True, seed=3, windows=8).as_numpy_iterator()]
    assert shuffled == again  # seeded


def test_shuffle_is_seeded_and_keeps_every_row():
    texts = np.array([f"text {i}" for i in range(50)], dtype=object)
    split = Split(texts, np.arange(50))
    v = adapted(list(texts))
    first = [y for _, y in make_dataset(v, split, 50, shuffle=True, seed=1).as_numpy_iterator()][0]
    again = [y for _, y in make_dataset(v, split, 50, shuffle=True, seed=1).as_numpy_iterator()][0]
    assert sorted(first.tolist()) == list(range(50))
    assert first.tolist() != list(range(50))
    assert first.tolist() == again.tolist()


def test_batches_hold_texts_of_similar_length_cut_to_their_longest():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 13, size=300)
    texts = np.array([" ".join(f"w{j}" for j in range(n)) for n in lengths], dtype=object)
    split = Split(texts, np.arange(300))
    v = adapted(list(texts), sequence_length=10)
    ds = make_dataset(v, split, 8, shuffle=True, seed=3)
    assert ds.cardinality().numpy() == 38
    batches = list(ds.as_numpy_iterator())
    assert sorted(np.concatenate([y for _, y in batches]).tolist()) == list(range(300))
    for ids, labels in batches:
        real = (ids != 0).sum(axis=1)
        assert ids.shape[1] == max(real.max(), 0)  # as wide as the longest text, never wider
        np.testing.assert_array_equal(real, np.minimum(lengths[labels], 10))  # truncated at sequence_length
    widths = [ids.shape[1] for ids, _ in batches]
    padded_per_text = sum(ids.size for ids, _ in batches) / 300  # fixed padding: 10
    assert padded_per_text <= np.minimum(lengths, 10).mean() + 1 and max(widths) == 10
    # Within a batch the lengths differ little; over the whole epoch the batches come in a seeded random order.
    assert np.mean([np.ptp((ids != 0).sum(axis=1)) for ids, _ in batches]) <= 1.5
    again = [y.tolist() for _, y in make_dataset(v, split, 8, shuffle=True, seed=3).as_numpy_iterator()]
    assert again == [y.tolist() for _, y in batches]
    assert widths != sorted(widths)


def test_information_gain_is_the_mutual_information_of_a_words_presence_and_the_label():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=200)
    present = rng.random((200, 5)) < np.array([0.1, 0.5, 0.9, 0.3, 0.0])  # the last word in no text
    present[:, 3] |= labels == 2  # a word that tells something about class 2
    texts_with = np.stack([np.bincount(labels[present[:, w]], minlength=3) for w in range(5)])
    gain = information_gain(texts_with, np.bincount(labels, minlength=3))
    expected = [mutual_info_score(present[:, w], labels) for w in range(5)]
    np.testing.assert_allclose(gain, expected, atol=1e-12)
    assert gain[3] == max(gain) and gain[4] == 0


def test_informative_vocabulary_fills_half_with_the_words_that_tell_the_label():
    texts, labels = make_sentences(400, seed=1)
    texts, labels = np.array(texts, dtype=object), np.array(labels)
    sentiment = set(POSITIVE + NEGATIVE)
    # 12 words: the filler words are the most frequent, so the most frequent 12 hold no sentiment word ...
    frequent = adapted(texts, vocab_size=14).get_vocabulary()[2:]
    assert set(frequent) <= set(FILLER)
    # ... while half of the informative 12 are the most frequent and the other half sentiment words.
    chosen = informative_vocabulary(texts, labels, 14)
    assert chosen[:6] == frequent[:6]
    assert len(chosen) == 12 and len(set(chosen) & sentiment) == 6
    counts = {w: sum(t.split().count(w) for t in texts) for w in chosen}
    assert [counts[w] for w in chosen] == sorted(counts.values(), reverse=True)  # in order of frequency
    # A budget that holds every word keeps them all; None means no limit.
    assert set(informative_vocabulary(texts, labels, 100)) == set(FILLER) | sentiment
    assert informative_vocabulary(texts, labels, None) == informative_vocabulary(texts, labels, 100)


@pytest.mark.parametrize("vocabulary", ["frequent", "informative"])
def test_a_small_vocabulary_learns_only_when_it_holds_the_words_that_tell(tiny_data, tmp_path, vocabulary):
    # 12 words: the most frequent are filler only, and a model that reads them cannot beat chance; the
    # informative 12 hold 6 of the 12 sentiment words, which decide about half of the texts (about 75%).
    config = Config(**{**TINY_SETTINGS, "vocab_size": 14, "epochs": 6, "adversarial": 0}, vocabulary=vocabulary)
    bundle = train(config, tiny_data)
    accuracy = np.mean(bundle.predict_proba(tiny_data.test.texts).argmax(axis=1) == tiny_data.test.labels)
    if vocabulary == "informative":
        assert accuracy > 0.68
    else:
        assert accuracy < 0.6  # 200 texts: chance is 0.5 ± 0.035
    reloaded = load_bundle(save_bundle(bundle, tmp_path / "bundle"))
    assert reloaded.config.vocabulary == vocabulary
    assert reloaded.vectorizer.get_vocabulary() == bundle.vectorizer.get_vocabulary()
    # A warm start continues with the starting model's words, and says which rule chose them.
    again = train(dataclasses.replace(config, vocabulary="frequent", epochs=1), tiny_data, warm_start=reloaded)
    assert again.config.vocabulary == vocabulary
    assert again.vectorizer.get_vocabulary() == bundle.vectorizer.get_vocabulary()
