"""Bad input on the command line and damaged files get a clear message, and nothing is guessed."""

import shutil

import datasets
import pytest

from textpipe.bundle import load_bundle
from textpipe.cli import main
from textpipe.data import load_labeled_data
from textpipe.errors import BundleError, DataError


def test_predict_replaces_undecodable_argument_bytes_and_says_so(saved_bundle, capsys):
    # What Python makes of the bytes b"bad \xff\xfe" in a command-line argument.
    assert main(["predict", str(saved_bundle), "bad \udcff\udcfe"]) == 0
    out, err = capsys.readouterr()
    label, probability, text = out.rstrip("\n").split("\t")
    assert label in ("negative", "positive") and 0.5 <= float(probability) <= 1
    assert text == "bad \ufffd\ufffd" and "text 1: undecodable bytes replaced" in err


def test_predict_gives_no_label_to_an_empty_text(saved_bundle, capsys):
    assert main(["predict", str(saved_bundle), "a great story", "  "]) == 0
    out, err = capsys.readouterr()
    first, second = out.splitlines()
    assert first.split("\t")[0] in ("negative", "positive")
    assert second.split("\t")[:2] == ["-", "-"] and "text 2 is empty" in err


@pytest.mark.parametrize("size", [0, 100])
def test_an_empty_or_truncated_model_file_is_named_as_such(saved_bundle, tmp_path, size):
    damaged = shutil.copytree(saved_bundle, tmp_path / "damaged")
    model = damaged / "model.keras"
    model.write_bytes(model.read_bytes()[:size])
    with pytest.raises(BundleError, match="empty or truncated"):
        load_bundle(damaged)


def test_a_missing_path_under_a_local_folder_is_not_tried_on_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()

    def no_hub(*args, **kwargs):
        raise AssertionError("tried on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    with pytest.raises(DataError, match="no such file or folder: data/nope"):
        load_labeled_data("data/nope")


def test_a_training_file_that_is_not_utf8_names_its_first_bad_line(tmp_path):
    rows = ["text,label", "a fine film,pos", "tr\xe8s mauvais,neg", "good,pos", "bad,neg"]
    path = tmp_path / "latin.csv"
    path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.csv: line 3 is not valid UTF-8"):
        load_labeled_data(path)
