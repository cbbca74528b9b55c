import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from textpipe.cli import main
from textpipe.errors import DataError, PathError
from textpipe.inputs import read_rows, resolve_inputs
from textpipe.scoring import score_files


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def mixed_inputs(tmp_path):
    text = tmp_path / "a.txt"
    text.write_bytes(b"the film was lovely\n\na dreadful show\nbad \xff\xfe bytes but superb\n")
    table = tmp_path / "b.csv"
    with table.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "review", "extra"])
        w.writerows([["r1", "boring, dull plot", "x"], ["r2", "wonderful acting, really", "y"], ["r3", "", "z"]])
    lines = tmp_path / "c.jsonl"
    lines.write_text(
        json.dumps({"text": "great story", "n": 1}) + "\n\n" + json.dumps({"text": "caf\u00e9 \U0001f600 awful"}) + "\n",
        encoding="utf-8",
    )
    return [text, table, lines]


def test_order_count_and_predictions_match_the_bundle(saved_bundle, tiny_bundle, mixed_inputs, tmp_path):
    out = tmp_path / "out.jsonl"
    summary = score_files(tiny_bundle, [str(p) for p in mixed_inputs], out, batch_size=3)
    records = read_jsonl(out)
    expected_rows = [(str(mixed_inputs[0]), n) for n in (1, 2, 3, 4)]
    expected_rows += [(str(mixed_inputs[1]), n) for n in (1, 2, 3)]
    expected_rows += [(str(mixed_inputs[2]), n) for n in (1, 2, 3)]
    assert [(r["source"], r["row"]) for r in records] == expected_rows
    assert (summary.rows_read, summary.scored, summary.empty, summary.replaced) == (10, 7, 3, 1)

    scored = [r for r in records if not r["empty"]]
    texts = ["the film was lovely", "a dreadful show", "bad \ufffd\ufffd bytes but superb", "boring, dull plot",
             "wonderful acting, really", "great story", "caf\u00e9 \U0001f600 awful"]
    expected = tiny_bundle.predict_proba(texts)
    got = np.array([[r["probabilities"][c] for c in tiny_bundle.class_names] for r in scored])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert [r["label"] for r in scored] == tiny_bundle.predict(texts)
    assert [r["replaced_bytes"] for r in records].count(True) == 1 and records[3]["replaced_bytes"]
    assert records[1] == {"source": str(mixed_inputs[0]), "row": 2, "label": None, "probabilities": None,
                          "empty": True, "replaced_bytes": False}


def test_skip_empty_leaves_them_out_but_counts_them(tiny_bundle, mixed_inputs, tmp_path):
    out = tmp_path / "out.jsonl"
    summary = score_files(tiny_bundle, [str(p) for p in mixed_inputs], out, skip_empty=True)
    records = read_jsonl(out)
    assert len(records) == 7 and not any(r["empty"] for r in records)
    assert (summary.rows_read, summary.scored, summary.empty) == (10, 7, 3)


def test_csv_output_and_id_column(tiny_bundle, mixed_inputs, tmp_path):
    out = tmp_path / "out.csv"
    score_files(tiny_bundle, [str(mixed_inputs[1])], out, id_column="id")
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["id"] for r in rows] == ["r1", "r2", "r3"]
    assert list(rows[0]) == ["source", "row", "id", "label", "p_negative", "p_positive", "empty", "replaced_bytes"]
    assert rows[0]["label"] == "negative" and rows[1]["label"] == "positive"
    assert float(rows[0]["p_negative"]) + float(rows[0]["p_positive"]) == pytest.approx(1.0)
    assert rows[2]["empty"] == "1" and rows[2]["label"] == ""


def test_csv_output_with_an_id_column_keeps_a_blank_line_as_an_empty_row(tiny_bundle, tmp_path):
    table = tmp_path / "ids.csv"
    table.write_text("id,text\n1,great film\n\n3,awful\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    summary = score_files(tiny_bundle, [str(table)], out, id_column="id")
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["row"], r["id"], r["empty"]) for r in rows] == [("1", "1", "0"), ("2", "", "1"), ("3", "3", "0")]
    assert (summary.rows_read, summary.scored, summary.empty) == (3, 2, 1)


def formatter_rows():
    from textpipe.inputs import InputRow

    return [
        InputRow("a.txt", 1, "fine"),
        InputRow("a.txt", 2, "  "),
        InputRow('we"ird, name\u00e9.csv', 3, "x", id="id, \"7\"\n\u00e9"),
        InputRow("b.jsonl", 4, "y\ufffd", id="", replaced=True),
        InputRow("b.jsonl", 5, "", id="9", replaced=True),
    ]


# Class names that JSON and CSV must escape, and one that would break a %-template.
ODD_CLASSES = ['100% "sure"', "caf\u00e9, \\ok", "%s%r"]


def test_json_lines_are_the_records_as_json_dumps_writes_them():
    from textpipe.scoring import output_formatter, output_records

    rows = formatter_rows()
    probabilities = np.random.default_rng(0).dirichlet(np.ones(3), size=len(rows)).astype(np.float32)
    header, text = output_formatter("jsonl", ODD_CLASSES, with_id=True)
    expected = [json.dumps(record, ensure_ascii=False) for record in output_records(rows, probabilities, ODD_CLASSES)]
    assert header is None
    assert text(rows, probabilities).split("\n") == expected + [""]
    assert text(rows[:0], probabilities[:0]) == ""
    probabilities[0, 1] = np.nan  # a broken model: still written as json.dumps writes it
    lines = text(rows, probabilities).splitlines()
    assert '"caf\u00e9, \\\\ok": NaN' in lines[0] and lines[1:] == expected[1:]


@pytest.mark.parametrize("with_id", [True, False])
def test_csv_rows_hold_the_records_fields(with_id):
    from textpipe.scoring import output_formatter, output_records

    rows = formatter_rows()
    probabilities = np.random.default_rng(1).dirichlet(np.ones(3), size=len(rows)).astype(np.float32)
    header, text = output_formatter("csv", ODD_CLASSES, with_id=with_id)
    table = list(csv.reader(io.StringIO(header + text(rows, probabilities))))
    assert table[0] == ["source", "row"] + ["id"] * with_id + ["label"] + [f"p_{c}" for c in ODD_CLASSES] + [
        "empty", "replaced_bytes"]
    for fields, record in zip(table[1:], output_records(rows, probabilities, ODD_CLASSES), strict=True):
        expected = [record["source"], str(record["row"])] + [record.get("id") or ""] * with_id
        if record["empty"]:
            expected += [""] * (1 + len(ODD_CLASSES))
        else:
            expected += [record["label"]] + [repr(p) for p in record["probabilities"].values()]
        assert fields == expected + [str(int(record["empty"])), str(int(record["replaced_bytes"]))]


def test_batch_size_does_not_change_results(tiny_bundle, mixed_inputs, tmp_path):
    paths = [str(p) for p in mixed_inputs]
    score_files(tiny_bundle, paths, tmp_path / "one.jsonl", batch_size=1)
    score_files(tiny_bundle, paths, tmp_path / "many.jsonl", batch_size=1000)
    one, many = read_jsonl(tmp_path / "one.jsonl"), read_jsonl(tmp_path / "many.jsonl")
    assert [(r["source"], r["row"], r["label"]) for r in one] == [(r["source"], r["row"], r["label"]) for r in many]
    for a, b in zip(one, many):
        if a["probabilities"]:
            assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)



def test_windows_hold_at_most_their_rows_and_characters_in_order():
    from textpipe.inputs import InputRow
    from textpipe.scoring import _windows

    rows = [InputRow("f", n, "x" * length) for n, length in enumerate([3, 3, 10, 1, 1, 1, 1, 20, 2], start=1)]
    windows = list(_windows(rows, 4, 8))
    # Cut after 4 rows, or once the texts reach 8 characters (a longer text is a window of its own).
    assert [[row.row for row in window] for window in windows] == [[1, 2, 3], [4, 5, 6, 7], [8], [9]]
    assert list(_windows([], 4, 8)) == []


def test_window_size_does_not_change_results(tiny_bundle, mixed_inputs, tmp_path, monkeypatch):
    import textpipe.scoring as scoring

    paths = [str(p) for p in mixed_inputs]
    score_files(tiny_bundle, paths, tmp_path / "wide.jsonl", batch_size=2)
    monkeypatch.setattr(scoring, "WINDOW_CHARS", 10)  # about a row per window
    summary = score_files(tiny_bundle, paths, tmp_path / "narrow.jsonl", batch_size=2)
    wide, narrow = read_jsonl(tmp_path / "wide.jsonl"), read_jsonl(tmp_path / "narrow.jsonl")
    assert summary.rows_read == len(narrow) == len(wide) == 10
    assert [(r["source"], r["row"], r["label"]) for r in narrow] == [(r["source"], r["row"], r["label"]) for r in wide]
    for a, b in zip(narrow, wide):
        if a["probabilities"]:
            assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)

@pytest.mark.parametrize(
    "content, name, kwargs, message",
    [
        ("id,body\n1,hello\n", "x.csv", {}, "no text column found in .*x.csv"),
        ("id,text\n1,hello\n", "x.csv", {"text_column": "body"}, "has no column 'body'"),
        ("id,text\n1,hello\n", "x.csv", {"id_column": "key"}, "has no id column 'key'"),
        ("hello\n", "x.txt", {"id_column": "key"}, "--id-column needs CSV/TSV or JSON Lines"),
        ("", "x.csv", {}, "is empty"),
    ],
)
def test_bad_inputs_fail_before_any_work(tmp_path, content, name, kwargs, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        resolve_inputs([str(path)], **kwargs)


def test_missing_file_fails_before_any_work(tiny_bundle, mixed_inputs, tmp_path):
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError, match="input file not found: .*nope.txt"):
        score_files(tiny_bundle, [str(mixed_inputs[0]), str(tmp_path / "nope.txt")], out)
    assert not out.exists()


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("short.csv", "id,text\n1,fine\n2\n", r"short.csv row 2 has 1 fields and no 'text' column"),
        ("bad.jsonl", '{"text": "ok"}\n{"text": \n', r"bad.jsonl line 2: not valid JSON"),
        ("nokey.jsonl", '{"text": "ok"}\n{"body": "x"}\n', r"nokey.jsonl line 2 has no column 'text'"),
    ],
)
def test_broken_rows_are_named_and_leave_no_output(tiny_bundle, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError, match=message):
        score_files(tiny_bundle, [str(path)], out, text_column="text")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no OUT, no temporary file


def test_interrupted_run_leaves_no_output_and_keeps_an_old_one(tiny_bundle, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("a lovely film\n" * 5000)
    out = tmp_path / "out.jsonl"
    out.write_text("previous complete output\n")
    calls = []

    def interrupt(n):
        calls.append(n)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_files(tiny_bundle, [str(big)], out, batch_size=100, progress=interrupt)
    assert out.read_text() == "previous complete output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt", "out.jsonl"]


def test_tsv_and_crlf_text(tmp_path):
    tsv = tmp_path / "x.tsv"
    tsv.write_text("text\tlabel\nhello there\t1\n")
    assert [r.text for r in read_rows(resolve_inputs([str(tsv)])[0])] == ["hello there"]
    txt = tmp_path / "x.txt"
    txt.write_bytes(b"one\r\ntwo\r\n")
    assert [(r.row, r.text) for r in read_rows(resolve_inputs([str(txt)])[0])] == [(1, "one"), (2, "two")]


def test_score_command_stdin_to_stdout_and_summary(saved_bundle, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "textpipe", "score", str(saved_bundle), "-", "--output", "-"],
        input=b"the film was lovely\n\nawful \xff show\n", capture_output=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    records = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [(r["source"], r["row"], r["label"]) for r in records] == [
        ("-", 1, "positive"), ("-", 2, None), ("-", 3, "negative")]
    assert "3 rows read, 2 scored, 1 empty, 1 with replaced bytes" in proc.stderr.decode()


def test_score_command_errors_exit_2(saved_bundle, tmp_path, capsys):
    assert main(["score", str(saved_bundle), str(tmp_path / "missing.txt"), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "input file not found" in capsys.readouterr().err
    (tmp_path / "in.txt").write_text("hello\n")
    assert main(["score", str(tmp_path / "no-bundle"), str(tmp_path / "in.txt"), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "no model bundle" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_byte_order_marks_half_characters_and_huge_fields(tiny_bundle, tmp_path):
    bom_csv = tmp_path / "excel.csv"
    bom_csv.write_bytes(b"\xef\xbb\xbftext,label\nlovely film,1\n")
    bom_jsonl = tmp_path / "bom.jsonl"
    bom_jsonl.write_bytes(b'\xef\xbb\xbf{"text": "dull show"}\n{"text": "half \\ud83d emoji"}\n')
    huge = tmp_path / "huge.csv"
    huge.write_text("text\n" + "word " * 40_000 + "\n")  # 200 kB in one field
    out = tmp_path / "out.jsonl"
    summary = score_files(tiny_bundle, [str(bom_csv), str(bom_jsonl), str(huge)], out)
    records = read_jsonl(out)
    assert [r["row"] for r in records] == [1, 1, 2, 1]
    assert [r["replaced_bytes"] for r in records] == [False, False, True, False]
    assert summary.scored == 4


def test_output_folder_is_refused_before_work(tiny_bundle, mixed_inputs, tmp_path):
    with pytest.raises(PathError, match="is a folder"):
        score_files(tiny_bundle, [str(mixed_inputs[0])], tmp_path)


@pytest.mark.parametrize("n", [1, 3, 4, 11])
def test_shards_concatenate_to_the_whole_output(tiny_bundle, mixed_inputs, tmp_path, n):
    paths = [str(p) for p in mixed_inputs]
    score_files(tiny_bundle, paths, tmp_path / "all.jsonl", skip_empty=True)
    parts, rows_read = [], 0
    for i in range(1, n + 1):
        summary = score_files(tiny_bundle, paths, tmp_path / f"part{i}.jsonl", skip_empty=True, shard=(i, n))
        parts += read_jsonl(tmp_path / f"part{i}.jsonl")
        rows_read += summary.rows_read
    whole = read_jsonl(tmp_path / "all.jsonl")
    assert rows_read == 10  # every input row in exactly one shard
    assert [{k: v for k, v in r.items() if k != "probabilities"} for r in parts] == [
        {k: v for k, v in r.items() if k != "probabilities"} for r in whole]
    for a, b in zip(parts, whole):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)


def test_bad_shards(tiny_bundle, mixed_inputs, tmp_path, capsys, saved_bundle, monkeypatch):
    with pytest.raises(DataError, match="1 <= I <= N"):
        score_files(tiny_bundle, [str(mixed_inputs[0])], tmp_path / "o.jsonl", shard=(0, 2))
    with pytest.raises(DataError, match="standard input"):
        score_files(tiny_bundle, ["-"], tmp_path / "o.jsonl", shard=(1, 2))
    assert main(["score", str(saved_bundle), str(mixed_inputs[0]), "-o", str(tmp_path / "o.jsonl"), "--shard", "3/2"]) == 2
    assert main(["score", str(saved_bundle), str(mixed_inputs[0]), "-o", str(tmp_path / "o.jsonl"), "--shard", "x"]) == 2
    assert "I/N" in capsys.readouterr().err
    # Refused before the bundle loads, and the refusals of a sharded run do not suggest standard input.
    import textpipe.bundle

    monkeypatch.setattr(textpipe.bundle, "load_bundle", lambda *a, **k: pytest.fail("the bundle was loaded"))
    packed = tmp_path / "rows.txt.gz"
    packed.write_bytes(b"\x1f\x8b\x08\x00")
    assert main(["score", str(saved_bundle), "-", "-o", str(tmp_path / "o.jsonl"), "--shard", "1/2"]) == 2
    assert capsys.readouterr().err.strip() == "textpipe: error: sharding needs input files: standard input cannot be counted and read again"
    assert main(["score", str(saved_bundle), str(packed), "-o", str(tmp_path / "o.jsonl"), "--shard", "1/2"]) == 2
    assert capsys.readouterr().err.strip().endswith("(unpack it first)")


def test_scoring_keeps_older_objects_out_of_full_collections_and_then_lets_them_go(tiny_bundle, mixed_inputs, tmp_path):
    import gc

    paths = [str(p) for p in mixed_inputs]
    frozen_while_scoring = []
    score_files(tiny_bundle, paths, tmp_path / "out.jsonl", progress=lambda n: frozen_while_scoring.append(
        gc.get_freeze_count()))
    assert frozen_while_scoring and min(frozen_while_scoring) > 1000  # TensorFlow's objects, at least
    assert gc.get_freeze_count() == 0
    gc.freeze()  # a program that freezes objects itself keeps exactly its own choice
    try:
        already = gc.get_freeze_count()
        score_files(tiny_bundle, paths, tmp_path / "out.jsonl")
        assert 0 < gc.get_freeze_count() <= already  # neither unfrozen nor grown (freed ones leave it)
    finally:
        gc.unfreeze()
