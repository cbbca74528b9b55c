"""Write files and folders so that they appear complete or not at all.

Everything is first written beside its target (same filesystem) and then renamed into place; a crash or
Ctrl-C leaves the target as it was, and a folder is swapped in one step where the OS allows it. Temporary files
get the permissions a plain `open` would give them (mkstemp/mkdtemp would make them private to their owner).

Temporary names carry the writer's host and process id (`.NAME.tmp-HOST-PID-*`, a long NAME shortened): the
next writer of NAME deletes those a killed process left behind, and never one that a live writer is still
filling. A write that fails removes the folders it made for its target.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import hashlib
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Iterator, TextIO


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[TextIO]:
    """A UTF-8 text stream that becomes `path` when the block ends without an exception."""
    path = Path(path)
    with _parents_made_for(path):
        _clean_leftovers(path)
        fd, temporary = tempfile.mkstemp(prefix=_prefix(path, "tmp"), dir=path.parent)
        try:
            os.chmod(temporary, 0o666 & ~_umask())
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """An empty folder to fill; it replaces `path` (and whatever folder was there) when the block ends."""
    path = Path(path)
    with _parents_made_for(path):
        _recover(path)
        _clean_leftovers(path)
        staging = Path(tempfile.mkdtemp(prefix=_prefix(path, "tmp"), dir=path.parent))
        try:
            os.chmod(staging, 0o777 & ~_umask())
            yield staging
            _replace_dir(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


@contextlib.contextmanager
def _parents_made_for(path: Path) -> Iterator[None]:
    """Make the missing folders above `path`; remove them again (when empty) if the block fails."""
    missing = []
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for folder in missing:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _prefix(target: Path, kind: str) -> str:
    return f".{_label(target)}.{kind}-{socket.gethostname()}-{os.getpid()}-"


# Bytes of the target's name that a temporary name repeats: with the host (up to 64 bytes), the pid and the
# random part, a temporary name stays within the 255 bytes most filesystems allow, whatever the target's name.
_LABEL_BYTES = 150


def _label(target: Path) -> str:
    """The target's name, or for a long one its start and a digest of the whole name."""
    name = target.name
    if len(os.fsencode(name)) <= _LABEL_BYTES:
        return name
    digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:12]
    start = name
    while len(os.fsencode(start)) > _LABEL_BYTES - len(digest) - 1:
        start = start[:-1]
    return f"{start}~{digest}"


def _clean_leftovers(target: Path) -> None:
    """Delete the temporary files and folders of `target` that writers on this host left when killed."""
    host = socket.gethostname()
    label = _label(target)
    for kind in ("tmp", "old"):
        for leftover in target.parent.glob(f".{glob.escape(label)}.{kind}-*"):
            owner = leftover.name[len(f".{label}.{kind}-"):].rsplit("-", 2)
            if len(owner) == 3 and owner[0] == host and owner[1].isdigit() and not _alive(int(owner[1])):
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        leftover.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _replace_dir(new: Path, target: Path) -> None:
    """Move the complete folder `new` to `target`, so that `target` holds a complete folder at every instant.

    Where the OS can swap two paths in one step (Linux), it does; the old folder, now at `new`, is deleted.
    Elsewhere the old folder is moved aside, then the new one in: a kill between the two leaves the old one
    at `.NAME.old-*/NAME`, and the next writer puts it back first (see `_recover`).
    """
    if not target.exists():
        os.replace(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)
        return
    old = Path(tempfile.mkdtemp(prefix=_prefix(target, "old"), dir=target.parent))
    os.replace(target, old / target.name)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old / target.name, target)  # put the old folder back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _recover(target: Path) -> None:
    """Put back a folder that a killed `_replace_dir` left aside, when nothing took its place."""
    if os.path.lexists(target):
        return
    for aside in sorted(target.parent.glob(f".{glob.escape(_label(target))}.old-*/{glob.escape(target.name)}"),
                        key=os.path.getmtime, reverse=True):
        os.replace(aside, target)  # the newest one left aside, if several
        return


# renameat2(2) arguments: paths relative to the working directory, and "swap the two".
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step; False where the OS or the filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)  # glibc 2.28 and later
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # no such call, or not on this filesystem
        return False
    raise OSError(error, os.strerror(error), str(a), str(b))


def _umask() -> int:
    # There is no way to read the umask without setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
