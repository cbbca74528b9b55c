"""Fit a classifier on a LabeledData and return it as an (unsaved) Bundle with its validation metrics."""

from __future__ import annotations

from typing import Sequence

import keras

from textpipe.bundle import Bundle, end_to_end
from textpipe.config import Config
from textpipe.data import LabeledData
from textpipe.evaluation import evaluate
from textpipe.models import build_model
from textpipe.preprocess import adapt_vectorizer, build_vectorizer, make_dataset


def train(
    config: Config,
    data: LabeledData,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = 0,
) -> Bundle:
    """Adapt the vectorizer on train text, fit the model, and measure it on the validation split.

    `verbose` is passed to Keras' fit (0 silent, 1 progress bar, 2 one line per epoch).
    """
    # Seeds Python, NumPy and TensorFlow: same seed, data and config give the same model on CPU.
    keras.utils.set_random_seed(config.seed)

    vectorizer = build_vectorizer(config.vocab_size, config.sequence_length)
    adapt_vectorizer(vectorizer, data.train.texts)
    train_ds = make_dataset(vectorizer, data.train, config.batch_size, shuffle=True, seed=config.seed)
    val_ds = make_dataset(vectorizer, data.validation, config.batch_size, shuffle=False)

    classifier = build_model(config, len(data.class_names))
    history = classifier.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        callbacks=_callbacks(config) + list(callbacks),
        verbose=verbose,
        shuffle=False,  # train_ds is already shuffled by tf.data, with the seed
    )
    bundle = Bundle(
        model=end_to_end(vectorizer, classifier),
        config=config,
        class_names=data.class_names,
        vocabulary_size=vectorizer.vocabulary_size(),
        history={k: [float(v) for v in values] for k, values in history.history.items()},
    )
    bundle.metrics = {"validation": evaluate(bundle, data.validation)}
    return bundle


def _callbacks(config: Config) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = []
    if config.patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            )
        )
    if config.log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=config.log_dir))
    return callbacks
