import json

import datasets
import numpy as np
import pandas as pd
import pytest

from textpipe.data import SAMPLE_DATASET, load_labeled_data, load_split
from textpipe.errors import DataError


def frame(n=20, text="text", label="label", labels=None):
    labels = labels if labels is not None else [i % 2 for i in range(n)]
    return pd.DataFrame({text: [f"row {i} words" for i in range(n)], label: labels})


def write(df, path):
    suffix = path.suffix
    if suffix == ".parquet":
        df.to_parquet(path)
    elif suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".tsv", ".jsonl"])
def test_folder_of_split_files(tmp_path, suffix):
    write(frame(30), tmp_path / f"train{suffix}")
    write(frame(6), tmp_path / f"validation{suffix}")
    write(frame(8), tmp_path / f"test{suffix}")
    data = load_labeled_data(tmp_path)
    assert (len(data.train), len(data.validation), len(data.test)) == (30, 6, 8)
    assert data.train.texts[3] == "row 3 words"
    assert data.class_names == ("0", "1")
    assert not data.validation_from_train


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".tsv", ".jsonl"])
def test_single_file_carves_a_seeded_stratified_validation(tmp_path, suffix):
    path = write(frame(100), tmp_path / f"all{suffix}")
    a = load_labeled_data(path, validation_fraction=0.1, seed=3)
    b = load_labeled_data(path, validation_fraction=0.1, seed=3)
    c = load_labeled_data(path, validation_fraction=0.1, seed=4)
    assert (len(a.train), len(a.validation)) == (90, 10)
    assert a.validation_from_train and a.test is None
    assert list(a.validation.texts) == list(b.validation.texts)
    assert list(a.validation.texts) != list(c.validation.texts)
    assert set(a.train.texts).isdisjoint(a.validation.texts)
    assert np.bincount(a.validation.labels).tolist() == [5, 5]


def test_string_labels_become_ids_with_names(tmp_path):
    write(frame(10, labels=["pos", "neg"] * 5), tmp_path / "train.csv")
    write(frame(4, labels=["neg", "neg", "pos", "neg"]), tmp_path / "test.csv")
    data = load_labeled_data(tmp_path)
    assert data.class_names == ("neg", "pos")
    assert data.train.labels[:2].tolist() == [1, 0]
    assert data.test.labels.tolist() == [0, 0, 1, 0]


def test_unseen_string_label_in_another_split_is_named(tmp_path):
    write(frame(10, labels=["pos", "neg"] * 5), tmp_path / "train.csv")
    write(frame(2, labels=["pos", "meh"]), tmp_path / "test.csv")
    with pytest.raises(DataError, match="label 'meh'.*not among the classes"):
        load_labeled_data(tmp_path)


def test_class_label_names_are_kept(tmp_path):
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["sad", "happy", "calm"])}
    )
    ds = datasets.Dataset.from_dict({"text": ["a", "b", "c", "d"], "label": [0, 1, 2, 1]}, features=features)
    ds.to_parquet(str(tmp_path / "train.parquet"))
    data = load_labeled_data(tmp_path)
    assert data.class_names == ("sad", "happy", "calm")


def test_hub_ids_go_through_load_dataset(monkeypatch):
    calls = []
    train = datasets.Dataset.from_dict({"sentence": ["good", "bad"] * 10, "label": [1, 0] * 10})
    unlabeled = datasets.Dataset.from_dict({"sentence": ["x", "y"], "label": [-1, -1]})

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name))
        return datasets.DatasetDict({"train": train, "validation": train, "test": unlabeled})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_labeled_data("glue", "sst2")
    assert calls == [("glue", "sst2")]
    assert data.text_column == "sentence"
    assert data.test is None  # GLUE's test split has no public labels (-1): not used for evaluation
    with pytest.raises(DataError, match="no labels"):
        load_split("glue", "test", "sst2", class_names=("0", "1"))


@pytest.mark.parametrize(
    "error, message",
    [
        (ConnectionError("Couldn't reach 'imdb' on the Hub"), "could not reach the Hugging Face Hub.*local folder"),
        (datasets.exceptions.DatasetNotFoundError("nope"), "not found on the Hugging Face Hub"),
        (ValueError("BuilderConfig 'sst3' not found. Available: ['sst2']"), "could not load 'imdb'.*sst3"),
    ],
)
def test_hub_failures_are_one_line_errors(monkeypatch, error, message):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(datasets, "load_dataset", failing)
    with pytest.raises(DataError, match=message):
        load_labeled_data("imdb")


def test_sample_dataset_is_the_default():
    data = load_labeled_data()
    assert data.class_names == ("negative", "positive")
    assert len(data.train) > 300 and data.test is not None
    assert SAMPLE_DATASET.is_dir()


@pytest.mark.parametrize(
    "make, kwargs, message",
    [
        (lambda d: write(frame(10, text="body"), d / "train.csv"), {}, "no text column found.*--text-column"),
        (lambda d: write(frame(10, label="y"), d / "train.csv"), {}, "no label column found.*--label-column"),
        (
            lambda d: write(frame(10).assign(sentence="x"), d / "train.csv"),
            {},
            "ambiguous text column.*text, sentence",
        ),
        (lambda d: write(frame(10), d / "train.csv"), {"text_column": "body"}, "no column 'body'"),
        (lambda d: write(frame(10, labels=[1] * 10), d / "train.csv"), {}, "only one class"),
        (lambda d: write(frame(0), d / "train.parquet"), {}, "split 'train' .* is empty"),
        (lambda d: write(frame(10), d / "validation.csv"), {}, "no 'train' split"),
        (
            lambda d: write(frame(4).assign(text=["a", None, "c", "d"]), d / "train.parquet"),
            {},
            "row 2 of split 'train' .* no text",  # rows count from 1, as a user counts them
        ),
        (
            lambda d: write(frame(4).assign(text=["a", float("nan"), "c", "d"]), d / "train.csv"),
            {},
            "row 2 of split 'train' .* no text",
        ),
        (lambda d: write(frame(4).assign(text=[1, 2, 3, 4]), d / "train.parquet"), {}, "holds int64 values, not text"),
        (lambda d: write(frame(4, labels=[0, 1, None, 1]), d / "train.parquet"), {}, "row 3 .* has no label"),
        (
            lambda d: (write(frame(10), d / "train.parquet"), write(frame(4).drop(columns="label"), d / "validation.parquet")),
            {},
            "row 1 of split 'validation' .* has no label",
        ),
        (lambda d: write(frame(4, labels=[0, 1, 0.5, 1]), d / "train.parquet"), {}, "not class ids or names"),
        (lambda d: (d / "notes.txt").write_text("hi"), {}, "has no data files"),
        (
            lambda d: (write(frame(4), d / "train.csv"), write(frame(4), d / "test.parquet")),
            {},
            "one format",
        ),
    ],
)
def test_bad_data_raises_a_one_line_error(tmp_path, make, kwargs, message):
    make(tmp_path)
    with pytest.raises(DataError, match=message) as info:
        load_labeled_data(tmp_path, **kwargs)
    assert "\n" not in str(info.value)


def test_missing_local_path_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_labeled_data(tmp_path / "nothing-here")
    with pytest.raises(DataError, match="no such file or folder"):
        load_labeled_data("reviews.csv")


def test_load_split_maps_labels_onto_given_classes(tmp_path):
    write(frame(4, labels=["b", "a", "b", "b"]), tmp_path / "test.jsonl")
    split = load_split(tmp_path, "test", class_names=("b", "a"))
    assert split.labels.tolist() == [0, 1, 0, 0]
    with pytest.raises(DataError, match="no split 'dev'.*test"):
        load_split(tmp_path, "dev", class_names=("b", "a"))
    write(frame(2, labels=[0, 5]), tmp_path / "other.jsonl")
    with pytest.raises(DataError, match="label '5', which is not among the classes"):
        load_split(tmp_path / "other.jsonl", "train", class_names=("0", "1"))


def test_jsonl_nested_objects_are_rejected_as_text(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps({"text": {"a": i}, "label": i % 2}) for i in range(4)))
    with pytest.raises(DataError, match="not text"):
        load_labeled_data(path)


def test_header_only_csv_and_garbage_parquet(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\n")
    with pytest.raises(DataError, match="empty"):
        load_labeled_data(tmp_path / "train.csv")
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match="could not read .*bad.parquet"):
        load_labeled_data(tmp_path / "bad.parquet")


def test_integer_labels_are_classes_by_value(tmp_path):
    # Star ratings 1..5 are five classes, not six with an empty class 0; -1/1 sentiment works too.
    write(frame(10, labels=[1, 2, 3, 4, 5] * 2), tmp_path / "train.parquet")
    data = load_labeled_data(tmp_path / "train.parquet")
    assert data.class_names == ("1", "2", "3", "4", "5")
    assert sorted(set(np.concatenate([data.train.labels, data.validation.labels]).tolist())) == [0, 1, 2, 3, 4]
    write(frame(10, labels=[-1, 1] * 5), tmp_path / "pm.parquet")
    assert load_labeled_data(tmp_path / "pm.parquet").class_names == ("-1", "1")
    # In the order of their values, not of their text: "10" after "2".
    rows = frame(12, labels=[2, 10, 1] * 4)
    write(rows, tmp_path / "ten.parquet")
    ten = load_labeled_data(tmp_path / "ten.parquet")
    assert ten.class_names == ("1", "2", "10")
    value = dict(zip(rows["text"], rows["label"]))
    assert all(ten.class_names[y] == str(value[t]) for t, y in zip(ten.train.texts, ten.train.labels))
