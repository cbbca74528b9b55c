"""textpipe: text classification on raw strings with TensorFlow/Keras."""

__version__ = "0.1.0"

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
]


def __getattr__(name):
    # Importing TensorFlow takes seconds; load it only when a function that needs it is used.
    from textpipe import bundle, config, data, evaluation, training

    exports = {
        "Bundle": bundle.Bundle,
        "load_bundle": bundle.load_bundle,
        "save_bundle": bundle.save_bundle,
        "Config": config.Config,
        "load_config": config.load_config,
        "load_labeled_data": data.load_labeled_data,
        "load_training_data": data.load_training_data,
        "load_split": data.load_split,
        "train": training.train,
        "evaluate": evaluation.evaluate,
    }
    if name in exports:
        return exports[name]
    raise AttributeError(f"module 'textpipe' has no attribute {name!r}")
