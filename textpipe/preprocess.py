"""Raw text -> padded token ids: one TextVectorization layer, adapted on training text only,
and the tf.data chains that feed the models with it.

The same adapted layer object ends up inside the exported model (bundle.py), so training, evaluation
and scoring cannot tokenize differently.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from textpipe.data import Split

AUTOTUNE = tf.data.AUTOTUNE
# Texts per vectorizer call inside tf.data: large batches amortize the per-call overhead.
VECTORIZE_BATCH = 1024


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


def adapt_vectorizer(vectorizer: keras.layers.TextVectorization, texts: np.ndarray) -> None:
    """Learn the vocabulary from training texts (never validation or test)."""
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(VECTORIZE_BATCH))


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
    word_vectors: np.ndarray | None = None,
) -> tf.data.Dataset:
    """(token ids, label) batches: vectorize in parallel, cache the ids, then shuffle, batch, prefetch.

    Caching after vectorization means tokenization runs once, not once per epoch. With `word_vectors`
    (a (vocab_size, dim) table), batches hold (batch, length, dim) vector sequences instead of ids; the
    lookup runs per batch after the cache, since caching vectors would take `dim` times the memory.
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
    ds = ds.batch(batch_size)
    if word_vectors is not None:
        table = tf.constant(word_vectors, dtype=tf.float32)
        ds = ds.map(lambda ids, label: (tf.gather(table, ids), label), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)
