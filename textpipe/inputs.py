"""Read scoring inputs as rows: plain text (one document per line), CSV/TSV or JSON Lines with a text column,
or standard input ("-"); a glob pattern stands for the files it matches.

Every row keeps where it came from (source, 1-based row number, optional id) so output can be matched back to
input. Undecodable bytes (and half characters from JSON surrogate escapes) become U+FFFD and the row is
flagged; a byte-order mark is dropped; a row without its text column is an error that names it. Inputs are
UTF-8 unless an encoding is named (latin-1, cp1252, utf-16, ...): such input is re-encoded as UTF-8 as it is
read, so every reader below sees UTF-8 bytes, and bytes invalid in the named encoding are replaced and flagged
the same way.

A line of a plain-text or JSON Lines input ends at "\n" (a "\r" just before it belongs to the line end): a lone
"\r", U+0085, U+2028 and U+2029 are part of the text, so row numbers are the ones `wc -l` and `sed -n` count.
CSV/TSV records follow the csv module (a quoted field may hold line breaks of any kind); a quoted field that is
still open at the end of the file is an error naming the row and line where it opened, where the csv module
would silently read the rest of the file as that one field.

An input that is clearly not text (compressed, columnar, UTF-16 read as UTF-8; see `_check_text_file`) is
refused before any work, where reading it as lines would give garbage predictions and exit 0.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import glob
import io
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Iterator, Sequence

from textpipe.columns import find_column
from textpipe.config import check_encoding
from textpipe.errors import ConfigError, DataError, one_line

STDIN = "-"
INPUT_FORMATS = ("text", "csv", "tsv", "jsonl")
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
_WHAT_INPUTS_ARE = "inputs are plain text, CSV, TSV or JSON Lines"
# The csv module refuses fields over 128 KiB by default; a long document in one cell is legitimate input.
csv.field_size_limit(2**31 - 1)


@dataclasses.dataclass(frozen=True)
class InputRow:
    source: str  # the input's path as given, or "-"
    row: int  # 1-based line number (text, JSON Lines) or data row number after the header (CSV/TSV)
    text: str
    id: str | None = None  # the id column's value, when one was named
    replaced: bool = False  # undecodable bytes were replaced with U+FFFD

    @property
    def empty(self) -> bool:
        return not self.text.strip()


@dataclasses.dataclass(frozen=True)
class InputSpec:
    path: str
    format: str  # one of INPUT_FORMATS
    text_column: str | None = None
    id_column: str | None = None
    encoding: str | None = None  # None: UTF-8


def resolve_inputs(
    paths: Sequence[str],
    input_format: str | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    encoding: str | None = None,
    *,
    stdin_refused: str | None = None,
) -> list[InputSpec]:
    """Check every input before any work starts: it exists, its format is known, its header has the columns.
    A glob pattern stands for the files it matches (see `expand_patterns`). `stdin_refused`: why the caller
    cannot read standard input, if it cannot; then '-' is refused with that message, and no other refusal
    suggests piping an input in."""
    if not paths:
        raise DataError("no input files given")
    if stdin_refused is not None and STDIN in paths:
        raise DataError(stdin_refused)
    stdin = stdin_refused is None
    try:
        encoding = check_encoding(encoding)
    except ConfigError as e:
        raise DataError(str(e)) from None
    if input_format is not None and input_format not in INPUT_FORMATS:
        raise DataError(f"unknown input format {input_format!r}; choose from {', '.join(INPUT_FORMATS)}")
    if sum(p == STDIN for p in paths) > 1:
        raise DataError("standard input ('-') can be read only once")
    specs = []
    for path in expand_patterns(paths):
        if path != STDIN:
            _check_regular_file(path, stdin)
            # An explicit --input-format overrides the name, as it does for the format; the bytes still count.
            _check_text_file(path, encoding, by_name=input_format is None, stdin=stdin)
        fmt = input_format or SUFFIX_FORMATS.get(Path(path).suffix.lower(), "text")
        where = "standard input ('-')" if path == STDIN else path
        for flag, column in (("--text-column", text_column), ("--id-column", id_column)):
            if fmt == "text" and column is not None:
                raise DataError(f"{flag} needs CSV/TSV or JSON Lines input; {where} is read as plain text "
                                "(name its format with --input-format)")
        spec = InputSpec(path, fmt, text_column, id_column, encoding)
        if fmt in ("csv", "tsv") and path != STDIN:
            spec = dataclasses.replace(spec, text_column=_csv_text_column(spec))
        elif fmt == "jsonl" and path != STDIN:
            _check_first_record(spec)
        specs.append(spec)
    return specs


SHARD_NEEDS_FILES = "sharding needs input files: standard input cannot be counted and read again"


def parse_shard(text: str) -> tuple[int, int]:
    """'2/8' -> (2, 8): the 2nd of 8 contiguous parts of the input rows (scoring.shard_bounds)."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise DataError(f"shard must look like I/N (e.g. 2/8), got {text!r}") from None
    return checked_shard(i, n)


def checked_shard(i: int, n: int) -> tuple[int, int]:
    if not 1 <= i <= n:
        raise DataError(f"shard must be I/N with 1 <= I <= N, got {i}/{n}")
    return i, n


def _check_regular_file(path: str, stdin: bool = True) -> None:
    if Path(path).is_file():
        return
    if Path(path).is_dir():
        pattern = str(Path(path) / "*.txt")
        raise DataError(f"input {path} is a folder, not a file; to read the files in it give a pattern, e.g. "
                        f"'{pattern}'")
    if Path(path).exists():
        hint = "; to read a stream give '-' and pipe it in" if stdin else "; save what it holds to a file first"
        raise DataError(f"input {path} is not a regular file{hint}")
    raise DataError(f"input file not found: {path}")


# Bytes a file starts with that say it is not text, what it is then, and whether it is packed (compressed or an
# archive) and could be unpacked into text. Checked only for UTF-8 input: in another named encoding (UTF-16
# above all) the same bytes can be characters.
_SIGNATURES = (
    (re.compile(rb"\x1f\x8b"), "gzip-compressed", True),
    (re.compile(rb"BZh[1-9]1AY&SY"), "bzip2-compressed", True),
    (re.compile(rb"\xfd7zXZ\x00"), "xz-compressed", True),
    (re.compile(rb"\x28\xb5\x2f\xfd"), "zstd-compressed", True),
    (re.compile(rb"PK\x03\x04|PK\x05\x06"), "a ZIP archive", True),
    (re.compile(rb"7z\xbc\xaf\x27\x1c"), "a 7-Zip archive", True),
    (re.compile(rb"PAR1"), "a Parquet file", False),
    (re.compile(rb"ARROW1"), "an Arrow file", False),
    (re.compile(rb"FEA1"), "a Feather file", False),
    (re.compile(rb"\x93NUMPY"), "a NumPy array file", False),
    (re.compile(rb"\x80[\x02-\x05]"), "a Python pickle", False),  # protocols 0 and 1 are known by name only
    (re.compile(rb"\x89HDF\r\n\x1a\n"), "an HDF5 file", False),
    (re.compile(rb"SQLite format 3\x00"), "an SQLite database", False),
    (re.compile(rb"%PDF-"), "a PDF document", False),
)
_PACKED_SUFFIXES = frozenset({".gz", ".tgz", ".bz2", ".xz", ".lzma", ".zst", ".lz4", ".zip", ".7z", ".tar"})
# Names of files that are not text whatever their first bytes say (too few to tell, or read in a named encoding).
_BINARY_SUFFIXES = _PACKED_SUFFIXES | frozenset({
    ".parquet", ".arrow", ".feather", ".orc", ".avro", ".pkl", ".pickle", ".npy", ".npz", ".h5", ".hdf5",
    ".tfrecord", ".xlsx", ".xls", ".db", ".sqlite", ".pdf",
})
_SNIFF_BYTES = 4096


def _check_text_file(path: str, encoding: str | None, *, by_name: bool, stdin: bool = True) -> None:
    """Raise DataError when the file at `path` is clearly not text: its name has a compressed or columnar
    suffix (when `by_name`), or, read as UTF-8 (`encoding` None), its first bytes are a compressed or columnar
    format's signature or UTF-16/UTF-32 text. NUL bytes alone are not enough: a UTF-8 text may hold NUL
    characters, and the readers keep them."""
    suffix = Path(path).suffix.lower()
    if by_name and suffix in _BINARY_SUFFIXES:
        hint = _unpack_hint(suffix in _PACKED_SUFFIXES, stdin) or " (--input-format reads it anyway, if it is text)"
        raise DataError(f"{path} is not text (a {suffix} file); {_WHAT_INPUTS_ARE}{hint}")
    if encoding is not None:
        return
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or one_line(e)}") from None
    # A signature counts only in bytes that are not UTF-8 text of their own: a text may start with "PAR1".
    if b"\x00" in head or not _utf8_prefix(head):
        for signature, what, packed in _SIGNATURES:
            if signature.match(head):
                raise DataError(f"{path} is {what}, not text; {_WHAT_INPUTS_ARE}{_unpack_hint(packed, stdin)}")
    utf, claim, why = _utf16_or_32(head)
    if utf is not None:
        raise DataError(f"{path} {claim} {utf.upper()}, not UTF-8 ({why}); name its encoding with --encoding {utf}")


def _utf8_prefix(head: bytes) -> bool:
    """`head` is the start of a UTF-8 text (a character cut at its end included)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _unpack_hint(packed: bool, stdin: bool = True) -> str:
    if not packed:
        return ""
    return " (unpack it first, or pipe it in as '-')" if stdin else " (unpack it first)"


def _utf16_or_32(head: bytes) -> tuple[str | None, str, str]:
    """The encoding `head` is in when it is UTF-16 or UTF-32 rather than UTF-8, how sure that is, and why: a
    byte-order mark (FF FE and FE FF are never UTF-8), or NUL bytes in every other byte and only there, as in
    UTF-16 text of mostly Latin letters. The latter also needs Latin letters in the decoded text, so UTF-8 lines
    of NUL characters are not taken for UTF-16."""
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32", "is", "it starts with a UTF-32 byte-order mark"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "is", "it starts with a UTF-16 byte-order mark"
    pairs = len(head) // 2
    even, odd = head[0 : 2 * pairs : 2].count(0), head[1 : 2 * pairs : 2].count(0)
    for nuls, others, codec in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if nuls >= max(4, pairs // 4) and others * 8 <= nuls:
            letters = sum(c.isascii() and c.isalpha() for c in head[: 2 * pairs].decode(codec, errors="replace"))
            if letters >= 4:
                return codec, "looks like", "every other byte is NUL"
    return None, "", ""


# The characters that make an input path a glob pattern.
GLOB_CHARACTERS = "*?["


def expand_patterns(paths: Sequence[str]) -> list[str]:
    """Each path as it is, or, when no such file exists and it holds *, ? or [, the files it matches in sorted
    order: a quoted pattern (needed where no shell expands it, as on a cluster) reads like the shell's."""
    expanded = []
    for path in paths:
        if path == STDIN or Path(path).exists() or not any(c in path for c in GLOB_CHARACTERS):
            expanded.append(path)
            continue
        matches = sorted(p for p in glob.glob(path, recursive=True) if Path(p).is_file())
        if not matches:
            raise DataError(f"no input files match {path}")
        expanded.extend(matches)
    return expanded


def read_rows(spec: InputSpec) -> Iterator[InputRow]:
    """The rows of one input, in order, decoded with replacement of undecodable bytes."""
    with _open_binary(spec.path, spec.encoding) as raw:
        if spec.format == "text":
            rows = _text_rows(spec, raw)
        elif spec.format == "jsonl":
            rows = _jsonl_rows(spec, raw)
        else:
            rows = _csv_rows(spec, raw)
        yield from rows


def _decode(raw: bytes) -> tuple[str, bool]:
    """UTF-8 text of one line and whether bytes had to be replaced."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


@contextlib.contextmanager
def _open_binary(path: str, encoding: str | None = None) -> Iterator[io.BufferedIOBase]:
    """The input's bytes, as UTF-8: re-encoded from `encoding` when one other than UTF-8 is named."""
    with contextlib.ExitStack() as stack:
        raw = sys.stdin.buffer if path == STDIN else stack.enter_context(open(path, "rb"))
        if encoding is None:  # UTF-8 (resolve_inputs turns its other spellings into None)
            yield raw
        else:
            yield io.BufferedReader(_Utf8Recoder(raw, encoding))


def _invalid_utf8(error: UnicodeError) -> tuple[str, int]:
    """Bytes the named encoding cannot decode (any byte, where surrogateescape takes only those of 0x80 and up:
    an odd byte at the end of UTF-16, a lone surrogate) become one byte 0xFF, which is never valid UTF-8, so the
    readers replace and flag it like any undecodable byte."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "\udcff", error.end


_AS_INVALID_UTF8 = "textpipe.invalid-utf8"
codecs.register_error(_AS_INVALID_UTF8, _invalid_utf8)


class _Utf8Recoder(io.RawIOBase):
    """A byte stream in `encoding`, read as UTF-8 bytes. Line ends pass through as they are. Bytes invalid in
    `encoding` come out as an invalid UTF-8 byte (see `_invalid_utf8`), which the readers replace and flag like
    any undecodable byte. The underlying stream (standard input, too) is left open."""

    def __init__(self, raw: io.BufferedIOBase, encoding: str) -> None:
        super().__init__()
        self._decoder = codecs.getincrementaldecoder(encoding)(errors=_AS_INVALID_UTF8)
        self._raw = raw
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending and not self._done:
            chunk = self._raw.read(1 << 16)
            self._done = not chunk
            text = self._decoder.decode(chunk, final=self._done)
            self._pending = text.encode("utf-8", errors="surrogateescape")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _binary_lines(raw: io.BufferedIOBase) -> Iterator[tuple[int, bytes]]:
    """Numbered lines, split on b"\n" only (binary iteration never splits on "\r" or Unicode line separators), with
    their line ends left on. A byte-order mark opening the input is dropped: a file holding only one is empty."""
    for number, line in enumerate(raw, start=1):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
            if not line:
                return
        yield number, line


def _strip_line_end(line: bytes) -> bytes:
    # Exactly one "\n" or "\r\n": any other "\r" is the text's own (rstrip would also eat a "\r" the text ends with).
    if line.endswith(b"\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(b"\n") else line


def _text_rows(spec: InputSpec, raw: io.BufferedIOBase) -> Iterator[InputRow]:
    for number, line in _binary_lines(raw):
        text, replaced = _decode(_strip_line_end(line))
        yield InputRow(spec.path, number, text, None, replaced)


def _jsonl_rows(spec: InputSpec, raw: io.BufferedIOBase) -> Iterator[InputRow]:
    for number, line in _binary_lines(raw):
        decoded, replaced = _decode(line)
        if not decoded.strip():
            yield InputRow(spec.path, number, "", None, replaced)
            continue
        try:
            record = json.loads(decoded)
        except json.JSONDecodeError as e:
            raise DataError(f"{spec.path} line {number}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{spec.path} line {number}: expected a JSON object, got {type(record).__name__}")
        column = find_column(list(record), spec.text_column, "text", f"{spec.path} line {number}")
        text = record.get(column)
        if not isinstance(text, str):
            problem = "has no" if column not in record else f"has a non-text ({type(text).__name__})"
            raise DataError(f"{spec.path} line {number} {problem} {column!r} field")
        text, escaped = _replace_surrogates(text)  # JSON "\ud83d" escapes can encode half a character
        row_id, id_escaped = _id_value(record, spec, number)
        yield InputRow(spec.path, number, text, row_id, replaced or escaped or id_escaped)


def _csv_rows(spec: InputSpec, raw: io.BufferedIOBase) -> Iterator[InputRow]:
    records = _csv_records(spec, raw)
    header = next(records, None)
    if header is None:
        return
    names = _csv_names(header)
    _, text_index, id_index = _csv_columns(names, spec)
    needed = max(text_index, -1 if id_index is None else id_index)
    for number, fields in enumerate(records, start=1):
        if not fields:
            yield InputRow(spec.path, number, "")  # a blank line
            continue
        if len(fields) <= needed:
            raise DataError(f"{spec.path} row {number} has {len(fields)} fields and no {names[needed]!r} column")
        value = _unescape(fields[text_index])[0]
        row_id = _unescape(fields[id_index])[0] if id_index is not None else None
        # Flagged for a replacement in any of its fields, as a text or JSON line is for any of its bytes.
        yield InputRow(spec.path, number, value, row_id, any(_unescape(field)[1] for field in fields))


class _CountedLines:
    """The lines of a text stream, as csv.reader takes them, counted, and noting when the stream ran out: a
    record csv.reader returns after that was ended by the end of the file, not by its own line end."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self._stream = stream
        self.count = 0
        self.last = ""
        self.ran_out = False

    def __iter__(self) -> _CountedLines:
        return self

    def __next__(self) -> str:
        try:
            self.last = next(self._stream)
        except StopIteration:
            self.ran_out = True
            raise
        self.count += 1
        return self.last


def _csv_records(spec: InputSpec, raw: io.BufferedIOBase) -> Iterator[list[str]]:
    """The records of a CSV/TSV input, header first, with undecodable bytes kept as surrogate escapes; a quoted
    field still open at the end of the file is an error (see `_unclosed_quote`)."""
    # utf-8-sig: spreadsheet programs start "CSV UTF-8" files with a byte-order mark. newline="": the csv module
    # reads the line ends itself, so "\r\n" inside a quoted field stays "\r\n".
    lines = _CountedLines(io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline=""))
    reader = csv.reader(lines, delimiter=_delimiter(spec))
    for number in itertools.count():  # 0 is the header
        first_line = lines.count + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{_csv_place(spec, number, first_line)}: {one_line(e)}") from None
        if lines.ran_out:
            raise DataError(_unclosed_quote(spec, number, fields[-1], lines))
        yield fields


def _unclosed_quote(spec: InputSpec, number: int, field: str, lines: _CountedLines) -> str:
    """The error for a record the end of the file closed. Only a quoted field can stay open past its line, and
    once a quote closes a field the rest of it is unquoted, so the culprit is the quote opening the last field;
    that field holds everything after the quote, so its line breaks count back to the line it opened on."""
    # One line break for each line from the quote's on, but for a last line that has none.
    breaks = len(_LINE_BREAK.findall(field))
    opened = lines.count - breaks + (1 if lines.last.endswith(("\n", "\r")) else 0)
    rest = lines.count - opened + 1
    return (
        f"{_csv_place(spec, number, opened)}: a quoted field opens here and is never closed, so the {rest} "
        f"line{'s' if rest > 1 else ''} to the end of the file would be read as one field; close the quote "
        f'(a quote inside a quoted field is written "")'
    )


# The line ends csv.reader's input is split on (io.TextIOWrapper with newline="").
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _csv_place(spec: InputSpec, number: int, line: int) -> str:
    return f"{spec.path} {'header' if number == 0 else f'row {number}'} (line {line})"


def _csv_names(header: list[str]) -> list[str]:
    # Replaced like the fields, so a column named with undecodable bytes is named the same way everywhere.
    return [_unescape(name)[0] for name in header]


def _csv_columns(header: list[str], spec: InputSpec) -> tuple[str, int, int | None]:
    """The text column's name and index, and the id column's index, checked against the header."""
    column = find_column(header, spec.text_column, "text", spec.path)
    if spec.id_column is not None and spec.id_column not in header:
        raise DataError(f"{spec.path} has no id column {spec.id_column!r} (columns: {', '.join(header)})")
    id_index = header.index(spec.id_column) if spec.id_column is not None else None
    return column, header.index(column), id_index


def _delimiter(spec: InputSpec) -> str:
    return "\t" if spec.format == "tsv" else ","


def _unescape(field: str) -> tuple[str, bool]:
    # surrogateescape keeps undecodable bytes as lone surrogates; turn them into U+FFFD, and say so.
    try:
        field.encode("utf-8")
        return field, False
    except UnicodeEncodeError:
        return field.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace"), True


def _replace_surrogates(text: str) -> tuple[str, bool]:
    try:
        text.encode("utf-8")
        return text, False
    except UnicodeEncodeError:
        return text.encode("utf-16", errors="surrogatepass").decode("utf-16", errors="replace"), True


def _check_first_record(spec: InputSpec) -> None:
    """Read a JSON Lines input up to its first text, so that a column its records lack is reported before any work
    starts, as a CSV header's is."""
    with contextlib.closing(read_rows(spec)) as rows:
        next((row for row in rows if not row.empty), None)


def _csv_text_column(spec: InputSpec) -> str:
    with _open_binary(spec.path, spec.encoding) as raw:
        header = next(_csv_records(spec, raw), None)
    if header is None:
        raise DataError(f"{spec.path} is empty: a CSV/TSV input needs a header row")
    return _csv_columns(_csv_names(header), spec)[0]


def _id_value(record: dict, spec: InputSpec, number: int) -> tuple[str | None, bool]:
    """The id field as text, and whether half characters in it were replaced (it is written out as UTF-8)."""
    if spec.id_column is None:
        return None, False
    if spec.id_column not in record:
        raise DataError(f"{spec.path} line {number} has no {spec.id_column!r} field")
    return _replace_surrogates(str(record[spec.id_column]))
