"""Checks on the paths a command reads and writes, made before it does any work.

A run that would fail on its output only after an hour of training, or that would write its predictions
over the file it reads, is refused at the start instead, with a PathError (exit status 2 in the CLI).
Outputs are regular files or folders, or absent: a FIFO, device or socket is never replaced. Standard output
("-") and the null device keep their usual meaning where a file is expected.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Iterable

from textpipe.errors import PathError

STDOUT = "-"


def check_output_file(
    path: str | Path, inputs: Iterable[str | Path] = (), *, what: str = "output", bundle: str | Path | None = None
) -> None:
    """`path` can be written as a file: absent or a regular file (or "-", or the null device), not one of
    `inputs`, not inside the model `bundle` folder the command reads, in a folder that exists or can be made."""
    if str(path) == STDOUT:
        return
    path = Path(path)
    if is_null_device(path):
        return
    if bundle is not None:
        check_outside_bundle(path, bundle, what=what)
    kind = _kind(path)
    if kind == "folder":
        raise PathError(f"{what} {path} is a folder; name a file to write")
    if kind not in (None, "file"):
        raise PathError(f"{what} {path} is a {kind}, not a regular file; refusing to replace it")
    for source in inputs:
        if _same_file(path, Path(source)):
            raise PathError(f"{what} {path} is also an input ({source}); write to another file")
    _check_parent(path, what)


def check_output_dir(path: str | Path, *, what: str = "output") -> None:
    """`path` can be written as a folder: absent or a folder, in a folder that exists or can be made."""
    path = Path(path)
    kind = _kind(path)
    if kind not in (None, "folder"):
        raise PathError(f"{what} {path} is a {kind}, not a folder")
    _check_parent(path, what)


def check_input_path(path: str | Path, *, what: str = "input") -> None:
    """An existing local `path` given as data is a regular file or a folder (not a FIFO, device or socket)."""
    kind = _kind(Path(path))
    if kind not in (None, "file", "folder"):
        raise PathError(f"{what} {path} is a {kind}; give a file or a folder of files")


def check_training_paths(config, *, output: bool = True, word_vectors: bool = True) -> None:
    """The folders a training run writes (the bundle's, with `output`; backups; logs), its local dataset and
    unlabeled text, and, with `word_vectors` (a warm start reads none), its word vector file."""
    folders = {"output": config.output if output else None, "backup folder": config.backup_dir,
               "log folder": config.log_dir}
    for what, folder in folders.items():
        if folder is not None:
            check_output_dir(folder, what=what)
    if config.dataset is not None and os.path.lexists(config.dataset):
        check_input_path(config.dataset, what="dataset")
    if config.unlabeled is not None and os.path.lexists(config.unlabeled):
        check_input_path(config.unlabeled, what="unlabeled text")
    if word_vectors and config.word_vectors is not None:
        kind = _kind(Path(config.word_vectors))
        if kind is None:
            raise PathError(f"word vector file {config.word_vectors} does not exist")
        if kind == "folder":
            raise PathError(f"word vector file {config.word_vectors} is a folder; give the GloVe or word2vec text file")


def _check_parent(path: Path, what: str) -> None:
    """The nearest existing folder above `path` is a folder we may write in."""
    parent = Path(os.path.abspath(path)).parent
    while not os.path.lexists(parent):
        parent = parent.parent
    if not parent.is_dir():
        raise PathError(f"cannot write {what} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PathError(f"cannot write {what} {path}: no permission to write in {parent}")
    # Permission bits do not tell everything (a read-only or virtual file system such as /proc): create and
    # remove a file there, so the run fails now and not when it saves.
    try:
        handle, probe = tempfile.mkstemp(prefix=".textpipe-probe-", dir=parent)
    except OSError as e:
        raise PathError(f"cannot write {what} {path}: {parent} takes no new files ({e.strerror})") from None
    os.close(handle)
    os.unlink(probe)


def _kind(path: Path) -> str | None:
    """'file', 'folder', another kind of file by name, or None when nothing is there (a dangling link is
    nothing: writing creates its target)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None  # a file in the way above it is reported by _check_parent
    except OSError as e:  # a name too long, a loop of links, ...
        raise PathError(f"cannot use {path}: {e.strerror}") from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file"


def is_null_device(path: str | Path) -> bool:
    try:
        return os.path.samefile(path, os.devnull)
    except OSError:
        return False


def check_outside_bundle(path: str | Path, bundle: str | Path, *, what: str = "output") -> None:
    """`path` is not in the model `bundle` folder a command reads: a file written there would replace the
    bundle's own files, or be taken for one of them."""
    resolved, folder = Path(os.path.realpath(path)), Path(os.path.realpath(bundle))
    if resolved == folder or folder in resolved.parents:
        raise PathError(f"{what} {path} is inside the model bundle {bundle}; write it elsewhere")


def _same_file(a: Path, b: Path) -> bool:
    """The same file on disk (through links and different spellings), or the same path when neither exists."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)
