"""The terminal shows textpipe's lines only; mistakes are found before TensorFlow is imported; an unreachable Hub
fails fast.

Commands run in a fresh process, as a user runs them: what TensorFlow and `datasets` print happens once per
process, at import. The Hub is a port on this machine that refuses connections, so the tests need no network and
behave the same with one.
"""

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import datasets
import huggingface_hub.constants
import pandas as pd
import pytest

from textpipe import __version__, quiet
from textpipe.cli import build_parser, main
from textpipe.errors import DataError
from textpipe.sources import hub_answers, load_hub_dataset

UNREACHABLE = (
    "textpipe: error: could not reach the Hugging Face Hub to load 'does-not-exist' (no network?); download it "
    "beforehand or pass a local folder or file (Parquet, CSV, TSV, JSON Lines) instead\n"
)

# Runs cli.main in a fresh process and reports its status, its time and whether TensorFlow was imported.
# textpipe.data (datasets, scikit-learn) is imported before the clock starts: the time is the command's own.
DRIVER = """
import json, sys, time
import textpipe.data
from textpipe.cli import main
start = time.monotonic()
try:
    status = main(sys.argv[1:])
except SystemExit as e:
    status = e.code
print(json.dumps({"status": status, "seconds": time.monotonic() - start, "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.fixture(scope="module")
def closed_port():
    """A local port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def home(tmp_path_factory, closed_port):
    """A working folder and the environment of a user who set none of the libraries' logging switches, with an
    empty Hugging Face cache and a Hub that cannot be reached."""
    folder = tmp_path_factory.mktemp("home")
    env = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("HF_", "TF_CPP_", "DATASETS_", "TRANSFORMERS_"))
    }
    env.update(HF_HOME=str(folder / "hf"), HF_ENDPOINT=f"http://127.0.0.1:{closed_port}", PYTHONUNBUFFERED="1")
    from conftest import make_sentences

    texts, labels = make_sentences(120, 5)
    (folder / "reviews").mkdir()
    pd.DataFrame({"text": texts, "label": ["good" if y else "bad" for y in labels]}).to_csv(
        folder / "reviews" / "train.csv", index=False
    )
    return folder, env


def textpipe(home, *argv, timeout=300):
    folder, env = home
    return subprocess.run(
        [sys.executable, "-m", "textpipe", *map(str, argv)],
        capture_output=True, text=True, env=env, cwd=folder, timeout=timeout,
    )


def drive(home, *argv):
    folder, env = home
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *map(str, argv)],
        capture_output=True, text=True, env=env, cwd=folder, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1]), proc.stderr


@pytest.fixture(scope="module")
def trained(home):
    """`textpipe train` on a small CSV, tiny settings: its output, and the bundle it wrote."""
    proc = textpipe(
        home, "train", "--dataset", "reviews", "--output", "bundle", "--epochs", 1, "--vocab-size", 64,
        "--sequence-length", 16, "--embedding-dim", 8, "--lstm-units", 8,
    )
    assert proc.returncode == 0, proc.stderr
    return proc, home[0] / "bundle"


def test_train_prints_textpipe_lines_only(trained):
    proc, _ = trained
    assert proc.stderr == ""  # no absl, CUDA, oneDNN lines; no "Generating train split" bar
    assert proc.stdout.startswith("data: 108 train, 12 validation (carved from train); classes: bad, good;")
    assert "- loss:" in proc.stdout  # Keras' progress line for fit stays
    assert proc.stdout.rstrip().endswith("bundle saved to bundle")


def test_predict_prints_textpipe_lines_only(trained, home):
    proc = textpipe(home, "predict", trained[1], "good film")
    assert proc.returncode == 0
    assert proc.stderr == ""
    label, probability, text = proc.stdout.rstrip("\n").split("\t")
    assert label in ("bad", "good") and 0.5 <= float(probability) <= 1 and text == "good film"


def test_unreachable_hub_is_one_line_within_seconds(home):
    proc = textpipe(home, "train", "--dataset", "does-not-exist")
    assert proc.returncode == 2
    assert proc.stderr == UNREACHABLE
    assert proc.stdout == ""
    result, _ = drive(home, "train", "--dataset", "does-not-exist")
    assert result["status"] == 2 and not result["tensorflow"]
    assert result["seconds"] < 5  # huggingface_hub alone retries for half a minute


def test_verbose_and_the_libraries_own_switches_bring_their_logs_back(home):
    argv = ["train", "--dataset", "reviews", "--text-column", "body"]  # fails once the data is read
    error = "textpipe: error: 'reviews' has no column 'body' (columns: text, label)\n"
    quiet_run = textpipe(home, *argv)
    assert quiet_run.returncode == 2 and quiet_run.stderr == error
    folder, env = home
    for run in (
        textpipe((folder, dict(env, HF_HOME=str(folder / "hf-verbose"))), "--verbose", *argv),
        textpipe((folder, dict(env, HF_HOME=str(folder / "hf-switch"), DATASETS_VERBOSITY="warning",
                               HF_DATASETS_DISABLE_PROGRESS_BARS="0")), *argv),
    ):
        assert run.returncode == 2
        assert "Generating train split" in run.stderr  # datasets' progress bar, in a cache of its own
        assert run.stderr.endswith(error)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--dataset", "does-not-exist"], "could not reach the Hugging Face Hub"),
        (["train", "--dataset", "./missing.csv"], "no such file or folder: ./missing.csv"),
        (["train", "--model", "conv1d", "--dataset", "./missing.csv"], "no such file or folder: ./missing.csv"),
        (["train", "--model", "conv1d", "--sequence-length", "8"], "needs sequence_length >= 19"),
        (["train", "--model", "conv1d", "--word-vectors", "glove.txt"], "word vector file glove.txt does not exist"),
        (["train", "--config", "broken.toml"], "is not valid TOML"),
        (["train", "--config", "unknown.toml"], "unknown setting 'epoch'"),
        (["train", "--output", "reviews"], "reviews exists and is not a textpipe bundle"),
        (["train", "--epochs", "many"], "invalid int value: 'many'"),
        (["train", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["predict", "no-such-bundle", "x"], "no model bundle at"),
        (["evaluate", "no-such-bundle"], "no model bundle at"),
        (["evaluate", "{bundle}", "--dataset", "./missing"], "no such file or folder: ./missing"),
        (["score", "{bundle}", "missing.txt", "--output", "out.jsonl"], "input file not found: missing.txt"),
        (["score", "{bundle}", "records.jsonl", "--text-column", "body", "--output", "out.jsonl"],
         "records.jsonl line 2 has no column 'body'"),
        (["neighbors", "reviews", "good"], "is not a textpipe bundle: bundle.json is missing"),
    ],
)
def test_mistakes_are_found_before_tensorflow_is_imported(trained, home, argv, message):
    folder = home[0]
    (folder / "broken.toml").write_text("epochs = \n")
    (folder / "unknown.toml").write_text("epoch = 3\n")
    (folder / "records.jsonl").write_text('\n{"text": "a fine film"}\n')
    result, stderr = drive(home, *[a.format(bundle=trained[1]) for a in argv])
    assert result["status"] == 2
    assert not result["tensorflow"], argv
    last = stderr.splitlines()[-1]
    assert last.startswith(("textpipe: error: ", "textpipe train: error: ")) and message in last, stderr


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"textpipe {__version__}\n"


@pytest.mark.parametrize(
    "argv, verbose",
    [
        (["predict", "b", "t"], False),
        (["--verbose", "predict", "b", "t"], True),
        (["predict", "--verbose", "b", "t"], True),
        (["train", "--verbose"], True),
    ],
)
def test_verbose_is_a_global_flag(argv, verbose):
    assert build_parser().parse_args(argv).verbose is verbose


def test_quiet_sets_only_logging_switches_the_user_left_unset(monkeypatch):
    for name in ("TF_CPP_MIN_LOG_LEVEL", "DATASETS_VERBOSITY", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(name, raising=False)
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    with quiet.quiet_libraries():
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
        assert os.environ["DATASETS_VERBOSITY"] == "error"
        assert logging.getLogger("tensorflow").getEffectiveLevel() == logging.ERROR
        assert os.environ.get("TF_ENABLE_ONEDNN_OPTS") == onednn  # it changes the numbers, not the logs
        # Beam: the processes the command starts are told to keep to errors (test_beam.py: which runners'); a
        # warning its modules put on the root logger is dropped, one from anywhere else is not.
        assert quiet.quiet_workers()
        root = logging.getLogger()
        beam_file = os.path.join("site-packages", "apache_beam", "ml", "inference", "base.py")
        assert not root.filter(logging.LogRecord("root", logging.WARNING, beam_file, 1, "memory usage", None, None))
        assert root.filter(logging.LogRecord("root", logging.ERROR, beam_file, 1, "failed", None, None))
        assert root.filter(logging.LogRecord("root", logging.WARNING, "/work/mine.py", 1, "mine", None, None))
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ and "DATASETS_VERBOSITY" not in os.environ
    assert quiet.QUIET_WORKERS not in os.environ and not quiet.quiet_workers()
    assert root.filter(logging.LogRecord("root", logging.WARNING, beam_file, 1, "memory usage", None, None))

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    monkeypatch.setenv("DATASETS_VERBOSITY", "info")
    meta_path = list(sys.meta_path)
    with quiet.quiet_libraries():
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" and os.environ["DATASETS_VERBOSITY"] == "info"
        assert sys.meta_path == meta_path  # TensorFlow's import is not muted either
        assert not quiet.quiet_workers()  # nor Beam's workers' logs
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_the_silenced_import_mutes_only_the_import(tmp_path, monkeypatch):
    """A module's import runs with file descriptor 2 on the null device; what comes after is shown."""
    (tmp_path / "noisy.py").write_text("import os\nos.write(2, b'chatter from C++\\n')\n")
    script = (
        "import os, sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from textpipe import quiet\n"
        "finder = quiet._SilentImportFinder('noisy')\n"
        "sys.meta_path.insert(0, finder)\n"
        "import noisy\n"
        "assert noisy.__spec__.loader.__class__.__name__ == 'SourceFileLoader'\n"
        "os.write(2, b'after the import\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "after the import\n"


def test_a_hub_that_does_not_answer_is_asked_once_then_only_the_cache(monkeypatch):
    seen = []

    def fake_load_dataset(path, name=None, **kwargs):
        seen.append((datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE))
        raise ConnectionError("Couldn't reach the Hugging Face Hub for dataset 'imdb'")

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr("textpipe.sources.hub_answers", lambda endpoint: False)
    before = datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE
    with pytest.raises(DataError, match="could not reach the Hugging Face Hub to load 'imdb'"):
        load_hub_dataset("imdb")
    assert seen == [(True, True)]  # offline mode: the cache, no retries
    assert (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE) == before

    monkeypatch.setattr("textpipe.sources.hub_answers", lambda endpoint: True)
    with pytest.raises(DataError):
        load_hub_dataset("imdb")
    assert seen[-1] == before  # a Hub that answers gets datasets' usual requests


def test_hub_answers(closed_port):
    class Hub(BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert hub_answers(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
    start = time.monotonic()
    assert not hub_answers(f"http://127.0.0.1:{closed_port}", timeout=2)
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])  # 2: worker processes start slowly
def test_score_on_beam_prints_textpipe_lines_only(trained, home, workers):
    pytest.importorskip("apache_beam", reason="the [beam] extra is not installed")
    folder = home[0]
    (folder / "to-score.txt").write_text("good film\nbad film\n" * 50, encoding="utf-8")
    options = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"] if workers == 2 else []
    proc = textpipe(
        home, "score", trained[1], "to-score.txt", "--output", f"beam{workers}/scored.jsonl", "--runner", "DirectRunner",
        *options,
    )
    assert proc.returncode == 0, proc.stderr
    # Beam's warnings and its workers' logs (their TensorFlow import included) stay hidden, but for what a worker
    # process logs as it starts, before any of textpipe's code runs in it.
    startup = ("WARNING:root:apitools not found", "INFO:__main__:Logging handler created.")
    lines = proc.stderr.splitlines()
    ours = [line for line in lines if not line.startswith(startup)]
    assert len(ours) == 2 and all(line.startswith("textpipe: ") for line in ours), proc.stderr
    assert len(lines) <= 2 + (2 * workers if workers > 1 else 0), proc.stderr
    assert ours[0].startswith("textpipe: 100 rows read, 100 scored")
    shards = sorted((folder / f"beam{workers}").iterdir())
    assert len(shards) == workers and sum(len(p.read_text().splitlines()) for p in shards) == 100
