"""The scoring readers (textpipe.inputs) against files written with the csv and json modules: every row comes
back, in order, with its text, or the reader stops with a DataError that names the row.

What a row is, per format (the module docstring's rules):
- text: a line ends at "\\n", and a "\\r" just before that "\\n" belongs to the line end; any other "\\r", U+0085,
  U+2028 and U+2029 are part of the text. A last line without a line end is a row; an empty remainder is not.
- CSV/TSV: a record as the csv module reads it (a quoted field may hold line breaks, and records may end in
  "\\n", "\\r\\n" or "\\r"); a quoted field still open at the end of the file is an error.
- JSON Lines: a "\\n"-separated line; JSON strings hold line breaks only as escapes.
Everywhere a byte-order mark at the start is dropped, and undecodable bytes become U+FFFD exactly as
bytes.decode("utf-8", "replace") makes them, with the row flagged `replaced`.

Undecodable bytes are generated as surrogate escapes ("\\udcff" stands for the byte 0xFF) in the text handed to
the csv/json writers, and the file is encoded with errors="surrogateescape".
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sys
import tempfile
import types
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from textpipe.cli import main
from textpipe.errors import DataError
from textpipe.inputs import InputSpec, read_rows, resolve_inputs

# Characters that break naive readers: quotes and delimiters, line breaks the csv module and str.splitlines know,
# a byte-order mark inside the text, NUL.
SPECIAL = ['"', "'", ",", "\t", " ", "\n", "\r", "\r\n", "\x85", "\u2028", "\u2029", "\ufeff", "\x00", "\x0b"]
# Undecodable bytes: Latin-1 letters, a lone lead byte, truncated 3- and 4-byte sequences, an encoded surrogate.
UNDECODABLE = ["\udcff", "\udce9", "\udcc3", "\udce2\udc80", "\udcf0\udc9f\udc98", "\udced\udca0\udc80"]

texts = st.lists(
    st.one_of(st.sampled_from(SPECIAL + UNDECODABLE), st.characters(exclude_categories=("Cs",))), max_size=12
).map("".join)
line_texts = texts.map(lambda t: t.replace("\n", ""))  # a text file's line cannot hold "\n"
# Texts a CSV writer leaves unquoted: no quote, delimiter or line break.
plain_texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters='"\t,\r\n'), max_size=10)

FAST = settings(max_examples=100, deadline=None)


def decoded(text: str) -> tuple[str, bool]:
    """What a reader makes of `text` written as bytes: the text, with U+FFFD for undecodable bytes, and whether
    any were replaced."""
    raw = text.encode("utf-8", errors="surrogateescape")
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def encode(data: str, bom: bool) -> bytes:
    return (codecs.BOM_UTF8 if bom else b"") + data.encode("utf-8", errors="surrogateescape")


def read(name: str, data: bytes, **options) -> list:
    """The rows textpipe reads from a file `name` holding `data` (format from the suffix)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        return list(read_rows(resolve_inputs([str(path)], **options)[0]))


def read_until_error(name: str, data: bytes, **options) -> tuple[list, DataError | None]:
    """The rows read before an error, and the error."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            for row in read_rows(resolve_inputs([str(path)], **options)[0]):
                rows.append(row)
        except DataError as e:
            return rows, e
    return rows, None


def csv_line(fields: list[str], delimiter: str, ending: str) -> str:
    # The writer quotes fields holding "\r" or "\n" only if they are in its lineterminator: "\r\n" has both.
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerow(fields)
    return buffer.getvalue()[: -len("\r\n")] + ending


# --- plain text ---------------------------------------------------------------------------------------------


@FAST
@given(
    lines=st.lists(st.tuples(line_texts, st.sampled_from(["\n", "\r\n"])), max_size=8),
    final_line_end=st.booleans(),
    bom=st.booleans(),
)
def test_text_lines_round_trip(lines, final_line_end, bom):
    # Without a byte-order mark, a first line starting with U+FEFF is read as having one (and loses it).
    assume(bom or not lines or not lines[0][0].startswith("\ufeff"))
    if lines and not final_line_end and lines[-1][0] == "":
        final_line_end = True  # an empty last line exists only with its line end
    data = "".join(text + ending for text, ending in lines)
    if lines and not final_line_end:
        data = data[: -len(lines[-1][1])]
    rows = read("in.txt", encode(data, bom))

    expected = []
    for i, (text, ending) in enumerate(lines, start=1):
        if ending == "\n" and text.endswith("\r") and (final_line_end or i < len(lines)):
            text = text[:-1]  # "...\r" + "\n" reads as a "\r\n" line end
        expected.append((i, *decoded(text)))
    assert [(r.row, r.text, r.replaced) for r in rows] == expected
    assert all(r.id is None for r in rows)


def test_text_line_ends_are_only_lf_and_crlf():
    rows = read("in.txt", "a\u2028b\x85c\u2029d\re\r\r\nf\r\n\ng\r".encode())
    assert [(r.row, r.text) for r in rows] == [(1, "a\u2028b\x85c\u2029d\re\r"), (2, "f"), (3, ""), (4, "g\r")]


def test_a_byte_order_mark_alone_is_an_empty_file():
    assert read("in.txt", codecs.BOM_UTF8) == []
    assert read("in.jsonl", codecs.BOM_UTF8) == []
    assert [r.text for r in read("in.txt", codecs.BOM_UTF8 + b"\n")] == [""]
    assert [r.text for r in read("in.txt", codecs.BOM_UTF8 * 2 + b"x")] == ["\ufeffx"]  # only the first one


# --- CSV and TSV --------------------------------------------------------------------------------------------


@FAST
@given(
    rows=st.lists(st.tuples(texts, texts, st.sampled_from(["\n", "\r\n", "\r"])), max_size=8),
    header_end=st.sampled_from(["\n", "\r\n", "\r"]),
    final_line_end=st.booleans(),
    bom=st.booleans(),
    fmt=st.sampled_from(["csv", "tsv"]),
)
def test_csv_rows_round_trip(rows, header_end, final_line_end, bom, fmt):
    delimiter = "," if fmt == "csv" else "\t"
    lines = [csv_line(["id", "text", "note"], delimiter, header_end)]
    lines += [csv_line([str(i), text, note], delimiter, ending) for i, (text, note, ending) in enumerate(rows)]
    if not final_line_end:
        lines[-1] = lines[-1].rstrip("\r\n")  # the last field is quoted if it ends with a line break
    got = read(f"in.{fmt}", encode("".join(lines), bom), id_column="id")

    expected = []
    for i, (text, note, _) in enumerate(rows):
        (value, replaced), note_replaced = decoded(text), decoded(note)[1]
        # The flag is the row's: a replacement in any field sets it, as any byte of a text or JSON line does.
        expected.append((i + 1, str(i), value, replaced or note_replaced))
    assert [(r.row, r.id, r.text, r.replaced) for r in got] == expected


@FAST
@given(
    before=st.lists(st.tuples(texts, st.sampled_from(["\n", "\r\n", "\r"])), max_size=5),
    broken=plain_texts,
    after=st.lists(st.tuples(plain_texts, st.sampled_from(["\n", "\r\n", "\r"])), max_size=5),
    final_line_end=st.booleans(),
    fmt=st.sampled_from(["csv", "tsv"]),
)
def test_a_quote_never_closed_is_an_error_naming_its_row_and_line(before, broken, after, final_line_end, fmt):
    delimiter = "," if fmt == "csv" else "\t"
    head = csv_line(["text", "id"], delimiter, "\n")
    head += "".join(csv_line([text, str(i)], delimiter, ending) for i, (text, ending) in enumerate(before))
    # A field that opens a quote; nothing after it holds a quote, so nothing closes it.
    tail = f'"{broken}{delimiter}{len(before)}\n'
    tail += "".join(f"{text}{delimiter}{len(before) + 1 + i}{ending}" for i, (text, ending) in enumerate(after))
    if not final_line_end:
        tail = tail.rstrip("\r\n")
    rows, error = read_until_error(f"in.{fmt}", encode(head + tail, bom=False), id_column="id")

    assert error is not None, "the rest of the file was read as one field"
    line = len(re.findall(r"\r\n|\r|\n", head)) + 1
    assert re.search(rf"in\.{fmt} row {len(before) + 1} \(line {line}\): a quoted field opens here", str(error))
    assert "\n" not in str(error)
    assert [(r.row, r.text) for r in rows] == [(i + 1, decoded(text)[0]) for i, (text, _) in enumerate(before)]


def test_unterminated_quote_in_tsv_names_its_row(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_bytes(b'text\tid\ngood\t1\n"oops\t2\nbad\t3\nx\t4\ny\t5\n')
    rows = []
    with pytest.raises(DataError) as caught:
        for row in read_rows(resolve_inputs([str(path)])[0]):
            rows.append(row)
    message = str(caught.value)
    assert message.startswith(f"{path} row 2 (line 3): a quoted field opens here and is never closed")
    assert "the 4 lines to the end of the file" in message and "\n" not in message
    assert [(r.row, r.text) for r in rows] == [(1, "good")]


def test_unterminated_quote_after_a_multiline_field_names_the_line_it_opened_on(tmp_path):
    path = tmp_path / "q.csv"
    # Row 2 starts on line 4 with a field closed on line 5, where the next field opens a quote for good.
    path.write_bytes(b'id,text\r\n1,"two\r\nlines"\r\n2,"first\r\npart","never\r\nclosed\r\n3,x')
    with pytest.raises(DataError, match=r"q\.csv row 2 \(line 5\): a quoted field opens here"):
        list(read_rows(resolve_inputs([str(path)])[0]))


def test_unterminated_quote_in_the_header_fails_before_any_work(tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes(b'id,"text\n1,a\n2,b\n')
    with pytest.raises(DataError, match=r"q\.csv header \(line 1\): a quoted field opens here"):
        resolve_inputs([str(path)])


def test_quoted_multiline_fields_are_one_row_each_and_the_rows_after_them_stay(tmp_path):
    path = tmp_path / "m.csv"
    long_text = "a long review\n\nwith paragraphs, \"quotes\"\r\nand\rall line ends\n" * 200
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "text"], ["1", "first\nsecond"], ["2", long_text], ["3", "plain"], ["4", ""]])
    rows = list(read_rows(resolve_inputs([str(path)], id_column="id")[0]))
    assert [(r.row, r.id, r.text) for r in rows] == [(1, "1", "first\nsecond"), (2, "2", long_text),
                                                     (3, "3", "plain"), (4, "4", "")]


def test_latin1_csv_is_read_with_replacement_and_its_rows_flagged(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,r\xe9f,auteur\ncaf\xe9 cr\xe8me,1,Zo\xeb\nplain,2,Ren\xe9e\nplain,3,Bob\n".encode("latin-1"))
    spec = resolve_inputs([str(path)])[0]
    assert spec.text_column == "text"
    rows = list(read_rows(spec))
    assert [(r.row, r.text, r.replaced) for r in rows] == [
        (1, "caf\ufffd cr\ufffdme", True), (2, "plain", True), (3, "plain", False)]
    # A column named with undecodable bytes is named as the header reads with replacement, everywhere.
    rows = list(read_rows(resolve_inputs([str(path)], id_column="r\ufffdf")[0]))
    assert [r.id for r in rows] == ["1", "2", "3"]


def test_latin1_csv_from_standard_input(monkeypatch):
    data = "text,id\ncaf\xe9,1\nok,\xe92\n".encode("latin-1")
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))
    rows = list(read_rows(InputSpec("-", "csv", id_column="id")))
    assert [(r.source, r.row, r.text, r.id, r.replaced) for r in rows] == [
        ("-", 1, "caf\ufffd", "1", True), ("-", 2, "ok", "\ufffd2", True)]


def test_score_command_exits_2_with_one_line_for_an_unterminated_quote(saved_bundle, tmp_path, capsys):
    path = tmp_path / "q.tsv"
    path.write_bytes(b'text\tid\ngood\t1\n"oops\t2\nbad\t3\nx\t4\ny\t5\n')
    out = tmp_path / "out.jsonl"
    assert main(["score", str(saved_bundle), str(path), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path} row 2 (line 3): a quoted field opens here and is never closed" in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


# --- JSON Lines ---------------------------------------------------------------------------------------------


@FAST
@given(
    records=st.lists(st.tuples(st.one_of(st.none(), texts), st.sampled_from(["\n", "\r\n"])), max_size=8),
    ensure_ascii=st.booleans(),
    final_line_end=st.booleans(),
    bom=st.booleans(),
)
def test_jsonl_rows_round_trip(records, ensure_ascii, final_line_end, bom):
    lines = []
    for i, (text, ending) in enumerate(records):  # None: a blank line
        lines.append(("" if text is None else json.dumps({"id": i, "text": text}, ensure_ascii=ensure_ascii)) + ending)
    if records and not final_line_end and records[-1][0] is not None:
        lines[-1] = lines[-1].rstrip("\r\n")
    got = read("in.jsonl", encode("".join(lines), bom), id_column="id")

    expected = []
    for i, (text, _) in enumerate(records):
        if text is None:
            expected.append((i + 1, None, "", False))
        elif ensure_ascii:  # escaped undecodable bytes arrive as half characters: one U+FFFD each
            value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
            expected.append((i + 1, str(i), value, value != text))
        else:
            expected.append((i + 1, str(i), *decoded(text)))
    assert [(r.row, r.id, r.text, r.replaced) for r in got] == expected


def test_jsonl_undecodable_bytes_and_half_characters_are_replaced_and_flagged():
    data = b'{"text": "caf\xe9", "id": 1}\n{"text": "ok", "id": "\\udcff"}\n{"text": "ok", "id": 3}\n'
    rows = read("in.jsonl", data, id_column="id")
    assert [(r.row, r.text, r.id, r.replaced) for r in rows] == [
        (1, "caf\ufffd", "1", True), (2, "ok", "\ufffd", True), (3, "ok", "3", False)]
    json.dumps([r.id for r in rows]).encode("utf-8")  # the ids can be written out


def test_jsonl_undecodable_bytes_outside_a_string_name_the_line():
    with pytest.raises(DataError, match=r"in\.jsonl line 2: not valid JSON"):
        read("in.jsonl", b'{"text": "ok"}\n{"text": "ok"}\xff\n')
