"""--ngrams: a linear model on words and word pairs, trained beside the network and mixed with it."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from conftest import TINY_SETTINGS
from textpipe.bundle import load_bundle, save_bundle, to_class_probabilities
from textpipe.cli import main
from textpipe.config import Config
from textpipe.evaluation import classification_metrics
from textpipe.layers import MixProbabilities, NgramLogits
from textpipe.models import build_ngrams
from textpipe.training import MIX_WEIGHTS, train


def random_table(layer: NgramLogits, seed: int = 0) -> None:
    layer.build((None, None))
    layer.table.assign(np.random.default_rng(seed).normal(size=layer.table.shape).astype("float32"))


def test_ngram_logits_ignore_padding_and_give_an_empty_row_zeros():
    layer = NgramLogits(vocabulary=20, outputs=3, buckets=101)
    random_table(layer)
    narrow = np.array([[4, 7, 9], [0, 0, 0]])
    wide = np.pad(narrow, [[0, 0], [0, 5]])
    np.testing.assert_allclose(layer(wide), layer(narrow), rtol=1e-6)
    np.testing.assert_array_equal(layer(narrow)[1], np.zeros(3))


def test_ngram_logits_are_the_mean_of_the_words_and_word_pairs_weights():
    layer = NgramLogits(vocabulary=20, outputs=2, buckets=101, scale=3.0)
    random_table(layer)
    table = keras.ops.convert_to_numpy(layer.table)
    ids = [5, 11, 2]
    pairs = [20 + (a * 20 + b) % 101 for a, b in zip(ids, ids[1:])]
    expected = 3.0 * table[ids + pairs].mean(axis=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(np.array([ids + [0]])))[0], expected, rtol=1e-5)


def test_word_order_reaches_the_ngram_model_through_its_word_pairs():
    # Both classes use the same two words; only their order tells them apart, which a bag of words cannot see.
    config = Config(**TINY_SETTINGS)
    ids = np.array([[3, 4], [4, 3]] * 64)
    labels = np.array([0, 1] * 64)
    model = build_ngrams(config, n_classes=2)
    model.fit(ids, labels, batch_size=16, epochs=5, verbose=0)
    assert (keras.ops.convert_to_numpy(model(ids[:2]))[:, 0] > 0.5).tolist() == [False, True]


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_mixing_a_sigmoid_output_is_mixing_its_two_class_columns(weight):
    a, b = np.array([[0.9], [0.2]], "float32"), np.array([[0.6], [0.7]], "float32")
    two_columns = lambda p: np.concatenate([1 - p, p], axis=1)
    sigmoid = keras.ops.convert_to_numpy(MixProbabilities(weight)([a, b]))
    softmax = keras.ops.convert_to_numpy(MixProbabilities(weight)([two_columns(a), two_columns(b)]))
    np.testing.assert_allclose(two_columns(sigmoid), softmax, atol=1e-6)
    ends = {1.0: a, 0.0: b}
    if weight in ends:
        np.testing.assert_allclose(sigmoid, ends[weight], atol=1e-6)


def test_mix_is_the_renormalised_weighted_geometric_mean():
    a = np.array([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]], "float32")
    b = np.array([[0.1, 0.3, 0.6], [0.5, 0.4, 0.1]], "float32")
    expected = a**0.3 * b**0.7
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(MixProbabilities(0.3)([a, b])), expected, rtol=1e-5)


def test_mix_weight_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="weight must be in"):
        MixProbabilities(1.5)


@pytest.fixture(scope="module")
def ngram_bundle(tiny_data):
    return train(Config(**TINY_SETTINGS, ngrams=True), tiny_data)


def test_mixed_model_learns_and_reports_its_choice(ngram_bundle, tiny_data):
    report = ngram_bundle.ngrams
    # The weight is the one whose mix scores the best validation macro F1, ties going to the network.
    ids = ngram_bundle.vectorizer(tiny_data.validation.texts)
    both = [ngram_bundle.classifier.get_layer(name)(ids) for name in ("network", "ngrams")]
    scores = {}
    for weight in MIX_WEIGHTS:
        mixed = to_class_probabilities(keras.ops.convert_to_numpy(MixProbabilities(weight)(both)))
        scores[weight] = classification_metrics(tiny_data.validation.labels, mixed, ngram_bundle.class_names)["macro_f1"]
    best = max(scores.values())
    assert report["network_weight"] == max(w for w in MIX_WEIGHTS if scores[w] >= best - 1e-9)
    assert report["mixed_score"] == pytest.approx(best, abs=1e-9)
    assert (report["network_score"], report["ngrams_score"]) == pytest.approx((scores[1.0], scores[0.0]), abs=1e-9)
    # The score the weight was chosen by is the saved model's own validation score.
    assert abs(ngram_bundle.metrics["validation"]["macro_f1"] - report["mixed_score"]) < 1e-6
    assert 1 <= report["kept_epoch"]["epoch"] <= report["kept_epoch"]["last_epoch"] <= TINY_SETTINGS["epochs"]
    test = tiny_data.test
    accuracy = (ngram_bundle.predict_proba(test.texts).argmax(axis=1) == test.labels).mean()
    assert accuracy > 0.75


def test_the_network_beside_the_ngram_model_is_the_one_trained_without_it(ngram_bundle, tiny_data):
    # The n-gram model trains after the network, so --ngrams adds a model and leaves the network as it was.
    alone = train(Config(**TINY_SETTINGS, ngrams=False), tiny_data)
    ids = alone.vectorizer(np.concatenate([tiny_data.test.texts, ["", "great " * 40]]))
    np.testing.assert_array_equal(ngram_bundle.network(ids), alone.network(ids))
    assert ngram_bundle.kept_epoch == alone.kept_epoch and ngram_bundle.history == alone.history


def test_mixed_bundle_reloads_with_the_same_predictions(ngram_bundle, tiny_data, tmp_path):
    reloaded = load_bundle(save_bundle(ngram_bundle, tmp_path / "m"))
    assert reloaded.config.ngrams and reloaded.ngrams == ngram_bundle.ngrams
    texts = np.concatenate([tiny_data.test.texts, ["", "great " * 40]])  # an empty text and a long one
    np.testing.assert_allclose(reloaded.predict_proba(texts), ngram_bundle.predict_proba(texts), atol=1e-6)
    # The network is still where word vectors and warm starts find it.
    assert reloaded.network.name == "network"
    assert reloaded.word_vector_table().shape == (reloaded.vocabulary_size, TINY_SETTINGS["embedding_dim"])


def test_warm_start_continues_the_network_of_a_mixed_bundle(ngram_bundle, tiny_data):
    flipped = dataclasses.replace(tiny_data, train=tiny_data.validation, validation=tiny_data.train)
    config = Config(**{**TINY_SETTINGS, "epochs": 1}, ngrams=True)
    again = train(config, flipped, warm_start=ngram_bundle)
    # One more epoch from the trained network keeps it trained; a fresh network after one epoch is near chance.
    assert again.ngrams["network_score"] > 0.75


def test_ngrams_flag_is_said_and_saved_with_the_bundle(tiny_data, tmp_path, capsys):
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f"{t},{l}\n" for t, l in zip(tiny_data.train.texts, tiny_data.train.labels)))
    status = main(["train", "--dataset", str(data), "--ngrams", "--epochs", "1", "--embedding-dim", "8",
                   "--lstm-units", "8", "--vocab-size", "64", "--output", str(tmp_path / "m")])
    assert status == 0 and load_bundle(tmp_path / "m").config.ngrams
    out = capsys.readouterr().out
    assert "n-gram model: words and word pairs, at most 1 epoch" in out
    assert "n-gram model: kept epoch 1 of 1" in out and "in the mix with the network" in out


def test_report_says_how_the_models_were_mixed(ngram_bundle, tiny_data, tmp_path):
    from textpipe.report import write_report

    write_report(ngram_bundle, tiny_data.test, tmp_path / "r.html", source_description="made", split_name="test")
    weight = 1 - ngram_bundle.ngrams["network_weight"]
    assert f"weight {weight:.1f} in the mix with the network" in (tmp_path / "r.html").read_text()


def three_class_data(tiny_data):
    """tiny_data's texts with a third class: texts that hold neither of its two classes' marker words."""
    from textpipe.data import LabeledData, Split

    def split(part, seed):
        rng = np.random.default_rng(seed)
        plain = [" ".join(rng.choice(["the", "a", "film", "plot", "was", "it", "seen"], size=6)) for _ in part.texts]
        texts = np.concatenate([part.texts, np.array(plain, dtype=object)])
        return Split(texts, np.concatenate([part.labels, np.full(len(plain), 2)]).astype(np.int64))

    return dataclasses.replace(tiny_data, train=split(tiny_data.train, 1), validation=split(tiny_data.validation, 2),
                               test=split(tiny_data.test, 3), class_names=(*tiny_data.class_names, "neither"))


@pytest.mark.slow
def test_conv1d_with_three_classes_mixes_softmax_outputs(tiny_data, tmp_path):
    data = three_class_data(tiny_data)
    settings = {**TINY_SETTINGS, "model": "conv1d", "sequence_length": 24, "word_vector_dim": 8, "skipgram_epochs": 2}
    bundle = train(Config(**settings, ngrams=True), data)
    assert bundle.ngrams["network_weight"] in MIX_WEIGHTS
    probabilities = bundle.predict_proba(data.test.texts)
    assert probabilities.shape == (len(data.test.texts), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities.argmax(axis=1) == data.test.labels).mean() > 0.6  # chance: about 0.33
    reloaded = load_bundle(save_bundle(bundle, tmp_path / "m"))
    np.testing.assert_allclose(reloaded.predict_proba(data.test.texts), probabilities, atol=1e-6)
    # The conv1d model's word vectors are found inside the network, beside the n-gram model.
    assert reloaded.word_vector_table().shape == (reloaded.vocabulary_size, 8)
