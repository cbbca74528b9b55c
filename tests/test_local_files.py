"""Local dataset files that cannot be read as they are: two files for one split, and malformed or undecodable
files, each refused with one line naming the file (and the line) and nothing else on standard error."""

import logging

import pandas as pd
import pytest

from textpipe.data import load_labeled_data, load_raw, load_split
from textpipe.errors import DataError


def rows(n=10, first="row"):
    return pd.DataFrame({"text": [f"{first} {i} words" for i in range(n)], "label": [i % 2 for i in range(n)]})


def library_lines(err):
    """Lines on standard error other than datasets' progress bars (hidden by the command line)."""
    return [line for line in err.splitlines() if line.strip() and "Generating" not in line]


# --- two files for one split ----------------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["train.jsonl", "train.parquet", "train.CSV"])
def test_two_files_for_one_split_are_refused(tmp_path, other):
    rows().to_csv(tmp_path / "train.csv", index=False)
    frame = rows(first="other")
    if other.endswith(".jsonl"):
        frame.to_json(tmp_path / other, orient="records", lines=True)
    elif other.endswith(".parquet"):
        frame.to_parquet(tmp_path / other)
    else:
        frame.to_csv(tmp_path / other, index=False)
    names = ", ".join(sorted(["train.csv", other]))
    with pytest.raises(DataError, match=rf"^{tmp_path} has two files for split train: {names}; keep one$"):
        load_labeled_data(tmp_path)
    with pytest.raises(DataError, match="two files for split train"):
        load_split(tmp_path, "train", class_names=("0", "1"))


def test_two_validation_files_are_refused_unless_one_is_trained_on(tmp_path):
    rows(30).to_csv(tmp_path / "train.csv", index=False)
    rows(6, "validation").to_csv(tmp_path / "validation.csv", index=False)
    rows(4, "dev").to_csv(tmp_path / "dev.csv", index=False)
    with pytest.raises(
        DataError,
        match=rf"^{tmp_path} has two validation splits: dev.csv, validation.csv; keep one \(validation, valid, val "
        "and dev all name the validation split\\)$",
    ):
        load_labeled_data(tmp_path)
    # Trained on dev, the folder has one validation split left.
    data = load_labeled_data(tmp_path, train_split="dev")
    assert (len(data.train), len(data.validation)) == (4, 6)
    assert data.validation.texts[0] == "validation 0 words"
    # A split named outright is not ambiguous.
    assert len(load_split(tmp_path, "dev", class_names=("0", "1"))) == 4


def test_one_validation_alias_is_used(tmp_path):
    rows(30).to_csv(tmp_path / "train.csv", index=False)
    rows(4, "dev").to_csv(tmp_path / "dev.csv", index=False)
    data = load_labeled_data(tmp_path)
    assert len(data.validation) == 4 and not data.validation_from_train


# --- malformed files: one line naming the line, and no library log ------------------------------------------------


def test_latin1_csv_names_its_line_and_logs_nothing(tmp_path, capfd, caplog):
    frame = rows()
    frame.loc[5, "text"] = "café"
    path = tmp_path / "latin1.csv"
    frame.to_csv(path, index=False, encoding="latin-1")
    capfd.readouterr()
    with pytest.raises(DataError, match=r"latin1.csv: line 7 is not valid UTF-8; name the file's encoding"):
        load_labeled_data(path)
    assert library_lines(capfd.readouterr().err) == []
    assert not [r for r in caplog.records if r.name.startswith("datasets")]


@pytest.mark.parametrize("suffix, separator", [(".csv", ","), (".tsv", "\t")])
def test_row_with_an_extra_field_names_its_line(tmp_path, capfd, caplog, suffix, separator):
    path = tmp_path / f"train{suffix}"
    lines = ["text\tlabel".replace("\t", separator)] + [f"row {i}{separator}{i % 2}" for i in range(5)]
    # A quoted field over two lines: the bad row is the file's line 9 (pandas' own message says line 8).
    lines += [f'"two{separator}\nlines"{separator}1', f"one{separator}two{separator}0", f"last{separator}1"]
    path.write_text("\n".join(lines) + "\n")
    capfd.readouterr()
    name = "tab" if separator == "\t" else "comma"
    with pytest.raises(
        DataError,
        match=rf"^could not read {path}: line 9 has 3 fields, the header 2; put a field that holds a {name} in "
        "double quotes$",
    ):
        load_raw(path)
    assert library_lines(capfd.readouterr().err) == []
    assert not [r for r in caplog.records if r.name.startswith("datasets")]


def test_broken_json_lines_name_the_first_bad_line(tmp_path, capfd, caplog):
    path = tmp_path / "brk.jsonl"
    path.write_text('{"text": "a", "label": 0}\n\n{"text": "b", "label": 1} x\n{"text": "c", "label": 0\n')
    capfd.readouterr()
    with pytest.raises(DataError, match=r"^could not read .*brk.jsonl: line 3 is not valid JSON \(Extra data at column 27\)$"):
        load_labeled_data(path)
    assert library_lines(capfd.readouterr().err) == []
    assert not [r for r in caplog.records if r.name.startswith("datasets")]

    path.write_text('{"text": "a", "label": 0}\n["b", 1]\n')
    with pytest.raises(DataError, match=r"brk.jsonl: line 2 is not a JSON object; JSON Lines files hold one object"):
        load_raw(path)


def test_broken_json_document_names_its_line(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('[\n  {"text": "a", "label": 0},\n  {"text": "b" "label": 1}\n]\n')
    with pytest.raises(DataError, match=r"train.json: line 3 is not valid JSON \(Expecting ',' delimiter at column 16\)"):
        load_raw(path)


def test_only_the_reader_failure_is_left_out_of_the_library_log(tmp_path):
    from textpipe.data import _reader_failures_unlogged

    logger = logging.getLogger("datasets.packaged_modules.json.json")
    handlers = {*logging.getLogger("datasets").handlers, *logging.getLogger().handlers}
    filters_before = {h: list(h.filters) for h in handlers}
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    keep = Keep()
    logging.getLogger("datasets").addHandler(keep)
    try:
        with _reader_failures_unlogged():
            logger.error("Failed to read file 'x.jsonl' with error ArrowInvalid: bad")
            logger.warning("a warning")
            logging.getLogger("datasets.load").error("something else went wrong")
        assert seen == ["a warning", "something else went wrong"]
        (tmp_path / "brk.jsonl").write_text('{"text": "a", "label": 0} x\n')
        with pytest.raises(DataError):
            load_raw(tmp_path / "brk.jsonl")
    finally:
        logging.getLogger("datasets").removeHandler(keep)
    assert {h: list(h.filters) for h in handlers} == filters_before  # put back


def test_a_column_name_with_control_characters_is_escaped_in_the_error(tmp_path):
    # Every textpipe error is one printable line, whichever module raises it.
    path = tmp_path / "train.csv"
    path.write_bytes(b"bo\x1bdy,label\nhello,0\nbye,1\n")
    with pytest.raises(DataError) as caught:
        load_labeled_data(path)
    assert "bo\\x1bdy" in str(caught.value) and "\x1b" not in str(caught.value)
