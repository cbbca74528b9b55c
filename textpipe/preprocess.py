"""Raw text -> right-padded token ids: one TextVectorization layer, adapted on training text only,
and the tf.data chains that feed the models with it, in batches of texts of similar length.

The same adapted layer object ends up inside the exported model (bundle.py), so training, evaluation
and scoring cannot tokenize differently.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from textpipe.data import Split
from textpipe.progress import SILENT, Progress

AUTOTUNE = tf.data.AUTOTUNE
# Texts per vectorizer call inside tf.data: large batches amortize the per-call overhead.
VECTORIZE_BATCH = 1024
# Training batches are formed from windows of this many batches sorted by length: wide enough that most
# batches hold texts of nearly one length, small enough that a window is a random sample of the data.
LENGTH_WINDOW = 50


def build_vectorizer(vocab_size: int, sequence_length: int) -> keras.layers.TextVectorization:
    """Lower-cases, strips punctuation, splits on whitespace; pads/truncates at the end to `sequence_length`.

    Built-in standardization keeps the saved model loadable without registering custom code.
    The vocabulary holds at most `vocab_size` entries, counting padding "" (id 0) and "[UNK]" (id 1).
    """
    return keras.layers.TextVectorization(
        max_tokens=vocab_size,
        output_mode="int",
        output_sequence_length=sequence_length,
        name="vectorizer",
    )


def adapt_vectorizer(
    vectorizer: keras.layers.TextVectorization, texts: np.ndarray, progress: Progress = SILENT
) -> None:
    """Learn the vocabulary from training texts (never validation or test)."""
    with progress.phase("vocabulary", total=len(texts), unit=" texts") as advance:

        def batches():  # adapt takes any iterable of batches: one step of the bar per batch
            for batch in tf.data.Dataset.from_tensor_slices(texts).batch(VECTORIZE_BATCH):
                yield batch
                advance(int(batch.shape[0]))

        vectorizer.adapt(batches())


def vectorize(vectorizer: keras.layers.TextVectorization, texts: np.ndarray) -> np.ndarray:
    """Token ids of `texts` as one (n, sequence_length) array, computed in batches."""
    ds = tf.data.Dataset.from_tensor_slices(texts).batch(VECTORIZE_BATCH).map(vectorizer, num_parallel_calls=AUTOTUNE)
    return np.concatenate(list(ds.as_numpy_iterator()))


def make_dataset(
    vectorizer: keras.layers.TextVectorization,
    split: Split,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    group_by_length: bool = True,
) -> tf.data.Dataset:
    """(token ids, label) batches: vectorize in parallel, cache the ids, then shuffle, batch, prefetch.

    Caching after vectorization means tokenization runs once, not once per epoch. With `group_by_length`
    (the default), each window of LENGTH_WINDOW batches is sorted by text length before it is cut into
    batches, and every batch is cut to its longest text: a batch of short texts costs a few steps, not
    `sequence_length`. The batches of a window are then shuffled with the seed, so training still sees them
    in random order. Without it, every batch is padded to `sequence_length` in the data's order (or the
    shuffled order).
    """
    ds = (
        tf.data.Dataset.from_tensor_slices((split.texts, split.labels))
        .batch(VECTORIZE_BATCH)
        .map(lambda text, label: (vectorizer(text), label), num_parallel_calls=AUTOTUNE)
        .unbatch()
        # Known size: Keras can show full progress bars and knows where an epoch ends.
        .apply(tf.data.experimental.assert_cardinality(len(split)))
        .cache()
    )
    if shuffle:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    if not group_by_length:
        return ds.batch(batch_size).prefetch(AUTOTUNE)
    ds = (
        ds.batch(batch_size * LENGTH_WINDOW)
        .map(_sort_by_length, num_parallel_calls=AUTOTUNE)
        .unbatch()
        .apply(tf.data.experimental.assert_cardinality(len(split)))
        .batch(batch_size)
        .map(_trim_to_longest, num_parallel_calls=AUTOTUNE)
    )
    if shuffle:
        ds = ds.shuffle(LENGTH_WINDOW, seed=seed, reshuffle_each_iteration=True)
    return ds.prefetch(AUTOTUNE)


def _sort_by_length(ids: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    order = tf.argsort(text_lengths(ids), stable=True)
    return tf.gather(ids, order), tf.gather(labels, order)


def _trim_to_longest(ids: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return ids[:, : tf.reduce_max(text_lengths(ids))], labels


def text_lengths(ids: tf.Tensor) -> tf.Tensor:
    """Tokens per row of right-padded ids (padding is id 0, and no token is)."""
    return tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=1)
