"""Scoring inputs that are clearly not text, or not what the flags say, are refused before any work with one
line naming the file and what to do; text inputs, NUL characters and named encodings read as before."""

import bz2
import gzip
import io
import pickle
import sys
import zipfile

import pytest

from textpipe.cli import main
from textpipe.errors import DataError
from textpipe.inputs import InputSpec, read_rows, resolve_inputs

WHAT_INPUTS_ARE = "inputs are plain text, CSV, TSV or JSON Lines"
# Not a real Parquet file: only its signature, then bytes no text has.
FAKE_PARQUET = b"PAR1\x15\x04\x15\x00\x15\x02\x4c\x15\x00" * 8 + b"PAR1"


def refusal(tmp_path, name, data, **options) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DataError) as caught:
        resolve_inputs([str(path)], **options)
    message = str(caught.value)
    assert message.startswith(str(path)) or message.startswith(f"input {path}")
    assert "\n" not in message and "\x00" not in message
    return message


def texts(path, **options) -> list[str]:
    return [row.text for spec in resolve_inputs([str(path)], **options) for row in read_rows(spec)]


# --- compressed and columnar files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, data, what",
    [
        ("small.csv.gz", gzip.compress(b"text\nhello\n"), "not text (a .gz file)"),
        ("data.parquet", FAKE_PARQUET, "not text (a .parquet file)"),
        # Misnamed: the first bytes tell.
        ("small.csv", gzip.compress(b"text\nhello\n"), "gzip-compressed, not text"),
        ("reviews.txt", bz2.compress(b"hello\n" * 50), "bzip2-compressed, not text"),
        ("data.txt", FAKE_PARQUET, "a Parquet file, not text"),
        ("table.jsonl", pickle.dumps({"text": ["hello"]}), "a Python pickle, not text"),
    ],
)
def test_compressed_and_columnar_files_are_refused_by_name_or_by_their_first_bytes(tmp_path, name, data, what):
    message = refusal(tmp_path, name, data)
    hint = (" (unpack it first, or pipe it in as '-')" if "compressed" in what or ".gz" in what else
            " (--input-format reads it anyway, if it is text)" if "(a ." in what else "")
    assert message == f"{tmp_path / name} is {what}; {WHAT_INPUTS_ARE}{hint}"


def test_a_zip_archive_is_refused_with_the_advice_to_unpack_it(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("reviews.txt", "hello\n")
    message = refusal(tmp_path, "reviews.csv", buffer.getvalue())
    assert message.endswith(f"is a ZIP archive, not text; {WHAT_INPUTS_ARE} (unpack it first, or pipe it in as '-')")


def test_a_caller_that_cannot_read_standard_input_is_not_told_to_pipe_it_in(tmp_path):
    packed = refusal(tmp_path, "small.csv.gz", gzip.compress(b"text\nhello\n"), stdin_refused="no stdin")
    assert packed.endswith(f"not text (a .gz file); {WHAT_INPUTS_ARE} (unpack it first)")
    misnamed = refusal(tmp_path, "small.csv", gzip.compress(b"text\nhello\n"), stdin_refused="no stdin")
    assert misnamed.endswith(f"is gzip-compressed, not text; {WHAT_INPUTS_ARE} (unpack it first)")
    with pytest.raises(DataError, match="^no stdin$"):
        resolve_inputs([str(tmp_path / "small.csv"), "-"], stdin_refused="no stdin")


def test_an_explicit_input_format_overrides_the_name_but_not_the_bytes(tmp_path):
    notes = tmp_path / "notes.gz"  # text, whatever its name says
    notes.write_text("a lovely film\n")
    assert texts(notes, input_format="text") == ["a lovely film"]
    message = refusal(tmp_path, "data.parquet", FAKE_PARQUET, input_format="text")
    assert "is a Parquet file, not text" in message


def test_a_named_encoding_skips_the_byte_checks_but_not_the_name(tmp_path):
    # In a named encoding the first bytes may be characters; a columnar name still says enough.
    assert "not text (a .parquet file)" in refusal(tmp_path, "data.parquet", FAKE_PARQUET, encoding="latin-1")
    path = tmp_path / "odd.txt"
    path.write_bytes(b"PAR1 is the word\n")
    assert texts(path, encoding="latin-1") == ["PAR1 is the word"]


def test_a_text_that_starts_like_a_signature_is_read(tmp_path):
    # Only bytes that are not UTF-8 text of their own are taken for a file format's signature.
    path = tmp_path / "notes.txt"
    path.write_text("PAR1 is the word\n%PDF- too\n")
    assert texts(path) == ["PAR1 is the word", "%PDF- too"]


def test_standard_input_is_not_sniffed(monkeypatch):
    monkeypatch.setattr(sys, "stdin", None)  # resolving must not read it
    assert resolve_inputs(["-"]) == [InputSpec("-", "text")]


# --- UTF-16 read as UTF-8 ---------------------------------------------------------------------------------


def test_a_utf16_csv_without_encoding_is_refused_with_the_encoding_to_name(tmp_path):
    data = 'text,id\n"déjà vu",1\nok,2\n'.encode("utf-16")
    message = refusal(tmp_path, "u16.csv", data)
    assert message == (f"{tmp_path / 'u16.csv'} is UTF-16, not UTF-8 (it starts with a UTF-16 byte-order mark); "
                       "name its encoding with --encoding utf-16")
    assert texts(tmp_path / "u16.csv", encoding="utf-16") == ["déjà vu", "ok"]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_known_by_its_nul_bytes(tmp_path, codec):
    data = "a lovely film\nthe soup was cold\n".encode(codec)
    message = refusal(tmp_path, "u16.txt", data)
    assert message.endswith(f"looks like {codec.upper()}, not UTF-8 (every other byte is NUL); name its encoding "
                            f"with --encoding {codec}")
    assert texts(tmp_path / "u16.txt", encoding=codec) == ["a lovely film", "the soup was cold"]


def test_nul_characters_in_utf8_text_are_still_read(tmp_path):
    path = tmp_path / "nul.txt"
    path.write_bytes(b"\x00\n" * 20 + b"a\x00b\n" + "caf\u00e9\x00\n".encode())
    assert texts(path) == ["\x00"] * 20 + ["a\x00b", "caf\u00e9\x00"]


# --- folders and flags that do not fit the input --------------------------------------------------------------


def test_a_folder_is_named_as_one_with_a_pattern_to_give(tmp_path):
    folder = tmp_path / "reviews"
    folder.mkdir()
    with pytest.raises(DataError) as caught:
        resolve_inputs([str(folder)])
    assert str(caught.value) == (f"input {folder} is a folder, not a file; to read the files in it give a pattern, "
                                 f"e.g. '{folder / '*.txt'}'")


def test_text_column_on_plain_text_is_an_error(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("hello\n")
    with pytest.raises(DataError, match=r"^--text-column needs CSV/TSV or JSON Lines input; .*x\.txt is read as "
                                        r"plain text \(name its format with --input-format\)$"):
        resolve_inputs([str(path)], text_column="body")
    with pytest.raises(DataError, match=r"standard input \('-'\) is read as plain text"):
        resolve_inputs(["-"], text_column="body")
    # Named as CSV, the same file name takes the flag.
    path.write_text("id,body\n1,hello\n")
    assert texts(path, input_format="csv", text_column="body") == ["hello"]


def test_control_characters_from_a_header_are_escaped_in_the_error(tmp_path):
    path = tmp_path / "ctl.csv"
    path.write_bytes(b"a\x00b,c\x1bd,e\xe2\x80\xa8f\n1,2,3\n")
    with pytest.raises(DataError) as caught:
        resolve_inputs([str(path)])
    assert str(caught.value) == (f"no text column found in {path} (columns: a\\x00b, c\\x1bd, e\\u2028f); "
                                 "name it with --text-column")


# --- the command line -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, data, expected",
    [
        ("small.csv.gz", gzip.compress(b"text\nhello\n"), "is not text (a .gz file)"),
        ("u16.csv", "text\nhello\n".encode("utf-16"), "name its encoding with --encoding utf-16"),
    ],
)
def test_score_refuses_before_loading_the_bundle_with_one_line(tmp_path, capsys, name, data, expected):
    bundle = tmp_path / "bundle"  # never loaded: the inputs are checked first
    bundle.mkdir()
    (bundle / "bundle.json").write_text("{}")
    path = tmp_path / name
    path.write_bytes(data)
    out = tmp_path / "out.jsonl"
    assert main(["score", str(bundle), str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"textpipe: error: {path} ") and expected in err
    assert "\x00" not in err
    assert not out.exists()
