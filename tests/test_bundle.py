import io
import json
import shutil
import zipfile

import h5py
import numpy as np
import pytest
import tensorflow as tf

from textpipe.bundle import META_FILE, MODEL_FILE, load_bundle, save_bundle
from textpipe.errors import BundleError, DataError
from textpipe.layers import standardize
from textpipe.preprocess import make_dataset

EDGE_TEXTS = ["", "great film", "AWFUL!!!", "caf\u00e9 \U0001f600 lovely", "word " * 300, "zzz unknown qqq"]


def test_round_trip_gives_identical_predictions(tiny_bundle, saved_bundle, tiny_data):
    loaded = load_bundle(saved_bundle)
    texts = list(tiny_data.test.texts) + EDGE_TEXTS
    np.testing.assert_array_equal(loaded.predict_proba(texts), tiny_bundle.predict_proba(texts))
    assert loaded.class_names == tiny_bundle.class_names
    assert loaded.config == tiny_bundle.config
    assert loaded.vectorizer.get_vocabulary() == tiny_bundle.vectorizer.get_vocabulary()
    assert loaded.metrics == json.loads(json.dumps(tiny_bundle.metrics))
    assert loaded.history["loss"] == tiny_bundle.history["loss"]


def test_a_loaded_bundle_reads_unicode_text_as_the_trained_one_did(tiny_bundle, saved_bundle):
    loaded = load_bundle(saved_bundle)
    assert loaded.vectorizer.get_config()["standardize"] is standardize
    # A curly apostrophe and emoji glued to words read as the plain words and the emoji on their own.
    glued = ["the film was lovely\U0001F60D\U0001F60D", "\u201cboring\u201d plot\u2026"]
    spaced = ["the film was lovely \U0001F60D \U0001F60D", "boring plot"]
    np.testing.assert_array_equal(loaded.vectorizer(glued).numpy(), tiny_bundle.vectorizer(spaced).numpy())
    np.testing.assert_allclose(loaded.predict_proba(glued), tiny_bundle.predict_proba(spaced), atol=1e-6)


def test_saved_model_holds_weights_but_no_optimizer_state(tiny_bundle, saved_bundle):
    with zipfile.ZipFile(saved_bundle / MODEL_FILE) as archive:
        assert b"optimizer" not in archive.read("config.json")  # nor an optimizer to build when loading
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
            sizes = {}

            def record(name, item):
                if isinstance(item, h5py.Dataset):
                    sizes[name] = item.size

            weights.visititems(record)
    assert sizes and not [name for name in sizes if "optimizer" in name]
    assert tiny_bundle.classifier.optimizer is not None  # the trained model keeps its own
    n_weights = sum(w.size for w in tiny_bundle.classifier.get_weights())
    assert sum(size for name, size in sizes.items() if name.startswith("layers/functional/")) == n_weights


def test_raw_strings_tf_data_and_preprocessed_ids_agree(saved_bundle, tiny_data):
    bundle = load_bundle(saved_bundle)
    texts = list(tiny_data.test.texts[:40])
    from_strings = bundle.model.predict(np.array(texts, dtype=object), verbose=0)
    from_dataset = bundle.model.predict(tf.data.Dataset.from_tensor_slices(texts).batch(7), verbose=0)
    ids = make_dataset(bundle.vectorizer, tiny_data.test, 40, shuffle=False, group_by_length=False).take(1)
    from_ids = bundle.classifier.predict(ids.map(lambda x, y: x), verbose=0)
    np.testing.assert_allclose(from_strings, from_dataset, atol=1e-6)
    np.testing.assert_allclose(from_strings, from_ids, atol=1e-6)
    # Batches of similar length, each cut to its longest text, give every text the same probability.
    every = bundle.model.predict(np.array(tiny_data.test.texts, dtype=object), verbose=0)
    grouped = make_dataset(bundle.vectorizer, tiny_data.test, 16, shuffle=False)
    by_ids = {tuple(i[i != 0]): p for x, _ in grouped for i, p in zip(x.numpy(), bundle.classifier(x).numpy())}
    expected = {tuple(i[i != 0]): p for i, p in zip(bundle.vectorizer(tiny_data.test.texts).numpy(), every)}
    assert by_ids.keys() == expected.keys()
    np.testing.assert_allclose([by_ids[k] for k in expected], list(expected.values()), atol=1e-6)


def test_batched_equals_one_by_one(tiny_bundle):
    texts = EDGE_TEXTS + ["the film was lovely", "boring plot"]
    batched = tiny_bundle.predict_proba(texts)
    single = np.concatenate([tiny_bundle.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-6)
    assert batched.shape == (len(texts), 2)
    np.testing.assert_allclose(batched.sum(axis=1), 1.0, rtol=1e-6)
    assert tiny_bundle.predict(["the film was lovely", "a dreadful show"]) == ["positive", "negative"]


def test_predict_rejects_non_text(tiny_bundle):
    with pytest.raises(DataError, match="single string"):
        tiny_bundle.predict("great film")
    with pytest.raises(DataError, match="text 1 is float"):
        tiny_bundle.predict(["ok", float("nan")])
    assert tiny_bundle.predict_proba([]).shape == (0, 2)


def test_saved_model_layout(saved_bundle):
    meta = json.loads((saved_bundle / META_FILE).read_text())
    assert meta["format"] == "textpipe-bundle" and meta["format_version"] == 5
    assert meta["class_names"] == ["negative", "positive"]
    assert set(meta["metrics"]["validation"]) >= {"accuracy", "macro_f1", "confusion_matrix", "roc_auc"}
    assert sorted(p.name for p in saved_bundle.iterdir()) == [META_FILE, MODEL_FILE]


def test_missing_and_corrupt_bundles_are_clear_errors(saved_bundle, tmp_path):
    with pytest.raises(BundleError, match="no model bundle at"):
        load_bundle(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(saved_bundle, broken)
    (broken / MODEL_FILE).write_bytes(b"not a zip file")
    with pytest.raises(BundleError, match="empty or truncated"):
        load_bundle(broken)
    (broken / MODEL_FILE).unlink()
    with pytest.raises(BundleError, match="incomplete: model.keras is missing"):
        load_bundle(broken)
    (broken / META_FILE).write_text("{ not json")
    with pytest.raises(BundleError, match="corrupt"):
        load_bundle(broken)
    (broken / META_FILE).unlink()
    with pytest.raises(BundleError, match="not a textpipe bundle"):
        load_bundle(broken)


def test_newer_format_is_refused(saved_bundle, tmp_path):
    newer = tmp_path / "newer"
    shutil.copytree(saved_bundle, newer)
    meta = json.loads((newer / META_FILE).read_text())
    meta["format_version"] = 99
    (newer / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="upgrade textpipe"):
        load_bundle(newer)


def test_interrupted_save_leaves_old_bundle_and_no_debris(tiny_bundle, saved_bundle, tmp_path, monkeypatch):
    target = tmp_path / "model"
    shutil.copytree(saved_bundle, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("textpipe.bundle._write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        save_bundle(tiny_bundle, target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_interrupted_first_save_leaves_nothing(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setattr("textpipe.bundle._write_json", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_bundle(tiny_bundle, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_save_replaces_a_bundle_but_not_other_folders(tiny_bundle, saved_bundle, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(saved_bundle, target)
    save_bundle(tiny_bundle, target)
    assert load_bundle(target).class_names == tiny_bundle.class_names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(BundleError, match="not a textpipe bundle; refusing"):
        save_bundle(tiny_bundle, other)
    assert (other / "cat.jpg").read_bytes() == b"meow"
