"""A bundle's two files agree with each other, and the data a model trains on is what it looks like."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SETTINGS, make_sentences
from sklearn.model_selection import train_test_split

from textpipe.bundle import META_FILE, MODEL_FILE, Bundle, end_to_end, load_bundle, save_bundle
from textpipe.config import Config
from textpipe.data import Split, _carve, load_labeled_data, load_split
from textpipe.errors import BundleError, DataError

# --- 8. bundle.json must agree with model.keras ----------------------------------------------------------


def edited_copy(saved_bundle, tmp_path, **changes):
    """A copy of the saved bundle whose bundle.json has `changes`."""
    copy = tmp_path / "edited"
    shutil.copytree(saved_bundle, copy)
    meta = json.loads((copy / META_FILE).read_text())
    meta.update(changes)
    (copy / META_FILE).write_text(json.dumps(meta))
    return copy


def load_error(path) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_more_class_names_than_the_sigmoid_model_predicts_is_refused(saved_bundle, tmp_path):
    # Before: loaded, and predicted only "a" and "b", never "c", with no error.
    path = edited_copy(saved_bundle, tmp_path, class_names=["a", "b", "c"])
    message = load_error(path)
    assert str(path / META_FILE) in message
    assert "names 3 classes but" in message and f"{MODEL_FILE} has 1 sigmoid output (2 classes)" in message


@pytest.mark.parametrize(
    "class_names, expected",
    [
        ([], "names no classes"),  # before: IndexError when predicting
        ("ab", "names no classes"),  # a string, not a list: before, read as the classes "a" and "b"
        (["pos"], "names 1 classes but"),
        (["pos", "pos"], "names class 'pos' twice"),
        (["pos", ""], "class name ''; class names must be non-empty strings"),
        (["pos", 1], "class name 1; class names must be non-empty strings"),
    ],
)
def test_bad_class_names_are_refused(saved_bundle, tmp_path, class_names, expected):
    path = edited_copy(saved_bundle, tmp_path, class_names=class_names)
    message = load_error(path)
    assert expected in message and str(path / META_FILE) in message


def test_vocabulary_size_must_match_the_vectorizer(saved_bundle, tmp_path):
    size = load_bundle(saved_bundle).vocabulary_size
    path = edited_copy(saved_bundle, tmp_path, vocabulary_size=size + 5)
    message = load_error(path)
    assert f"vocabulary_size {size + 5} but the vectorizer in {path / MODEL_FILE} holds {size} entries" in message


@pytest.fixture(scope="module")
def three_class_bundle(tmp_path_factory, tiny_data):
    """An untrained three-class (softmax) bundle: only its shapes matter here."""
    from textpipe.models import build_model
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer

    config = Config(**TINY_SETTINGS)
    vectorizer = build_vectorizer(config.vocab_size, config.sequence_length)
    adapt_vectorizer(vectorizer, tiny_data.train.texts)
    bundle = Bundle(
        end_to_end(vectorizer, build_model(config, 3)), config, ("a", "b", "c"), vectorizer.vocabulary_size()
    )
    return save_bundle(bundle, tmp_path_factory.mktemp("three") / "bundle")


def test_softmax_bundle_checks_its_class_count(three_class_bundle, tmp_path):
    assert load_bundle(three_class_bundle).predict_proba(["great film"]).shape == (1, 3)
    path = edited_copy(three_class_bundle, tmp_path, class_names=["a", "b"])
    assert f"names 2 classes but {path / MODEL_FILE} has 3 outputs" in load_error(path)


def test_a_model_file_from_another_bundle_is_refused(saved_bundle, tmp_path):
    # Before: a model.keras copied from a bundle of the same shapes loaded, and predicted under this one's
    # names. Here the other bundle's model says the opposite of this one's.
    other = load_bundle(saved_bundle)
    head = other.classifier.get_layer("probabilities")
    head.set_weights([-w for w in head.get_weights()])
    other_path = save_bundle(other, tmp_path / "other")
    mixed = shutil.copytree(saved_bundle, tmp_path / "mixed")
    shutil.copy(other_path / MODEL_FILE, mixed / MODEL_FILE)
    message = load_error(mixed)
    assert message == (f"{mixed / MODEL_FILE} is not the model saved with {META_FILE} (its SHA-256 differs): the two "
                       "files come from different bundles, or the model was changed since; restore the bundle's own "
                       "model.keras or retrain")
    meta = json.loads((other_path / META_FILE).read_text())
    meta["class_names"] = ["bad", "good"]  # bundle.json alone may be edited
    (other_path / META_FILE).write_text(json.dumps(meta))
    assert load_bundle(other_path).class_names == ("bad", "good")
    meta = json.loads((mixed / META_FILE).read_text())
    del meta["model_sha256"]  # as in bundles of earlier versions: loaded unchecked
    (mixed / META_FILE).write_text(json.dumps(meta))
    assert load_bundle(mixed).predict_proba(["a great film"]) == pytest.approx(
        1 - load_bundle(saved_bundle).predict_proba(["a great film"]), abs=1e-5)


def test_matching_bundles_still_load(saved_bundle):
    bundle = load_bundle(saved_bundle)
    assert bundle.class_names == ("negative", "positive")


# --- 9. the train split keeps two classes after validation is carved from it -----------------------------


def test_carving_the_only_row_of_a_class_is_an_error(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("text,label\ngood movie,pos\ngreat film,pos\nawful,neg\n")
    # Before: validation took the only 'neg' row and training ran on 'pos' alone.
    with pytest.raises(DataError) as info:
        load_labeled_data(path, seed=0)
    message = str(info.value)
    assert "\n" not in message
    assert "only one class ('pos')" in message and "every row of 'neg'" in message
    assert "at least two rows" in message and "validation split" in message


def test_a_class_with_two_rows_keeps_one_in_train():
    # 3 classes with 1, 2 and 17 rows: stratifying is impossible (one row), so the carve is plain random.
    labels = np.array([0] + [1] * 2 + [2] * 17)
    split = Split(np.array([f"t{i}" for i in range(20)], dtype=object), labels)
    # Before: about one seed in four put both rows of class 1 in validation.
    for seed in range(100):
        train, validation = _carve(split, 0.5, seed)
        assert (len(train), len(validation)) == (10, 10)
        assert 1 in train.labels and 2 in train.labels
        assert sorted(train.texts.tolist() + validation.texts.tolist()) == sorted(split.texts.tolist())


@pytest.mark.parametrize("seed", [0, 11])
def test_carving_is_unchanged_when_no_class_is_lost(seed):
    # A carve that loses no class is the seeded train_test_split it always was: existing splits stay put.
    texts, labels = make_sentences(40, 5)
    split = Split(np.array(texts, dtype=object), np.array(labels))
    train, validation = _carve(split, 0.1, seed)
    keep, held = train_test_split(np.arange(40), test_size=4, random_state=seed, stratify=split.labels)
    assert validation.texts.tolist() == split.texts[np.sort(held)].tolist()
    assert train.texts.tolist() == split.texts[np.sort(keep)].tolist()


# --- 10. labels differing by surrounding whitespace are one class; by case, an error ------------------


def test_surrounding_whitespace_in_string_labels_is_stripped(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,pos\nb,pos \nc, neg\nd,neg\ne,\tpos\n")
    (tmp_path / "test.csv").write_text("text,label\nf,neg  \ng,pos\n")
    data = load_labeled_data(tmp_path, validation_fraction=0.2)
    assert data.class_names == ("neg", "pos")
    assert data.test.labels.tolist() == [0, 1]
    split = load_split(tmp_path, "test", class_names=("pos", "neg"))
    assert split.labels.tolist() == [1, 0]


def test_labels_differing_only_by_case_are_an_error(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,pos\nb,Pos\nc,neg\nd,neg\n")
    with pytest.raises(DataError, match=r"labels 'Pos' and 'pos', which differ only by case") as info:
        load_labeled_data(tmp_path)
    assert "\n" not in str(info.value)


def test_a_label_of_another_case_in_another_split_gets_a_hint(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,pos\nb,pos\nc,neg\nd,neg\n")
    (tmp_path / "test.csv").write_text("text,label\ne,POS\n")
    with pytest.raises(DataError, match=r"label 'POS', which is not among .* did you mean 'pos'"):
        load_labeled_data(tmp_path)


def test_a_blank_label_is_an_error(tmp_path):
    pd.DataFrame({"text": ["a", "b", "c"], "label": ["pos", "  ", "neg"]}).to_parquet(tmp_path / "train.parquet")
    with pytest.raises(DataError, match=r"row 2 of split 'train' .* has an empty label in column 'label'"):
        load_labeled_data(tmp_path)
