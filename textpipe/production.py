"""A production bundle path and what lives beside it: its versions, the link that picks one, and its lock.

    P              a symlink to P.versions/NNNN-<UTC time>, swapped by os.replace (atomic)
    P.versions/    promoted bundles and reports/
    P.lock         pid, host and start time of the process holding P
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import secrets
import shutil
import socket
from pathlib import Path
from typing import Iterator

VERSION = re.compile(r"^(\d{4,})-\d{8}T\d{6}Z$")


class ProductionLocked(RuntimeError):
    """Another retrain of the same production path is running: not bad input, so exit status 1."""


def versions_dir(production: Path) -> Path:
    return production.with_name(production.name + ".versions")


def default_report_path(production: Path, run_id: str) -> Path:
    return versions_dir(production) / "reports" / f"{run_id}.json"


def list_versions(production: Path) -> list[Path]:
    """Promoted bundles, oldest first."""
    folder = versions_dir(production)
    found = [p for p in folder.iterdir() if VERSION.match(p.name) and p.is_dir()] if folder.is_dir() else []
    return sorted(found, key=version_sequence)


def current_version(production: Path) -> str | None:
    """The version production links to; None for no production, a plain folder or a link elsewhere."""
    if not production.is_symlink():
        return None
    target = production.parent / os.readlink(production)
    inside = target.parent.resolve() == versions_dir(production).resolve() and VERSION.match(target.name)
    return target.name if inside else None


def prune_versions(production: Path, keep: int) -> list[str]:
    """Delete all but the current version and the newest `keep` others; returns the deleted names."""
    others = [v for v in list_versions(production) if v.name != current_version(production)]
    doomed = others[: max(0, len(others) - keep)]
    for version in doomed:  # renamed first, so a half-deleted folder never looks like a version
        trash = version.with_name(f".trash-{version.name}")
        os.replace(version, trash)
        shutil.rmtree(trash, ignore_errors=True)
    return [v.name for v in doomed]


def version_sequence(version: Path) -> int:
    return int(VERSION.match(version.name).group(1))


def next_version_name(production: Path, step: int = 1) -> str:
    return f"{max(map(version_sequence, list_versions(production)), default=0) + step:04d}-{_stamp()}"


def point_production_to(production: Path, version: Path, adopt_as: str) -> None:
    """Make production a symlink to `version` in one rename; a plain folder there becomes version `adopt_as`."""
    if production.is_dir() and not production.is_symlink():
        if any(production.iterdir()):
            os.replace(production, versions_dir(production) / adopt_as)
        else:
            production.rmdir()
    link = production.with_name(f".{production.name}.link-{secrets.token_hex(4)}")
    os.symlink(os.path.relpath(version, production.parent), link)
    try:
        os.replace(link, production)
    except BaseException:
        link.unlink()
        raise


def _stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    return f"{_stamp()}-{secrets.token_hex(3)}"


# ---- the lock ----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def production_lock(production: Path) -> Iterator[dict | None]:
    """Hold `<production>.lock` for the block; yields the stale lock it took over, if any."""
    path = production.with_name(production.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    host, token = socket.gethostname(), secrets.token_hex(8)
    mine = json.dumps({"pid": os.getpid(), "host": host, "started": utc_now(), "token": token}).encode()
    taken_over = None
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):  # vanished: released meanwhile, try again
                raw = path.read_bytes()
                holder = _parse_lock(raw)
                if not _is_stale(holder, host):
                    raise ProductionLocked(_describe_holder(path, holder)) from None
                # Moved aside, then checked: if a new holder replaced the stale lock meanwhile, put it back.
                aside = path.with_name(f"{path.name}.stale-{token}")
                os.replace(path, aside)
                moved = aside.read_bytes()
                if moved != raw:
                    with contextlib.suppress(FileExistsError):
                        os.link(aside, path)
                aside.unlink()
                if moved != raw:
                    raise ProductionLocked(_describe_holder(path, _parse_lock(moved))) from None
                taken_over = holder
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(mine)
            f.flush()
            os.fsync(f.fileno())
        break
    else:
        raise ProductionLocked(f"could not take {path}: other runs keep taking it; try again")
    try:
        yield taken_over
    finally:
        with contextlib.suppress(FileNotFoundError):
            if path.read_bytes() == mine:
                path.unlink()


def _parse_lock(raw: bytes) -> dict:
    try:
        holder = json.loads(raw)
    except ValueError:  # includes JSON and Unicode decoding errors
        return {}
    return holder if isinstance(holder, dict) else {}


def _is_stale(holder: dict, host: str) -> bool:
    pid = holder.get("pid")
    if holder.get("host") != host or not isinstance(pid, int) or pid <= 0:
        return False  # another host's pid, or an unreadable lock: we cannot tell, so it counts as held
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by another user
    return False


def _describe_holder(path: Path, holder: dict) -> str:
    if not holder:
        return f"{path} exists but does not say who holds it; if no retrain is running, delete it"
    return (f"another retrain holds {path} (pid {holder.get('pid')} on {holder.get('host')}, since "
            f"{holder.get('started')}); wait for it, or delete the lock if that run is gone")


