"""Keep the terminal to textpipe's own lines: TensorFlow, absl, CUDA and `datasets` logs stay hidden.

Only the command line uses this, around the command it runs (`textpipe --verbose` does without it); the library
never configures logging. Each library is quieted through its own switch, and a switch the user has set is left
as it is: `TF_CPP_MIN_LOG_LEVEL=0 textpipe ...` shows TensorFlow's logs, `DATASETS_VERBOSITY=info` those of
`datasets`. Errors are not hidden: they reach the user as exceptions, which the command line prints as one line.
Keras' progress bar for `fit` and textpipe's tqdm bars are textpipe's own output and stay.

Apache Beam (`score --runner`) is quieted with TensorFlow: its loggers below ERROR, the warnings its modules
send straight to the root logger, and, on the DirectRunner, its worker processes (see beam.worker_log_args), which
import TensorFlow silently when they load textpipe (see imported_silently_in_workers).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import logging
import os
import sys
from typing import Iterator

# Variables each library reads when it is imported (TensorFlow's C++ code: when it first logs), so they are set
# before any of them is. Only logging: TF_ENABLE_ONEDNN_OPTS, which changes the numbers, is never touched.
TENSORFLOW_ENVIRONMENT = {
    # C++ logs of level below FATAL: the CPU-instruction and oneDNN notices, and "failed call to cuInit" (an
    # error log, but not an error: TensorFlow goes on without a GPU) at the first operation on a machine
    # without one. Real errors still raise exceptions.
    "TF_CPP_MIN_LOG_LEVEL": "3",
}
# Python loggers TensorFlow and Keras log to below ERROR ("5 out of the last 5 calls to <function> triggered
# tf.function retracing", "Assets written to...").
TENSORFLOW_LOGGERS = ("tensorflow", "absl")
# Beam logs to these below ERROR ("Discarding unparseable args", its DirectRunner's worker messages).
BEAM_LOGGERS = ("apache_beam",)
# Set for the processes the command starts (Beam's DirectRunner workers) while TensorFlow's logs are hidden.
QUIET_WORKERS = "TEXTPIPE_QUIET_WORKERS"
DATASETS_ENVIRONMENT = {
    "DATASETS_VERBOSITY": "error",  # "Using the latest cached version of the dataset...", "Repo card metadata..."
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # "Generating train split", "Map" (not the Hub's download bars)
}


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Hide the chatter of TensorFlow and `datasets` inside the block; everything is put back after it."""
    with contextlib.ExitStack() as stack:
        if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:  # else the user asked for TensorFlow's logs
            stack.enter_context(_environment(TENSORFLOW_ENVIRONMENT))
            for name in TENSORFLOW_LOGGERS:
                stack.enter_context(_logger_level(name, logging.ERROR))
            stack.enter_context(_tensorflow_imported_silently())
            for name in BEAM_LOGGERS:
                stack.enter_context(_logger_level(name, logging.ERROR))
            stack.enter_context(_root_filter(_BeamWarnings()))
            stack.enter_context(_environment({QUIET_WORKERS: "1"}))
        if "DATASETS_VERBOSITY" not in os.environ:
            # The logger too: `datasets` may have been imported already (by a caller of cli.main).
            stack.enter_context(_logger_level("datasets", logging.ERROR))
        stack.enter_context(_environment(DATASETS_ENVIRONMENT))
        yield


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """`variables` in os.environ, each only where the user has not set it."""
    added = [name for name in variables if name not in os.environ]
    os.environ.update({name: variables[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def quiet_workers() -> bool:
    """Whether the processes this one starts (Beam's DirectRunner workers) are to keep to errors: inside
    quiet_libraries, while TensorFlow's logs are hidden."""
    return os.environ.get(QUIET_WORKERS) == "1"


@contextlib.contextmanager
def imported_silently_in_workers() -> Iterator[None]:
    """In a process a quiet command started (QUIET_WORKERS set), TensorFlow imported inside the block is imported
    with standard error muted, as the command itself imports it; elsewhere, nothing changes."""
    if not quiet_workers():
        yield
        return
    with _tensorflow_imported_silently():
        yield


class _BeamWarnings(logging.Filter):
    """Records below ERROR that Beam's modules log on the root logger itself ("apitools not found...",
    "Resource module is not available...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "apache_beam" not in record.pathname.split(os.sep)


@contextlib.contextmanager
def _root_filter(log_filter: logging.Filter) -> Iterator[None]:
    root = logging.getLogger()
    root.addFilter(log_filter)
    try:
        yield
    finally:
        root.removeFilter(log_filter)


@contextlib.contextmanager
def _logger_level(name: str, level: int) -> Iterator[None]:
    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(max(level, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(saved)


@contextlib.contextmanager
def _tensorflow_imported_silently() -> Iterator[None]:
    """Whatever imports TensorFlow inside the block (textpipe, Keras, a config check) does so with file
    descriptor 2 pointed at the null device: the C++ libraries TensorFlow loads log while loading ("WARNING: All
    log messages before absl::InitializeLog() is called...", "Could not find cuda drivers..."), ignoring
    TF_CPP_MIN_LOG_LEVEL and before Python could stop them. Nothing written then is shown; an import that fails
    raises as usual, after standard error is back."""
    if "tensorflow" in sys.modules or any(isinstance(f, _SilentImportFinder) for f in sys.meta_path):
        yield  # imported already, or silently by an enclosing block
        return
    finder = _SilentImportFinder("tensorflow")
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(finder)


class _SilentImportFinder(importlib.abc.MetaPathFinder):
    """Finds the top-level module `name` as the other finders do, and has it executed with standard error muted."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _SilentLoader(spec.loader)
                return spec
        return None


class _SilentLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        # The module sees its real loader (importlib.resources and friends ask it for files).
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with _stderr_muted():
            self.loader.exec_module(module)


@contextlib.contextmanager
def _stderr_muted() -> Iterator[None]:
    """File descriptor 2 (what C and C++ code write to) on the null device inside the block."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no standard error to mute
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            sys.stderr.flush()  # what Python buffered during the import goes where the import wrote
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
