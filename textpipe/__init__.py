"""textpipe: text classification on raw strings with TensorFlow/Keras."""

import importlib

__version__ = "0.3.0"

from textpipe.errors import BundleError, ConfigError, DataError, TextpipeError  # noqa: E402

__all__ = [
    "__version__",
    "BundleError",
    "ConfigError",
    "DataError",
    "TextpipeError",
    "Bundle",
    "Config",
    "load_config",
    "load_labeled_data",
    "load_training_data",
    "load_split",
    "load_bundle",
    "save_bundle",
    "train",
    "evaluate",
    "export_saved_model",
]


# Where each lazily exported name lives.
_EXPORTS = {
    "Bundle": "bundle",
    "load_bundle": "bundle",
    "save_bundle": "bundle",
    "Config": "config",
    "load_config": "config",
    "load_labeled_data": "data",
    "load_training_data": "data",
    "load_split": "data",
    "train": "training",
    "evaluate": "evaluation",
    "export_saved_model": "export",
}


def __getattr__(name):
    # Importing TensorFlow takes seconds; load it only when a function that needs it is used.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"textpipe.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'textpipe' has no attribute {name!r}")
