"""Outputs are checked before any work: never an input, never a special file, never under a file; and a
bundle folder is replaced so that a complete one is at its path at every instant."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from test_retrain import write_dataset, write_toml
from textpipe.atomic import atomic_dir, atomic_file
from textpipe.cli import main
from textpipe.errors import PathError
from textpipe.paths import check_output_dir, check_output_file

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    return status, capsys.readouterr().err


@pytest.fixture
def inputs(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("good\nbad\n")
    return path


def test_score_refuses_to_write_over_its_input(saved_bundle, inputs, tmp_path, capsys):
    status, err = run(capsys, "score", saved_bundle, inputs, "--output", inputs)
    assert status == 2 and "is also an input" in err
    assert inputs.read_text() == "good\nbad\n"
    # Through a glob that matches the output, and through a link to it.
    status, err = run(capsys, "score", saved_bundle, tmp_path / "*.txt", "--output", inputs)
    assert status == 2 and "is also an input" in err
    (tmp_path / "link.jsonl").symlink_to(inputs)
    status, err = run(capsys, "score", saved_bundle, inputs, "--output", tmp_path / "link.jsonl")
    assert status == 2 and inputs.read_text() == "good\nbad\n"


def test_score_refuses_to_write_into_the_bundle(saved_bundle, inputs, tmp_path, capsys):
    model = Path(saved_bundle) / "model.keras"
    before = model.read_bytes()
    for output in (model, Path(saved_bundle) / "predictions.jsonl"):
        status, err = run(capsys, "score", saved_bundle, inputs, "--output", output)
        assert status == 2 and err.count("\n") == 1 and "is inside the model bundle" in err
    assert model.read_bytes() == before and not (Path(saved_bundle) / "predictions.jsonl").exists()
    # Through a link to the bundle's folder too.
    (tmp_path / "alias").symlink_to(saved_bundle)
    with pytest.raises(PathError, match="inside the model bundle"):
        check_output_file(tmp_path / "alias" / "p.jsonl", bundle=saved_bundle)
    check_output_file(tmp_path / "p.jsonl", bundle=saved_bundle)  # beside it is fine


def test_special_files_are_not_replaced(saved_bundle, inputs, tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    status, err = run(capsys, "score", saved_bundle, inputs, "--output", fifo)
    assert status == 2 and "is a FIFO" in err
    status, err = run(capsys, "train", "--output", fifo, "--epochs", "1")
    assert status == 2 and "is a FIFO" in err
    assert Path(fifo).exists() and not Path(fifo).is_file() and not Path(fifo).is_dir()
    # The null device keeps its meaning.
    status, err = run(capsys, "score", saved_bundle, inputs, "--output", os.devnull)
    assert status == 0 and "2 scored" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--output", "{file}/sub"], "is not a folder"),
        (["train", "--backup-dir", "{file}"], "backup folder"),
        (["train", "--log-dir", "{file}"], "log folder"),
        (["train", "--dataset", os.devnull], "is a device"),
        (["score", "{bundle}", "{file}", "--output", "{file}/x.jsonl"], "is not a folder"),
    ],
)
def test_unusable_paths_fail_before_any_work_with_status_2(argv, message, saved_bundle, inputs, tmp_path, capsys):
    argv = [a.format(file=inputs, bundle=saved_bundle) for a in argv]
    if argv[0] == "train" and "--output" not in argv:
        argv += ["--output", str(tmp_path / "model")]
    status, err = run(capsys, *argv, *(["--epochs", "1"] if argv[0] == "train" else []))
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "model").exists()


def test_paths_the_system_refuses_fail_before_training(saved_bundle, inputs, tmp_path, capsys):
    # /proc takes no new files (as root its permission bits allow it; as another user they refuse); a 300-byte
    # name is past NAME_MAX.
    for output, message in [("/proc/textpipe-model", "/proc takes no new files" if os.geteuid() == 0 else "/proc"),
                            (tmp_path / ("m" * 300), "File name too long")]:
        status, err = run(capsys, "train", "--output", output, "--epochs", "1")
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    status, err = run(capsys, "score", saved_bundle, inputs, "--output", tmp_path / ("p" * 300))
    assert status == 2 and "File name too long" in err and len(err.strip().splitlines()) == 1


def test_path_checks():
    check_output_file("-")
    check_output_file(os.devnull)
    with pytest.raises(PathError, match="is a folder"):
        check_output_file(ROOT)
    with pytest.raises(PathError, match="is a file, not a folder"):
        check_output_dir(ROOT / "pyproject.toml")
    check_output_dir(ROOT / "no" / "such" / "folder")  # made when written


def test_retrain_checks_its_report_path_before_training(tmp_path, capsys):
    write_dataset(tmp_path / "data" / "reviews")
    config = write_toml(tmp_path / "retrain.toml", data={"sources": ["data/reviews"], "eval_split": "test"})
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    status, err = run(capsys, "retrain", "--config", config, "--report", blocker / "r.json")
    assert status == 2 and "cannot write report" in err
    assert not (tmp_path / "models").exists()  # nothing trained, nothing promoted


def test_replacing_a_folder_keeps_a_complete_one_at_its_path(tmp_path):
    """A second process checks the folder over and over while this one replaces it."""
    target = tmp_path / "bundle"
    with atomic_dir(target) as staging:
        (staging / "complete").write_text("0")
    watcher = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os, sys
            missing = 0
            while not os.path.exists({str(tmp_path / 'done')!r}):
                missing += not os.path.exists({str(target / 'complete')!r})
            print(missing)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    for i in range(300):
        with atomic_dir(target) as staging:
            (staging / "complete").write_text(str(i))
    (tmp_path / "done").touch()
    assert watcher.communicate(timeout=60)[0].strip() == "0"
    assert (target / "complete").read_text() == "299"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "done"]


def test_a_folder_left_aside_by_a_killed_swap_is_put_back(tmp_path):
    """Where folders cannot be swapped in one step, a kill between the two renames leaves the old folder
    aside; the next writer puts it back before it starts."""
    target = tmp_path / "bundle"
    with atomic_dir(target) as staging:
        (staging / "version").write_text("old")
    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os
            from textpipe import atomic
            atomic._exchange = lambda a, b: False
            real = os.replace
            def replace(src, dst):
                real(src, dst)
                if str(dst).endswith("/bundle") and ".old-" in str(dst):
                    os._exit(9)  # killed right after the old folder was moved aside
            atomic.os.replace = replace
            with atomic.atomic_dir({str(target)!r}) as staging:
                (staging / "version").write_text("new")
        """)],
        cwd=ROOT,
    )
    assert killed.returncode == 9 and not target.exists()
    with pytest.raises(RuntimeError):
        with atomic_dir(target):
            raise RuntimeError("this writer fails too")
    assert (target / "version").read_text() == "old"


def test_a_failed_write_removes_the_folders_it_made(saved_bundle, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": \n')
    status, err = run(capsys, "score", saved_bundle, bad, "--output", tmp_path / "new" / "sub" / "x.jsonl")
    assert status == 2 and not (tmp_path / "new").exists()


def test_rollback_of_nothing_creates_nothing(tmp_path, capsys):
    config = write_toml(tmp_path / "retrain.toml", data={"sources": ["data/reviews"], "eval_split": "test"})
    status, err = run(capsys, "retrain", "--config", config, "--rollback")
    assert status == 2 and "nothing to roll back" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["retrain.toml"]


def test_the_next_writer_deletes_what_killed_writers_left(tmp_path):
    target = tmp_path / "bundle"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid, host = int(dead.stdout), __import__("socket").gethostname()
    killed = [tmp_path / f".bundle.tmp-{host}-{pid}-abc", tmp_path / f".bundle.old-{host}-{pid}-def"]
    for folder in killed:
        (folder / "bundle").mkdir(parents=True)
    live = tmp_path / f".bundle.tmp-{host}-{os.getpid()}-ghi"  # a writer still at work: kept
    live.mkdir()
    (tmp_path / f".out.jsonl.tmp-{host}-{pid}-jkl").write_text("half")
    with atomic_dir(target) as staging:
        (staging / "version").write_text("new")
    with atomic_file(tmp_path / "out.jsonl") as f:
        f.write("whole\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["bundle", live.name, "out.jsonl"])


def test_a_name_near_the_filesystems_limit_is_written_and_its_leftovers_found(tmp_path):
    # The temporary name repeats the target's; for a 250-byte name it is shortened, not refused by the system.
    name = "é" * 60 + "r" * 126 + ".jsonl"  # 252 bytes in UTF-8
    assert len(name.encode()) == 252
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    from textpipe.atomic import _prefix

    leftover = tmp_path / (_prefix(tmp_path / name, "tmp").replace(f"-{os.getpid()}-", f"-{int(dead.stdout)}-") + "x")
    assert len(os.fsencode(leftover.name)) <= 255
    leftover.write_text("half")
    for _ in range(2):
        with atomic_file(tmp_path / name) as f:
            f.write("whole\n")
        with atomic_dir(tmp_path / (name + "d")) as staging:
            (staging / "version").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, name + "d"])
    assert (tmp_path / name).read_text() == "whole\n"
