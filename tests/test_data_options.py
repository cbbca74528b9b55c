"""Reading data that is not in the default shape: another text encoding, no split named "train", integer
labels that need names. Library behaviour first, then the same through the command line."""

import json

import numpy as np
import pandas as pd
import pytest

from textpipe.bundle import load_bundle
from textpipe.cli import main
from textpipe.config import Config
from textpipe.data import load_labeled_data, load_split
from textpipe.errors import ConfigError, DataError
from textpipe.inputs import read_rows, resolve_inputs

LATIN = ["café crème", "naïve plot", "déjà vu", "señor film", "über dull", "façade"]


def rows(texts, labels):
    return pd.DataFrame({"text": texts, "label": labels})


def write_latin1_csv(path, n=12):
    frame = rows([LATIN[i % len(LATIN)] + f" {i}" for i in range(n)], ["pos" if i % 2 else "neg" for i in range(n)])
    frame.to_csv(path, index=False, encoding="latin-1")
    return path


# --- encoding ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_training_files_in_another_encoding(tmp_path, suffix):
    frame = rows([LATIN[i % len(LATIN)] for i in range(12)], [i % 2 for i in range(12)])
    path = tmp_path / f"train{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False, encoding="latin-1")
    else:
        lines = (json.dumps(record, ensure_ascii=False) for record in frame.to_dict("records"))
        path.write_bytes("\n".join(lines).encode("latin-1"))
    first = 2 if suffix == ".csv" else 1  # after the header
    with pytest.raises(DataError, match=rf"train{suffix}: line {first} is not valid UTF-8; name the file's encoding"):
        load_labeled_data(path)
    data = load_labeled_data(path, encoding="latin-1")
    texts = set(np.concatenate([data.train.texts, data.validation.texts]))
    assert texts == set(LATIN)


def test_utf16_training_file_and_wrong_encoding_names_the_line(tmp_path):
    texts = [LATIN[i % len(LATIN)] for i in range(12)]
    path = tmp_path / "train.csv"
    rows(texts, [i % 2 for i in range(12)]).to_csv(path, index=False, encoding="utf-16")
    data = load_labeled_data(path, encoding="utf-16")
    assert set(np.concatenate([data.train.texts, data.validation.texts])) == set(LATIN)

    ascii_file = tmp_path / "ascii.csv"
    ascii_file.write_bytes(b"text,label\nfine,0\nalso fine,1\ncaf\xe9,0\nok,1\n")
    with pytest.raises(DataError, match=r"ascii.csv: line 4 is not valid ascii"):
        load_labeled_data(ascii_file, encoding="ascii")


def test_encoding_is_refused_where_it_means_nothing(tmp_path):
    rows(["a b", "c d"] * 4, [0, 1] * 4).to_parquet(tmp_path / "train.parquet")
    with pytest.raises(DataError, match="Parquet, which is always UTF-8"):
        load_labeled_data(tmp_path / "train.parquet", encoding="latin-1")
    with pytest.raises(ConfigError, match="unknown text encoding 'latin-9000'"):
        Config(encoding="latin-9000")


def test_scoring_inputs_in_another_encoding(tmp_path):
    text = tmp_path / "in.txt"
    text.write_bytes("café crème\nnaïve\n".encode("cp1252"))
    table = tmp_path / "in.csv"
    table.write_bytes('text,id\n"déjà\nvu",1\nok,2\n'.encode("utf-16"))
    (spec,) = resolve_inputs([str(text)])
    assert [(r.text, r.replaced) for r in read_rows(spec)] == [("caf\ufffd cr\ufffdme", True), ("na\ufffdve", True)]
    (spec,) = resolve_inputs([str(text)], encoding="cp1252")
    assert [(r.text, r.replaced) for r in read_rows(spec)] == [("café crème", False), ("naïve", False)]
    (spec,) = resolve_inputs([str(table)], id_column="id", encoding="utf-16")
    assert [(r.row, r.text, r.id) for r in read_rows(spec)] == [(1, "déjà\nvu", "1"), (2, "ok", "2")]
    with pytest.raises(DataError, match="unknown text encoding"):
        resolve_inputs([str(text)], encoding="klingon")


def test_bytes_invalid_in_the_named_encoding_are_replaced_and_flagged(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"fine\n\x81 undefined in cp1252\n")  # 0x81 has no character in cp1252
    (spec,) = resolve_inputs([str(path)], encoding="cp1252")
    assert [(r.text, r.replaced) for r in read_rows(spec)] == [("fine", False), ("\ufffd undefined in cp1252", True)]


# --- a dataset without a train split ----------------------------------------------------------------------


def test_no_train_split_says_how_to_train_and_train_split_does(tmp_path):
    rows([f"text {i}" for i in range(20)], [i % 2 for i in range(20)]).to_csv(tmp_path / "validation.csv", index=False)
    rows([f"test {i}" for i in range(10)], [i % 2 for i in range(10)]).to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(DataError, match=r"no 'train' split \(splits: .*\); name the split to train on with "
                                        r"--train-split \(e.g. --train-split validation\), or give one file"):
        load_labeled_data(tmp_path)
    data = load_labeled_data(tmp_path, train_split="validation")
    # The split trained on is not also the validation split: validation is carved from it.
    assert len(data.train) + len(data.validation) == 20 and data.validation_from_train
    assert len(data.test) == 10
    with pytest.raises(DataError, match="no split 'dev' to train on"):
        load_labeled_data(tmp_path, train_split="dev")
    # Training on the test split leaves no test split to report on.
    assert load_labeled_data(tmp_path, train_split="test").test is None


# --- names for integer labels -----------------------------------------------------------------------------


def test_label_names_name_integer_classes_in_id_order(tmp_path):
    rows([f"row {i}" for i in range(20)], [1, 2, 3, 4, 5] * 4).to_csv(tmp_path / "train.csv", index=False)
    rows([f"test {i}" for i in range(5)], [5, 4, 3, 2, 1]).to_csv(tmp_path / "test.csv", index=False)
    names = ("awful", "bad", "ok", "good", "great")
    data = load_labeled_data(tmp_path, label_names=names)
    assert data.class_names == names and data.label_ids == ("1", "2", "3", "4", "5")
    assert data.test.labels.tolist() == [4, 3, 2, 1, 0]
    # Another split maps its ids through the training data's ids, not by their names.
    split = load_split(tmp_path, "test", class_names=names, label_ids=data.label_ids)
    assert split.labels.tolist() == [4, 3, 2, 1, 0]
    with pytest.raises(DataError, match=r"3 label names for the 5 classes of .* \(label ids 1, 2, 3, 4, 5\)"):
        load_labeled_data(tmp_path, label_names=("a", "b", "c"))
    rows(["x"] * 2, [9, 1]).to_csv(tmp_path / "odd.csv", index=False)
    with pytest.raises(DataError, match=r"label id 9, which is not among the label ids \(1, 2, 3, 4, 5\)"):
        load_split(tmp_path / "odd.csv", "train", class_names=names, label_ids=data.label_ids)


def test_label_names_are_refused_for_string_labels(tmp_path):
    rows(["a", "b"] * 4, ["neg", "pos"] * 4).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(DataError, match=r"labels of .* are names already \(neg, pos\)"):
        load_labeled_data(tmp_path / "train.csv", label_names=("n", "p"))
    with pytest.raises(ConfigError, match="names two classes 'n'"):
        Config(label_names=["n", "n "])


# --- the command line ------------------------------------------------------------------------------------


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_label_names_and_encoding_from_the_command_line(tmp_path, capsys):
    from conftest import make_sentences

    folder = tmp_path / "data"
    folder.mkdir()
    for split, n, seed in [("validation", 400, 21), ("test", 80, 22)]:
        texts, labels = make_sentences(n, seed)
        # Latin-1 text, integer labels, and no train split.
        rows([t + " café" for t in texts], labels).to_csv(folder / f"{split}.csv", index=False, encoding="latin-1")
    bundle_dir = tmp_path / "bundle"
    status, out, err = run(
        capsys, "train", "--dataset", folder, "--train-split", "validation", "--encoding", "latin-1",
        "--label-names", "neg, pos", "--vocab-size", 64, "--sequence-length", 16, "--embedding-dim", 16,
        "--lstm-units", 16, "--epochs", 6, "--seed", 3, "--output", bundle_dir,
    )
    assert status == 0, err
    assert "classes: neg, pos" in out
    bundle = load_bundle(bundle_dir)
    assert bundle.class_names == ("neg", "pos") and bundle.label_ids == ("0", "1")
    assert bundle.config.label_names == ("neg", "pos") and bundle.config.encoding == "latin-1"

    # evaluate: the test split's integer labels are read through the bundle's ids and encoding.
    status, out, err = run(capsys, "evaluate", bundle_dir, "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["n"] == 80 and result["accuracy"] > 0.75

    inputs = tmp_path / "in.txt"
    inputs.write_bytes("a wonderful film café\nan awful plot\n".encode("latin-1"))
    status, out, err = run(capsys, "score", bundle_dir, inputs, "--encoding", "latin-1", "--output", "-")
    assert status == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["label"] for r in records] == ["pos", "neg"]
    assert not any(r["replaced_bytes"] for r in records)
    assert set(records[0]["probabilities"]) == {"neg", "pos"}

    status, out, err = run(capsys, "score", bundle_dir, inputs, "--encoding", "ebcdic-9", "--output", "-")
    assert status == 2 and "unknown text encoding 'ebcdic-9'" in err


# --- edge cases of encodings and of label ids ---------------------------------------------------------------


def test_bytes_no_encoding_can_read_are_flagged_not_fatal(tmp_path):
    path = tmp_path / "in.txt"
    # UTF-16-LE: two good lines, then a lone high surrogate, then an odd byte at the very end.
    path.write_bytes("ok\nfine\n".encode("utf-16-le") + b"\x00\xd8x\x00\n\x00" + b"A")
    (spec,) = resolve_inputs([str(path)], encoding="utf-16-le")
    rows = [(r.text, r.replaced) for r in read_rows(spec)]
    assert rows[:2] == [("ok", False), ("fine", False)]
    assert [replaced for _, replaced in rows[2:]] == [True, True]
    assert rows[2][0] == "\ufffdx"


@pytest.mark.parametrize("spelling", ["utf-8", "UTF8", "utf_8"])
def test_utf8_spelled_any_way_is_the_default_path(tmp_path, spelling):
    assert Config(encoding=spelling).encoding is None
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"text": "caf\xe9", "label": 0}\n{"text": "ok", "label": 1}\n')
    with pytest.raises(DataError, match="line 1 is not valid UTF-8"):  # checked up front, with its line
        load_labeled_data(path, encoding=spelling)


def test_utf16_json_lines_are_refused_with_the_way_out(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes('{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n'.encode("utf-16"))
    with pytest.raises(DataError, match=r"must be UTF-8 or an ASCII-compatible encoding, not utf-16; .*iconv"):
        load_labeled_data(path, encoding="utf-16")


def test_classlabel_data_maps_through_names_or_the_models_label_ids(tmp_path):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [1, 0, 1]}, features=features).to_parquet(
        tmp_path / "test.parquet")
    # A model trained on string labels, its classes in another order: by name.
    assert load_split(tmp_path, "test", class_names=("pos", "neg")).labels.tolist() == [0, 1, 0]
    # A model trained on integer labels 1 and 2: ClassLabel ids 0 and 1 are not its ids.
    with pytest.raises(DataError, match=r"label id 0, which is not among the label ids \(1, 2\)"):
        load_split(tmp_path, "test", class_names=("one", "two"), label_ids=("1", "2"))
    # Trained on ids 0 and 1 (any names): the ids are the same.
    assert load_split(tmp_path, "test", class_names=("no", "yes"), label_ids=("0", "1")).labels.tolist() == [1, 0, 1]


def test_a_validation_fraction_over_half_of_a_tiny_set_is_carved_or_refused_in_one_line(tmp_path):
    rows([f"text {i}" for i in range(6)], ["a", "b", "c"] * 2).to_csv(tmp_path / "train.csv", index=False)
    data = load_labeled_data(tmp_path, validation_fraction=0.6)  # too few rows left in train to stratify
    assert (len(data.train), len(data.validation)) == (2, 4) and len(set(data.train.labels)) == 2
    with pytest.raises(DataError, match="only one class"):
        load_labeled_data(tmp_path, validation_fraction=0.95)  # all but one row held out
