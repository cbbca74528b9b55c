"""A trained model as one folder: a Keras model that takes raw strings, plus its settings and results.

    BUNDLE/
      model.keras    vectorizer + classifier: a batch of tf.string in, class probabilities out
      bundle.json    format version, config, class names, vocabulary size, training history, metrics

Bundles are written to a temporary folder beside the target and renamed into place, so an interrupted
save never leaves a half-written bundle where a complete one is expected.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from textpipe import __version__
from textpipe.atomic import atomic_dir
# Re-exported: the file names and folder checks live where the command line can use them without TensorFlow.
from textpipe.bundle_files import META_FILE, MODEL_FILE, check_bundle_folder, check_bundle_target  # noqa: F401
from textpipe.config import Config
from textpipe.embeddings import PADDING, UNKNOWN, cosine_similarity, nearest_neighbors
from textpipe.errors import BundleError, ConfigError, DataError, one_line
from textpipe.models import uncompiled_copy
from textpipe.presets import words
# Imported for their registration with Keras, which lets load_model find the layers and metric a model names.
import textpipe.layers  # noqa: F401
import textpipe.metrics  # noqa: F401

FORMAT = "textpipe-bundle"
# 2: each batch is cut to its longest text and the conv1d model averages over real tokens only (textpipe
# 0.2). 3: long texts are read in windows, and the lstm never hands cuDNN an empty row (layers textpipe 0.2
# cannot load; with --ngrams, the classifier also holds the n-gram model and the mix). 4: a long text's
# windows are combined by their mean log-odds, each window counting once, not by their probabilities weighted
# by tokens (a layer setting textpipe before it cannot load). 5: the vectorizer's standardization handles
# Unicode (layers.standardize; a function textpipe before it cannot load). Bundles of formats 1-4 load and
# predict as they did, and a warm start from one keeps its standardization.
FORMAT_VERSION = 5
PREDICT_BATCH = 256


@dataclasses.dataclass
class Bundle:
    model: keras.Model  # raw strings (batch,) -> probabilities (batch, 1) for two classes, else (batch, n)
    config: Config
    class_names: tuple[str, ...]
    vocabulary_size: int
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    word_vectors: dict[str, Any] = dataclasses.field(default_factory=dict)  # where the word vectors came from
    # The epoch whose weights the model holds: {"epoch", "last_epoch", "selected_by", "score", "stopped_early"}.
    kept_epoch: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Integer-labelled training data: the label id (as text) of each class, in class order (see data.py).
    label_ids: tuple[str, ...] | None = None
    # With config.ngrams: the n-gram model's epoch kept, the weight on the network's probabilities, and the
    # validation macro F1 of the network, the n-gram model and the two mixed.
    ngrams: dict[str, Any] = dataclasses.field(default_factory=dict)
    # False on the non-chief workers of a multi-worker run, whose copy save_bundle does not keep. Not saved.
    is_chief: bool = True
    format_version: int = FORMAT_VERSION  # of the bundle this was loaded from
    _infer: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)

    @property
    def vectorizer(self) -> keras.layers.TextVectorization:
        return self.model.get_layer("vectorizer")

    @property
    def classifier(self) -> keras.Model:
        return self.model.layers[-1]  # end_to_end puts the classifier last

    @property
    def network(self) -> keras.Model:
        """The lstm or conv1d model: the classifier itself, or its part beside the n-gram model (config.ngrams)."""
        names = {layer.name for layer in self.classifier.layers}
        return self.classifier.get_layer("network") if "network" in names else self.classifier

    def word_vector_table(self) -> np.ndarray:
        """The (vocabulary, dim) vectors the model reads words through: the conv1d model's
        word-vector table, or the lstm model's trained embedding."""
        if self.config.model == "conv1d":
            # Inside the classifier since format 2; in front of it, in the end-to-end model, before.
            owner = self.network if "word_vectors" in {l.name for l in self.network.layers} else self.model
            layer = owner.get_layer("word_vectors")
        else:
            layer = next(l for l in self.network.layers if isinstance(l, keras.layers.Embedding))
        return keras.ops.convert_to_numpy(layer.embeddings)[: self.vocabulary_size]

    def neighbors(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The k vocabulary words whose vectors are closest to `word`'s (cosine), closest first."""
        vocabulary = self.vectorizer.get_vocabulary()
        return nearest_neighbors(self.word_vector_table(), vocabulary, self._as_word(word, vocabulary), k)

    def similarity(self, word_a: str, word_b: str) -> float:
        """Cosine similarity of two words' vectors (each word read as the model's vectorizer reads it)."""
        vocabulary = self.vectorizer.get_vocabulary()
        word_a, word_b = self._as_word(word_a, vocabulary), self._as_word(word_b, vocabulary)
        return cosine_similarity(self.word_vector_table(), vocabulary, word_a, word_b)

    def _as_word(self, word: str, vocabulary: Sequence[str]) -> str:
        """The vocabulary word `word` is read as by this bundle's own vectorizer ("Good!" -> "good"; a bundle
        of format 4 or earlier keeps Keras' built-in standardization), when it reads as one known word; else
        `word` lower-cased and stripped of punctuation, when that leaves one word, for the error to name."""
        ids = keras.ops.convert_to_numpy(self.vectorizer(np.array([word])))[0]
        ids = ids[ids != PADDING]
        if len(ids) == 1 and ids[0] != UNKNOWN:
            return vocabulary[ids[0]]
        standard = words(word)
        return standard[0] if len(standard) == 1 else word.lower()

    def predict_proba(self, texts: Sequence[str], batch_size: int = PREDICT_BATCH) -> np.ndarray:
        """Probability of every class, shape (len(texts), n_classes), columns in `class_names` order.

        Texts are batched by length, so short texts cost little; the result is in the order given.
        """
        texts = as_text_array(texts)
        return predict_by_length(self.infer, texts, batch_size, len(self.class_names))

    @property
    def infer(self) -> Callable[[Any], Any]:
        """The model as one traced graph for every batch size and text length, without the per-call overhead
        of Keras' predict(): a batch of texts (tf.string tensor or object array of str) -> model outputs."""
        if self._infer is None:
            model = self.model
            self._infer = tf.function(
                lambda texts: model(texts, training=False), input_signature=[tf.TensorSpec((None,), tf.string)]
            )
        return self._infer

    def predict(self, texts: Sequence[str], batch_size: int = PREDICT_BATCH) -> list[str]:
        """The most probable class name for each text."""
        ids = self.predict_proba(texts, batch_size).argmax(axis=1)
        return [self.class_names[i] for i in ids]

    def explain(self, texts: Sequence[str]) -> list[Any]:
        """For each text, the predicted class and each word's contribution to it (see textpipe.explain)."""
        from textpipe.explain import explain  # explain.py imports this module

        return explain(self, texts)


def end_to_end(vectorizer: keras.layers.TextVectorization, classifier: keras.Model) -> keras.Model:
    """Put the adapted vectorizer in front of the classifier: the one model that is saved and served.

    The vectorizer passes every token on (or, with long_texts "truncate", the first sequence_length); the
    classifier reads them in windows, each batch of windows cut to its longest, so serving costs what the
    texts' real tokens need.
    """
    texts = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(texts, classifier(vectorizer(texts)), name="textpipe")


def predict_by_length(
    infer: Callable[[Any], Any], texts: np.ndarray, batch_size: int, n_classes: int
) -> np.ndarray:
    """Class probabilities of `texts` (an object array of str or bytes), in their order, computed in batches
    of texts of similar length (sorted by characters): each batch is only as wide as its longest text.

    A batch holds at most `batch_size` texts and, for long texts, fewer: at most PREDICT_CHARS characters'
    worth of its longest text per call, so that a file of long documents (each read in many windows) needs no
    more memory than one of sentences.
    """
    probabilities = np.zeros((len(texts), n_classes), dtype=np.float32)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    order = np.argsort(lengths, kind="stable")
    for rows in _length_batches(order, lengths[order], batch_size):
        probabilities[rows] = to_class_probabilities(infer(texts[rows]).numpy())
    return probabilities


# Characters per model call when texts are long (about 60,000 words): a batch of windows of a few MB.
PREDICT_CHARS = 400_000


def _length_batches(order: np.ndarray, sorted_lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    start = 0
    while start < len(order):
        # Sorted by length, a batch [start, end) is as wide as its last text: fit as many as the budget allows.
        fits = PREDICT_CHARS // np.maximum(sorted_lengths[start : start + batch_size], 1)
        count = max(1, int(np.count_nonzero(np.arange(1, len(fits) + 1) <= fits)))  # fits only shrinks
        yield order[start : start + count]
        start += count


def to_class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """A sigmoid head gives P(class 1) only; spell out both columns so every caller sees (n, n_classes)."""
    outputs = np.asarray(outputs, dtype=np.float32)
    if outputs.shape[-1] == 1:
        return np.concatenate([1.0 - outputs, outputs], axis=-1)
    return outputs


def as_text_array(texts: Sequence[str]) -> np.ndarray:
    if isinstance(texts, (str, bytes)):
        raise DataError("expected a list of texts, got a single string; wrap it in a list")
    array = np.asarray(list(texts), dtype=object)
    bad = next((i for i, t in enumerate(array) if not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(f"text {bad} is {type(array[bad]).__name__} {array[bad]!r}, not a string")
    return array


def save_bundle(bundle: Bundle, path: str | Path) -> Path:
    """Write `bundle` to the folder `path` atomically, replacing an earlier bundle there.

    On a non-chief worker of a multi-worker run the bundle is written to a temporary folder that is then
    deleted, and `path` is left to the chief: every worker saves, as TensorFlow's multi-worker guide asks,
    but only one copy is kept.
    """
    path = Path(path)
    model = _prediction_model(bundle)
    if not bundle.is_chief:
        with tempfile.TemporaryDirectory(prefix="textpipe-worker-") as scratch:
            model.save(Path(scratch) / MODEL_FILE)
        return path
    check_bundle_target(path)
    with atomic_dir(path) as staging:
        model.save(staging / MODEL_FILE)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "textpipe_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "config": bundle.config.to_dict(),
            "class_names": list(bundle.class_names),
            "vocabulary_size": bundle.vocabulary_size,
            "history": bundle.history,
            "metrics": bundle.metrics,
            "word_vectors": bundle.word_vectors,
            "kept_epoch": bundle.kept_epoch,
            "ngrams": bundle.ngrams,
            "label_ids": list(bundle.label_ids) if bundle.label_ids is not None else None,
            "model_sha256": _sha256(staging / MODEL_FILE),
        }
        _write_json(staging / META_FILE, meta)
    return path


def _prediction_model(bundle: Bundle) -> keras.Model:
    """The model to save: the end-to-end model with an uncompiled copy of the trained classifier, same weights.

    A compiled model is saved with its optimizer's state, one value per weight for RMSprop (two for Adam): the
    file would be twice the size, and nothing reads it (a bundle predicts; training and warm starts build a
    fresh optimizer).
    """
    classifier = bundle.classifier
    if getattr(classifier, "optimizer", None) is None or len(bundle.model.layers) != 3:
        return bundle.model  # uncompiled already, or an earlier format's model (not text -> vectorizer -> classifier)
    return end_to_end(bundle.vectorizer, uncompiled_copy(classifier))


def load_bundle(path: str | Path) -> Bundle:
    """Reload a bundle written by `save_bundle`; its predictions are identical to the saved model's."""
    # Follow a link once, up front: if it is switched to another version mid-load (retraining promotes by
    # swapping a link), both files still come from the same version.
    path = Path(path).resolve()
    check_bundle_folder(path)
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:  # removed since the check
        raise BundleError(f"{path} is not a textpipe bundle: {META_FILE} is missing") from None
    except OSError as e:
        raise BundleError(f"cannot read {path / META_FILE}: {one_line(e)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{path / META_FILE} is corrupt: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{path / META_FILE} does not describe a textpipe bundle")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BundleError(
            f"{path} has bundle format {version!r}; this textpipe reads up to {FORMAT_VERSION}: upgrade textpipe"
        )
    try:
        config = Config.from_dict(_with_earlier_defaults(meta["config"]), origin=str(path / META_FILE))
        class_names = _checked_class_names(meta["class_names"], path / META_FILE)
        vocabulary_size = int(meta["vocabulary_size"])
        label_ids = _checked_label_ids(meta.get("label_ids"), class_names)
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise BundleError(f"{path / META_FILE} is corrupt: {e}") from None
    model_path = path / MODEL_FILE
    if not model_path.is_file():
        raise BundleError(f"{path} is incomplete: {MODEL_FILE} is missing")
    if not zipfile.is_zipfile(model_path):  # Keras would call an empty or cut-off file "not found"
        raise BundleError(f"{model_path} is empty or truncated (not a complete .keras file); restore it or retrain")
    # bundle.json's class names and settings hold only for the model saved with them: a model.keras copied in
    # from another bundle of the same shapes would load, and predict under the wrong names.
    saved_digest = meta.get("model_sha256")  # absent from bundles of earlier versions
    if saved_digest is not None and saved_digest != _sha256(model_path):
        raise BundleError(
            f"{model_path} is not the model saved with {META_FILE} (its SHA-256 differs): the two files come from "
            "different bundles, or the model was changed since; restore the bundle's own model.keras or retrain"
        )
    try:
        with warnings.catch_warnings():
            # Bundles written before save_bundle left it out hold the classifier's optimizer state, never
            # used. One trained under mixed precision holds a loss-scaling optimizer with more variables than
            # the plain one Keras rebuilds here, and Keras would warn on every load that it skipped them.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model = keras.models.load_model(model_path)
    except Exception as e:  # zip, h5 and deserialization errors come in many types
        raise BundleError(f"{model_path} could not be loaded (corrupt?): {one_line(e, 200)}") from None
    _check_model_agrees(model, class_names, vocabulary_size, path)
    return Bundle(
        model, config, class_names, vocabulary_size, meta.get("history", {}), meta.get("metrics", {}),
        meta.get("word_vectors", {}), meta.get("kept_epoch", {}), label_ids, meta.get("ngrams", {}),
        format_version=version,
    )


def _checked_label_ids(value: Any, class_names: tuple[str, ...]) -> tuple[str, ...] | None:
    if value is None:  # string labels, or a bundle from before label ids were kept
        return None
    if not isinstance(value, list) or len(value) != len(class_names) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"label_ids {value!r} do not give one id for each of the {len(class_names)} classes")
    return tuple(value)


def _checked_class_names(value: Any, meta_path: Path) -> tuple[str, ...]:
    """bundle.json's class names, which every prediction is read through: a list of distinct non-empty
    strings. (A string or an empty list would otherwise load, and fail or mislabel only when predicting.)"""
    if not isinstance(value, list) or not value:
        raise BundleError(f"{meta_path} names no classes (class_names is {value!r}); restore it or retrain")
    bad = next((n for n in value if not isinstance(n, str) or not n.strip()), None)
    if bad is not None:
        raise BundleError(f"{meta_path} has class name {bad!r}; class names must be non-empty strings")
    twice = next((n for i, n in enumerate(value) if n in value[:i]), None)
    if twice is not None:
        raise BundleError(f"{meta_path} names class {twice!r} twice; each class must be named once")
    return tuple(value)


def _check_model_agrees(model: keras.Model, class_names: tuple[str, ...], vocabulary_size: int, path: Path) -> None:
    """Refuse a bundle whose bundle.json does not describe its model.keras (files mixed from two bundles, or
    one edited by hand): too many names would mislabel predictions without an error, too few fail mid-way."""
    width = model.outputs[0].shape[-1]
    # A two-class model has one sigmoid unit, P(class 1); more classes have one softmax unit each.
    n_classes, head = (2, "1 sigmoid output (2 classes)") if width == 1 else (width, f"{width} outputs")
    mismatch = "; the two files do not belong together: restore the bundle or retrain"
    if len(class_names) != n_classes:
        raise BundleError(
            f"{path / META_FILE} names {len(class_names)} classes but {path / MODEL_FILE} has {head}{mismatch}"
        )
    try:
        vectorizer = model.get_layer("vectorizer")
    except ValueError:
        raise BundleError(f"{path / MODEL_FILE} has no vectorizer layer; it was not saved by textpipe") from None
    if vectorizer.vocabulary_size() != vocabulary_size:
        raise BundleError(
            f"{path / META_FILE} gives vocabulary_size {vocabulary_size} but the vectorizer in {path / MODEL_FILE} "
            f"holds {vectorizer.vocabulary_size()} entries{mismatch}"
        )


def _with_earlier_defaults(settings: Any) -> Any:
    """Settings saved by earlier versions, which lack the ones added since, with the values those versions
    trained with: every epoch run, the last kept unless early stopping on validation loss restored another,
    frozen word vectors, the most frequent words, the lstm's last output, no n-gram model, weights not averaged,
    no adversarial training."""
    if not isinstance(settings, dict):
        return settings
    earlier = {"keep_best_epoch": settings.get("patience") is not None, "fine_tune_word_vectors": False,
               "long_texts": "truncate", "vocabulary": "frequent", "lstm_pooling": "last", "ngrams": False,
               "average_weights": False, "adversarial": 0.0}
    return {**earlier, **settings}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, value: Any) -> None:
    with path.open("w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, default=_json_default)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
