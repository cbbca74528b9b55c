"""Fit a classifier on a LabeledData and return it as an (unsaved) Bundle with its validation metrics."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as _tf_config  # op determinism's state: not public

from textpipe.bundle import Bundle, end_to_end, to_class_probabilities
from textpipe.config import Config
from textpipe.data import LabeledData
from textpipe.embeddings import read_word_vectors, train_word_vectors
from textpipe.errors import ConfigError
from textpipe.evaluation import classification_metrics, evaluate
from textpipe.layers import MixProbabilities
from textpipe.models import (
    AVERAGE_STEPS, AdversarialClassifier, build_model, build_ngrams, inference_model, mixed_classifier,
)
from textpipe.paths import check_training_paths
from textpipe.presets import resolve_auto
from textpipe.progress import SILENT, Progress
from textpipe.unlabeled import load_unlabeled_texts
from textpipe.preprocess import adapt_vectorizer, build_vectorizer, make_dataset, vectorize, vectorizer_length


@contextlib.contextmanager
def deterministic_ops():
    """On CPU, TensorFlow's deterministic kernels for the duration: without them the conv1d model's convolution
    gradients (summed by several threads in varying order) now and then gave another model for the same seed.
    Not on GPUs, where some ops have no deterministic kernel and would fail. The setting is process-wide, so it
    is put back as found afterwards. (Physical devices are listed without starting TensorFlow's runtime, which
    a multi-worker strategy must be created before.)"""
    if tf.config.list_physical_devices("GPU") or _tf_config.is_op_determinism_enabled():
        yield
        return
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        _tf_config.disable_op_determinism()


def _with_absolute_dataset(config: Config) -> Config:
    """`config` with a local dataset named by its absolute path: the bundle records it, and `evaluate` or
    `report` without --dataset must read the same files from whatever folder they run in."""
    if config.dataset is None or not os.path.exists(os.path.expanduser(config.dataset)):
        return config  # the shipped sample, or a Hub id
    return dataclasses.replace(config, dataset=str(Path(config.dataset).expanduser().absolute()))


# Adversarial training on word vectors that start random (the lstm's Embedding, unless read from a file, learned
# from unlabeled text or warm-started) pushes nothing for this many epochs: pushing vectors that do not mean
# anything yet only holds learning back. On SST-2's sentences the lstm's first epoch ended near one class with
# the push (validation macro F1 35-60) and at 70-77 without it, and the defaults rose from 76.5 to 77.3 (5 seeds);
# every epoch run, the lstm ended 0.2-0.8 points higher on SST-2's sentences and 4,500 of its phrase rows and of
# emotion's tweets, but kept earlier epochs on the phrases (-0.9 there, level on emotion; docs/results.md).
PLAIN_EPOCHS = 1


@deterministic_ops()
def train(
    config: Config,
    data: LabeledData,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = 0,
    warm_start: Bundle | None = None,
    progress: Progress = SILENT,
) -> Bundle:
    """Adapt the vectorizer on train text, fit the model, and measure it on the validation split.

    `verbose` is passed to Keras' fit (0 silent, 1 progress bar, 2 one line per epoch). `progress` hears of
    the phases before it (vocabulary; the conv1d model's word vectors, and where they came from).
    `warm_start`: continue from that bundle's vocabulary and network weights (and word vectors) instead of a
    fresh start; raises ConfigError saying why when its classes or architecture differ from this run's. With
    config.ngrams the n-gram model is trained afresh: it takes seconds.
    """
    # Settings left to the data ("auto") are chosen here, from the training texts, and saved with the bundle.
    config = resolve_auto(config, data.train.texts, warm_start)
    if warm_start is not None:  # its words come with it
        config = dataclasses.replace(config, vocabulary=warm_start.config.vocabulary)
    config = _with_absolute_dataset(config)
    if config.model == "lstm" and config.uses_word_vectors:
        config = dataclasses.replace(config, embedding_dim=config.word_vector_dim)  # it starts from the table
    # Saving is the caller's: save_bundle checks its own folder.
    check_training_paths(config, output=False, word_vectors=warm_start is None)
    # First: a multi-worker strategy must exist before TensorFlow runs any op in this process.
    strategy = distribution_strategy(config.strategy)
    # Seeds Python, NumPy and TensorFlow: same seed, data and config give the same model on CPU.
    keras.utils.set_random_seed(config.seed)
    fit_callbacks = _callbacks(config, strategy) + list(callbacks)  # a missing TensorBoard fails before any work

    # Every worker of a multi-worker run adapts its own vectorizer on the same texts in the same order; adapt
    # is deterministic (ties in word counts included), so all replicas get the same vocabulary with no
    # broadcast from the chief.
    if warm_start is not None:
        # Continue with the starting model's vocabulary and the standardization that made it: its embedding
        # rows belong to those words. A fresh vocabulary learned from new data would reorder the ids and make
        # the old weights meaningless.
        check_warm_start(warm_start, config, data.class_names)
        standardization = warm_start.vectorizer.get_config()["standardize"]
        vectorizer = build_vectorizer(config.vocab_size, vectorizer_length(config), standardization)
        vectorizer.set_vocabulary(warm_start.vectorizer.get_vocabulary())
    else:
        vectorizer = build_vectorizer(config.vocab_size, vectorizer_length(config))
        labels = data.train.labels if config.vocabulary == "informative" else None
        adapt_vectorizer(vectorizer, data.train.texts, progress, labels=labels)
    table, vector_report = None, {}
    if warm_start is not None:
        # The word vectors come with the starting model: a --word-vectors file or --unlabeled text is not read.
        if config.model == "conv1d":
            table = warm_start.word_vector_table()
        if warm_start.word_vectors:
            vector_report = {**warm_start.word_vectors, "fine_tuned": config.trains_word_vectors}
    elif config.uses_word_vectors:
        table, vector_report = word_vector_table(config, vectorizer, data.train.texts, progress)
    if vector_report:
        progress.word_vectors(vector_report)

    global_batch = config.batch_size * strategy.num_replicas_in_sync

    def batches(split, shuffle):
        # Training reads every window of every text, each an example; validation reads texts whole, window by
        # window, as the saved model does, so the epoch kept is the best at what users will get.
        windows = config.sequence_length if shuffle else None
        ds = make_dataset(vectorizer, split, global_batch, shuffle=shuffle, seed=config.seed, windows=windows)
        # Across workers, shard by element: every worker builds the same (seeded) pipeline from the same
        # in-memory rows and keeps its own share of each batch. (The default, sharding by file, does not
        # apply to in-memory data and would only fall back to this after a warning.)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return ds.with_options(options)

    with strategy.scope():
        classifier = build_model(config, len(data.class_names), word_vectors=table)
        if warm_start is not None:
            # The trainable weights other than the word vectors, in order: the same list in every bundle
            # format. A conv1d model's word vectors, fine-tuned or frozen, came with `table` (format 1 kept
            # them outside the classifier).
            for variable, value in zip(_layer_weights(classifier), _layer_weights(warm_start.network)):
                variable.assign(value)
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            _fit_under_multiworker(classifier)
        train_batches = batches(data.train, shuffle=True)
        steps_per_epoch = int(train_batches.cardinality())
        plain_epochs = 0
        random_start = table is None and warm_start is None
        if isinstance(classifier, AdversarialClassifier) and random_start and steps_per_epoch > 0:
            plain_epochs = PLAIN_EPOCHS
            classifier.plain_steps = plain_epochs * steps_per_epoch
        if config.average_weights:
            average_over(classifier, min(AVERAGE_STEPS, steps_per_epoch))
        validation_batches = batches(data.validation, shuffle=False)
        progress.classifier(config, plain_epochs=plain_epochs)
        history = classifier.fit(
            train_batches,
            validation_data=validation_batches,
            epochs=config.epochs,
            callbacks=fit_callbacks,
            verbose=verbose,
            shuffle=False,  # the training batches are already shuffled by tf.data, with the seed
        )
        classifier = inference_model(classifier)  # the same layers and weights, without a training step of its own
        ngram_report = {}
        if config.ngrams:
            progress.ngrams(config.epochs)
            ngrams, ngram_report = fit_ngrams(
                classifier, config, data.class_names, train_batches, validation_batches, strategy, verbose
            )
    if config.ngrams:
        # Outside the strategy's scope: the saved classifier's weights are plain variables, not replicated ones.
        classifier = mixed_classifier(classifier, ngrams, ngram_report["network_weight"])
    bundle = Bundle(
        model=end_to_end(vectorizer, classifier),
        config=config,
        class_names=data.class_names,
        label_ids=data.label_ids,
        vocabulary_size=vectorizer.vocabulary_size(),
        history={k: [float(v) for v in values] for k, values in history.history.items()},
        word_vectors=vector_report,
        kept_epoch=kept_epoch(fit_callbacks, history),
        ngrams=ngram_report,
        is_chief=is_chief(strategy),
    )
    bundle.metrics = {"validation": evaluate(bundle, data.validation)}
    return bundle


# The weights on the network's probabilities that config.ngrams tries (the rest goes to the n-gram model's).
MIX_WEIGHTS = tuple(i / 10 for i in range(11))


def fit_ngrams(
    network: keras.Model,
    config: Config,
    class_names: Sequence[str],
    train_batches: tf.data.Dataset,
    validation_batches: tf.data.Dataset,
    strategy: tf.distribute.Strategy,
    verbose: int | str = 0,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train the n-gram model (models.build_ngrams) on the network's batches, with the same early stopping, and
    choose the MIX_WEIGHTS weight on the network's probabilities whose mix scores the best validation macro F1
    (ties go to the network). Returns the n-gram model and a report of the choice (Bundle.ngrams).

    Only the network's fit is backed up (config.backup_dir) and seen by the caller's callbacks: this one takes
    seconds to a minute, and a run interrupted during it starts again from the beginning.
    """
    ngrams = build_ngrams(config, len(class_names))
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _fit_under_multiworker(ngrams)
    callbacks = [best_epoch_callback(config)] if config.patience or config.keep_best_epoch else []
    history = ngrams.fit(
        train_batches, validation_data=validation_batches, epochs=config.epochs, callbacks=callbacks,
        verbose=verbose, shuffle=False,
    )
    outputs: dict[str, list[np.ndarray]] = {"network": [], "ngrams": [], "labels": []}
    for ids, labels in validation_batches:  # in the batches' (length-sorted) order, labels alongside
        outputs["network"].append(keras.ops.convert_to_numpy(network(ids, training=False)))
        outputs["ngrams"].append(keras.ops.convert_to_numpy(ngrams(ids, training=False)))
        outputs["labels"].append(labels.numpy())
    both, labels = [np.concatenate(outputs[k]) for k in ("network", "ngrams")], np.concatenate(outputs["labels"])

    def score(weight: float) -> float:
        mixed = keras.ops.convert_to_numpy(MixProbabilities(weight, dtype="float32")(both))
        return classification_metrics(labels, to_class_probabilities(mixed), class_names)["macro_f1"]

    scores = {weight: score(weight) for weight in MIX_WEIGHTS}
    weight = max(MIX_WEIGHTS, key=lambda w: (scores[w], w))
    report = {
        "kept_epoch": kept_epoch(callbacks, history),
        "network_weight": weight,
        "network_score": scores[1.0],
        "ngrams_score": scores[0.0],
        "mixed_score": scores[weight],
    }
    return ngrams, report


def average_over(classifier: keras.Model, steps: int) -> None:
    """Make the optimizer's moving average of the weights span about `steps` steps."""
    optimizer = getattr(classifier.optimizer, "inner_optimizer", classifier.optimizer)  # under mixed precision
    optimizer.ema_momentum = 1 - 1 / max(steps, 1)  # read when fit() traces its training step


class AveragedWeights(keras.callbacks.SwapEMAWeights):
    """With config.average_weights: validation scores the optimizer's moving average of the weights, and the
    callbacks after this one (the epoch kept, backups) see it at each epoch's end; the run ends with it too.

    A run resumed from a backup continues from the averaged weights of its last finished epoch.
    """

    def __init__(self) -> None:
        super().__init__(swap_on_epoch=True)
        self._average: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch, logs)  # the model now holds the average, until the next epoch begins
        self._average = self.model.get_weights()

    def on_train_end(self, logs: dict | None = None) -> None:
        # fit() ends by writing the optimizer's averages into the model, but after an early stop they hold the
        # last step's weights (swapped out at the epoch's end): put the average back. EpochSelection, after
        # this, then restores the best epoch's (averaged) weights when it keeps that one.
        if self._average is not None:
            self.model.set_weights(self._average)


def _layer_weights(classifier: keras.Model) -> list[keras.Variable]:
    return [w for layer in classifier.layers if layer.name != "word_vectors" for w in layer.trainable_weights]


def word_vector_table(
    config: Config, vectorizer: keras.layers.TextVectorization, texts: np.ndarray, progress: Progress = SILENT
) -> tuple[np.ndarray, dict[str, Any]]:
    """The (vocabulary, dim) word-vector table (the conv1d model's, or the lstm's starting Embedding), and a
    report of where it came from."""
    vocabulary = vectorizer.get_vocabulary()
    start = time.perf_counter()
    if config.word_vectors is not None:
        vectors = read_word_vectors(config.word_vectors, vocabulary, seed=config.seed, dim=config.word_vector_dim,
                                    progress=progress)
        report = {
            "source": str(config.word_vectors),
            "found": vectors.found,
            "missing": vectors.missing,
            "found_share": vectors.found_share,
        }
        table = vectors.table
    else:
        ids = vectorize(vectorizer, texts, config.sequence_length)  # each text's first window
        report = {"source": "skip-gram", "epochs": config.skipgram_epochs}
        if config.unlabeled is not None:
            unlabeled = load_unlabeled_texts(config.unlabeled, config.unlabeled_split, text_column=config.text_column)
            ids = np.concatenate([ids, unlabeled_windows(vectorizer, unlabeled, config.sequence_length)])
            report.update(unlabeled=str(config.unlabeled), unlabeled_texts=len(unlabeled))
        table = train_word_vectors(
            ids, len(vocabulary), dim=config.word_vector_dim, epochs=config.skipgram_epochs, seed=config.seed,
            progress=progress,
        )
    report["seconds"] = round(time.perf_counter() - start, 2)
    report["fine_tuned"] = config.trains_word_vectors
    return table, report


# Tokens of each unlabeled text the skip-gram reads: enough for nearly every review or post, while a few
# book-length texts cannot fill memory with padding.
UNLABELED_TOKENS_PER_TEXT = 1024


def unlabeled_windows(vectorizer: keras.layers.TextVectorization, texts: np.ndarray, window: int) -> np.ndarray:
    """The token ids of `texts` (their first UNLABELED_TOKENS_PER_TEXT, rounded up to whole windows; with
    --long-texts truncate the vectorizer passes on only the first window) as rows of `window` tokens, every
    row holding at least one token: skip-gram pairs never span two rows, so cutting costs a few pairs per cut."""
    length = -(-UNLABELED_TOKENS_PER_TEXT // window) * window
    rows = []
    for start in range(0, len(texts), 4096):  # in slices: one array of every text at full length can be large
        ids = vectorize(vectorizer, texts[start : start + 4096], length).reshape(-1, window)
        rows.append(ids[(ids != 0).any(axis=1)])
    return np.concatenate(rows)


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy `name` asks for; "auto" mirrors only when more than one GPU is visible.

    "multiworker" is MultiWorkerMirroredStrategy, configured by the standard TF_CONFIG variable (the cluster's
    workers and this process's place in it); without TF_CONFIG it runs as a cluster of one.
    """
    if name == "multiworker":
        _check_tf_config(os.environ.get("TF_CONFIG"))
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()  # the default: one device, no replication


def _fit_under_multiworker(model: keras.Model) -> None:
    """Work around two places where Keras 3's fit() fails under MultiWorkerMirroredStrategy
    (keras-team/keras#20585); fit() must then be called inside `strategy.scope()`.

    1. A model built in a strategy's scope remembers the strategy, and fit() first "builds" it by
       all-reducing one (ids, labels) batch, which this strategy cannot do for a tuple. Forgetting the
       strategy defers that build to the first step, and fit() takes the strategy from the scope instead.
       The optimizer's variables are created here, in the scope, not inside the first replicated step.
    2. fit() averages each step's logged metrics over the workers along axis 0, which scalars lack: the
       steps return them as 1-element vectors, which that average turns back into scalars.
    Gradients are unaffected: the optimizer all-reduces them across workers either way.
    """
    model.optimizer.build(model.trainable_variables)
    model._distribute_strategy = None
    model.train_step = _logs_as_vectors(model.train_step)
    model.test_step = _logs_as_vectors(model.test_step)


def _logs_as_vectors(step):
    def vector_logs(data):
        return {name: tf.reshape(value, [1]) for name, value in step(data).items()}

    return vector_logs


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the results: always, except on the non-chief workers of a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    # Without a "chief" task, worker 0 is the chief (TensorFlow's own convention).
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs


def _check_tf_config(value: str | None) -> None:
    """Raise ConfigError for a TF_CONFIG that TensorFlow would reject with a long traceback."""
    if value is None:
        return
    try:
        spec = json.loads(value)
    except ValueError as e:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({e})") from None
    task = spec.get("task", {}) if isinstance(spec, dict) else None
    cluster = spec.get("cluster", {}) if isinstance(spec, dict) else None
    if not isinstance(task, dict) or not isinstance(cluster, dict):
        raise ConfigError('TF_CONFIG must look like {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}')
    kind, index = task.get("type"), task.get("index", 0)
    if kind is not None and (kind not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[kind])):
        raise ConfigError(f"TF_CONFIG's task {kind}:{index} is not in its cluster ({', '.join(cluster) or 'empty'})")


# Settings that change the classifier's weights' shapes or meaning, per model: a warm start needs them equal
# (only the model's own: a conv1d model never reads lstm_units, for one).
ARCHITECTURE = {
    "lstm": ("model", "vocab_size", "sequence_length", "embedding_dim", "lstm_units", "lstm_pooling"),
    "conv1d": ("model", "vocab_size", "sequence_length", "word_vector_dim"),
}


def check_warm_start(start: Bundle, config: Config, class_names: Sequence[str]) -> None:
    """Raise ConfigError with the reason when `start`'s weights cannot seed a model for this run."""
    for name in ARCHITECTURE[config.model]:  # "model" first: another model is refused before its settings
        if getattr(start.config, name) != getattr(config, name):
            raise ConfigError(
                f"cannot warm-start: {name} is {getattr(config, name)!r} here but "
                f"{getattr(start.config, name)!r} in the model to start from"
            )
    if tuple(class_names) != tuple(start.class_names):
        raise ConfigError(
            f"cannot warm-start: the classes differ ({', '.join(class_names)} here, "
            f"{', '.join(start.class_names)} in the model to start from)"
        )


# The score that picks the epoch to keep: validation loss is noisy at small batches and often bottoms out in
# the first epoch, before the model has learned the minority classes; macro F1 weighs every class equally and
# does not move with the confidence of predictions that stay right or wrong.
SELECTION_METRIC = "val_macro_f1"


class EpochSelection(keras.callbacks.EarlyStopping):
    """textpipe's own early stopping, told apart from any EarlyStopping a caller adds."""


def best_epoch_callback(config: Config) -> keras.callbacks.EarlyStopping:
    """Stops after `config.patience` epochs without a better SELECTION_METRIC (never, when 0 or None) and, with
    `config.keep_best_epoch`, restores the best epoch's weights when training ends. After a resume from
    `backup_dir` the choice starts afresh: Keras does not back up this callback's state."""
    return EpochSelection(
        monitor=SELECTION_METRIC,
        mode="max",
        patience=config.patience or config.epochs,
        restore_best_weights=config.keep_best_epoch,
    )


def kept_epoch(callbacks: Sequence[keras.callbacks.Callback], history: keras.callbacks.History) -> dict[str, Any]:
    """Which epoch's weights the model ended with (1-based, counting epochs of a run resumed from a backup),
    the last epoch run, and the score that chose it."""
    last = history.epoch[-1] + 1 if history.epoch else 0
    stopper = next((c for c in callbacks if isinstance(c, EpochSelection)), None)
    kept = {"epoch": last, "last_epoch": last, "selected_by": "last epoch", "stopped_early": False}
    if stopper is not None:
        kept["stopped_early"] = stopper.stopped_epoch > 0
        if stopper.restore_best_weights and stopper.best_weights is not None:
            kept.update(epoch=stopper.best_epoch + 1, selected_by=SELECTION_METRIC)
    scores = history.history.get(SELECTION_METRIC, [])
    if kept["epoch"] - 1 in history.epoch and len(scores) == len(history.epoch):
        kept["score"] = float(scores[history.epoch.index(kept["epoch"] - 1)])
    return kept


def _callbacks(config: Config, strategy: tf.distribute.Strategy) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = []
    if config.average_weights:
        callbacks.append(AveragedWeights())  # first: every callback after it sees the averaged weights
    if config.backup_dir is not None:
        # Keras' BackupAndRestore writes plain files, unaware of other workers, and deletes its folder when
        # training ends: each worker gets a sub-folder of its own, so that no two write one file, a restarted
        # worker resumes from its own last epoch, and nothing else in backup_dir is ever deleted.
        resolver = getattr(strategy, "cluster_resolver", None)
        task = "local" if resolver is None or resolver.task_type is None else f"{resolver.task_type}-{resolver.task_id}"
        folder = os.path.join(config.backup_dir, task)
        callbacks.append(keras.callbacks.BackupAndRestore(folder))
    if config.patience or config.keep_best_epoch:
        callbacks.append(best_epoch_callback(config))
    if config.log_dir is not None:
        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError("log_dir needs TensorBoard: pip install 'textpipe[tensorboard]'")
        callbacks.append(keras.callbacks.TensorBoard(log_dir=config.log_dir))
    return callbacks
