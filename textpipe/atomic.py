"""Write files and folders so that they appear complete or not at all.

Everything is first written beside its target (same filesystem) and then renamed into place; a crash or
Ctrl-C leaves the target as it was. Temporary files get the permissions a plain `open` would give them
(mkstemp/mkdtemp would make them private to their owner).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, TextIO


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[TextIO]:
    """A UTF-8 text stream that becomes `path` when the block ends without an exception."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())
        yield staging
        _replace_dir(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace_dir(new: Path, target: Path) -> None:
    """Move the complete folder `new` to `target`; an old folder there is moved aside, then deleted."""
    if not target.exists():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, old / target.name)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old / target.name, target)  # put the old folder back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    # There is no way to read the umask without setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
