"""A bundle folder's files, and the checks on them that need no TensorFlow.

The command line makes these checks before it imports TensorFlow (seconds), so that a mistyped bundle path, or
an output folder that is not a bundle, fails at once. `bundle.load_bundle` and `bundle.save_bundle` make the
same checks (with the same messages) and then read and write the files.
"""

from __future__ import annotations

from pathlib import Path

from textpipe.errors import BundleError

MODEL_FILE = "model.keras"
META_FILE = "bundle.json"
SAVED_MODEL_FILE = "saved_model.pb"  # of an exported model (export.py)


def check_bundle_folder(path: str | Path) -> None:
    """`path` is a folder holding a bundle.json: something `load_bundle` can try to load."""
    path = Path(path).resolve()
    if not path.exists():
        raise BundleError(f"no model bundle at {path}")
    if not path.is_dir():
        raise BundleError(f"{path} is a file; a model bundle is a folder holding {MODEL_FILE} and {META_FILE}")
    if not (path / META_FILE).exists():
        raise BundleError(f"{path} is not a textpipe bundle: {META_FILE} is missing")


def check_bundle_target(path: str | Path) -> None:
    """Refuse, before any work, to write a bundle over something that is not one (an empty folder is fine)."""
    path = Path(path)
    if path.is_file() or (path.is_dir() and any(path.iterdir()) and not (path / META_FILE).is_file()):
        raise BundleError(f"{path} exists and is not a textpipe bundle; refusing to overwrite it")


def check_export_target(path: str | Path) -> None:
    """Refuse, before any work, to write an exported model over something that is not one (an empty folder is
    fine)."""
    path = Path(path)
    if path.is_file() or (path.is_dir() and any(path.iterdir()) and not (path / SAVED_MODEL_FILE).is_file()):
        raise BundleError(f"{path} exists and is not an exported model; refusing to overwrite it")
