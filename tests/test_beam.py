"""`textpipe score --runner`: the Beam driver gives the local scorer's records, only unordered and sharded."""

import csv
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import make_sentences
from textpipe.cli import main

beam = pytest.importorskip("apache_beam", reason="the [beam] extra is not installed")


@pytest.fixture(scope="module")
def messy_inputs(tmp_path_factory):
    """~3,000 rows over two text files (matched by a glob) and a CSV: empty lines, undecodable bytes, a BOM."""
    folder = tmp_path_factory.mktemp("beam_inputs")
    texts, _ = make_sentences(3000, 11)
    rng = random.Random(3)
    for name, part in (("part-1.txt", texts[:1800]), ("part-2.txt", texts[1800:2600])):
        lines = []
        for i, text in enumerate(part):
            line = text.encode()
            if rng.random() < 0.02:
                line += b" \xff\xfe caf\xc3"  # invalid UTF-8, replaced by U+FFFD and flagged
            lines.append(line)
            if rng.random() < 0.03:
                lines.append(rng.choice([b"", b"   ", b"\t"]))
        (folder / name).write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    with (folder / "reviews.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review"])
        for i, text in enumerate(texts[2600:]):
            writer.writerow([f"r{i}", "" if i % 25 == 0 else f"{text}, \"quoted\"\nsecond line"])
    return [str(folder / "part-*.txt"), str(folder / "reviews.csv")]


def score(capsys, *argv):
    status = main(["score", *map(str, argv)])
    err = capsys.readouterr().err
    assert status == 0, err
    summary = next(line for line in err.splitlines() if " rows read, " in line)
    return summary.split(";")[0]  # the counts, without the timing


def read_jsonl(paths):
    return [json.loads(line) for path in paths for line in path.read_text(encoding="utf-8").splitlines()]


def assert_same_records(local, beamed):
    order = {source: i for i, source in enumerate(dict.fromkeys(r["source"] for r in local))}
    beamed = sorted(beamed, key=lambda r: (order[r["source"]], r["row"]))
    assert [(r["source"], r["row"]) for r in beamed] == [(r["source"], r["row"]) for r in local]
    def without_probabilities(records):
        return [{k: v for k, v in r.items() if k != "probabilities"} for r in records]

    assert without_probabilities(beamed) == without_probabilities(local)
    scored = [(a, b) for a, b in zip(local, beamed) if a["probabilities"] is not None]
    assert all(b["probabilities"] is not None for _, b in scored)
    got = np.array([list(b["probabilities"].values()) for _, b in scored])
    expected = np.array([list(a["probabilities"].values()) for a, _ in scored])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_direct_runner_output_sorts_back_to_the_local_output(saved_bundle, messy_inputs, tmp_path, capsys):
    local_counts = score(capsys, saved_bundle, *messy_inputs, "--output", tmp_path / "local.jsonl")
    beam_counts = score(
        capsys, saved_bundle, *messy_inputs, "--output", tmp_path / "beam" / "scored.jsonl",
        "--runner", "DirectRunner", "--batch-size", "100",
    )
    local = read_jsonl([tmp_path / "local.jsonl"])
    shards = sorted((tmp_path / "beam").iterdir())
    assert [p.name for p in shards] == ["scored-00000-of-00001.jsonl"]
    assert_same_records(local, read_jsonl(shards))
    assert beam_counts == local_counts
    rows, scored, empty, replaced = (int(part.split()[0]) for part in local_counts.split(": ")[1].split(", "))
    assert rows > 3000 and empty > 50 and replaced > 10 and scored == rows - empty
    assert {r["source"].rsplit("/", 1)[-1] for r in local} == {"part-1.txt", "part-2.txt", "reviews.csv"}


@pytest.mark.slow  # worker processes: the slowest of the Beam tests
def test_two_worker_processes_give_the_local_csv(saved_bundle, messy_inputs, tmp_path, capsys):
    options = ["--skip-empty", "--format", "csv"]
    local_counts = score(capsys, saved_bundle, *messy_inputs, "--output", tmp_path / "local.csv", *options)
    beam_counts = score(
        capsys, saved_bundle, *messy_inputs, "--output", tmp_path / "beam" / "scored.csv", *options,
        "--runner", "DirectRunner", "--direct_num_workers", "2", "--direct_running_mode", "multi_processing",
    )
    assert beam_counts == local_counts

    def read_csv(path):
        with path.open(encoding="utf-8", newline="") as f:
            return list(csv.reader(f))

    local = read_csv(tmp_path / "local.csv")
    shards = [read_csv(p) for p in sorted((tmp_path / "beam").iterdir())]
    assert len(shards) == 2 and all(shard[0] == local[0] for shard in shards)  # each shard has the header
    sources = list(dict.fromkeys(row[0] for row in local[1:]))
    beamed = sorted((row for shard in shards for row in shard[1:]), key=lambda r: (sources.index(r[0]), int(r[1])))
    assert [r[:3] + r[5:] for r in beamed] == [r[:3] + r[5:] for r in local[1:]]  # all but the probabilities
    np.testing.assert_allclose(
        np.array([r[3:5] for r in beamed], dtype=float), np.array([r[3:5] for r in local[1:]], dtype=float), atol=1e-5
    )
    assert not any(row[-2] == "1" for row in local[1:])  # --skip-empty left them out of both


@pytest.mark.parametrize(
    "problem, expected",
    [("bundle", "no model bundle at"), ("input", "input file not found"), ("glob", "no input files match"),
     ("output", "is inside the model bundle")],
)
def test_missing_bundle_or_input_fails_before_the_pipeline_starts(
    problem, expected, saved_bundle, messy_inputs, tmp_path, monkeypatch, capsys
):
    import textpipe.beam

    def no_pipeline(*args, **kwargs):
        raise AssertionError("the pipeline was built")

    monkeypatch.setattr(textpipe.beam.beam, "Pipeline", no_pipeline)
    bundle = tmp_path / "nothing" if problem == "bundle" else saved_bundle
    inputs = {"input": [tmp_path / "gone.txt"], "glob": [tmp_path / "gone-*.txt"]}.get(problem, messy_inputs)
    output = Path(saved_bundle) / "o.jsonl" if problem == "output" else tmp_path / "o.jsonl"
    status = main(["score", str(bundle), *map(str, inputs), "--output", str(output), "--runner", "DirectRunner"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and expected in err[0], err
    assert not list(output.parent.glob("o*"))


def test_refusals_do_not_suggest_standard_input_which_a_pipeline_cannot_read(saved_bundle, tmp_path, capsys):
    import gzip

    packed = tmp_path / "reviews.txt.gz"
    packed.write_bytes(gzip.compress(b"a lovely film\n"))
    out = str(tmp_path / "o.jsonl")
    for inputs, expected in (([str(packed)], "is not text (a .gz file); inputs are plain text, CSV, TSV or JSON "
                              "Lines (unpack it first)"),
                             (["-"], "a pipeline cannot read standard input; give input files or glob patterns")):
        status = main(["score", str(saved_bundle), *inputs, "--output", out, "--runner", "DirectRunner"])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1 and err[0].endswith(expected), err


def test_a_bad_row_found_by_a_worker_is_a_one_line_error(saved_bundle, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "great"}\n{"text": "dull"\n', encoding="utf-8")
    status = main(["score", str(saved_bundle), str(bad), "--output", str(tmp_path / "o.jsonl"),
                   "--runner", "DirectRunner"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err[-1].startswith(f"textpipe: error: {bad} line 2: not valid JSON"), err[-3:]


def test_without_apache_beam_it_says_how_to_install_it(saved_bundle, messy_inputs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import apache_beam raises ImportError
    monkeypatch.delitem(sys.modules, "textpipe.beam", raising=False)
    status = main(["score", str(saved_bundle), *messy_inputs, "--output", str(tmp_path / "o.jsonl"),
                   "--runner", "DirectRunner"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "pip install 'textpipe[beam]'" in err[0], err


def test_shard_with_runner_and_unknown_options_without_it_are_usage_errors(saved_bundle, messy_inputs, tmp_path, capsys):
    out = str(tmp_path / "o.jsonl")
    assert main(["score", str(saved_bundle), *messy_inputs, "-o", out, "--runner", "DirectRunner", "--shard", "1/2"]) == 2
    assert "leave --shard out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["score", str(saved_bundle), *messy_inputs, "-o", out, "--direct_num_workers", "2"])
    assert exit_.value.code == 2 and "unrecognized arguments: --direct_num_workers 2" in capsys.readouterr().err


def test_model_handler_scores_a_batch_like_the_bundle(saved_bundle, tiny_bundle):
    from textpipe.beam import BundleModelHandler
    from textpipe.inputs import InputRow

    handler = BundleModelHandler(saved_bundle, min_batch_size=4, max_batch_size=64)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 4, "max_batch_size": 64}
    texts = ["a wonderful film", "", "dull and boring", "caf\u00e9 \U0001f600"]
    rows = [InputRow("x.txt", i + 1, text) for i, text in enumerate(texts)]
    scored = handler.run_inference(rows, handler.load_model())
    assert [row for row, _ in scored] == rows
    expected = tiny_bundle.predict_proba([t for t in texts if t])
    np.testing.assert_allclose([p for row, p in scored if not row.empty], expected, atol=1e-6)


def test_direct_runner_workers_keep_to_errors_while_the_command_line_is_quiet(monkeypatch):
    from textpipe import quiet
    from textpipe.beam import worker_log_args

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    errors_only = ["--default_sdk_harness_log_level=ERROR"]
    with quiet.quiet_libraries():
        assert worker_log_args(["--runner", "DirectRunner"]) == errors_only
        assert worker_log_args(["--runner=direct", "--direct_num_workers", "2"]) == errors_only
        assert worker_log_args([]) == errors_only  # Beam's default runner
        assert worker_log_args(["--runner", "DataflowRunner"]) == []  # its workers log where Dataflow keeps logs
        assert worker_log_args(["--runner", "DirectRunner", "--default_sdk_harness_log_level=INFO"]) == []
    assert worker_log_args(["--runner", "DirectRunner"]) == []  # the library alone leaves Beam's logging as it is
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    with quiet.quiet_libraries():
        assert worker_log_args(["--runner", "DirectRunner"]) == []  # the user asked for the libraries' logs
