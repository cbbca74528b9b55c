"""Raw text -> right-padded token ids: one TextVectorization layer, adapted on training text only,
and the tf.data chains that feed the models with it, in batches of texts of similar length.

The same adapted layer object ends up inside the exported model (bundle.py), so training, evaluation
and scoring cannot tokenize differently.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from textpipe.data import Split
from textpipe.layers import split_windows, standardize
from textpipe.progress import SILENT, Progress

AUTOTUNE = tf.data.AUTOTUNE
# Texts per vectorizer call inside tf.data: large batches amortize the per-call overhead.
VECTORIZE_BATCH = 1024
# Training batches are formed from windows of this many batches sorted by length: wide enough that most
# batches hold texts of nearly one length, small enough that a window is a random sample of the data.
LENGTH_WINDOW = 50


def build_vectorizer(
    vocab_size: int, sequence_length: int | None, standardization: str | Callable = standardize
) -> keras.layers.TextVectorization:
    """Lower-cases, strips punctuation, splits on whitespace (layers.standardize); pads/truncates at the end to
    `sequence_length`, or, when it is None, keeps every token and pads each batch to its longest text.

    The vocabulary holds at most `vocab_size` entries, counting padding "" (id 0) and "[UNK]" (id 1).
    `standardization`: another one, e.g. a warm start's ("lower_and_strip_punctuation" before bundle format 5).
    """
    return keras.layers.TextVectorization(
        max_tokens=vocab_size,
        standardize=standardization,
        output_mode="int",
        output_sequence_length=sequence_length,
        name="vectorizer",
    )


def vectorizer_length(config) -> int | None:
    """How many tokens of a text the vectorizer passes on: all of them when the model reads long texts in
    windows (config.long_texts == "windows"), else the first `sequence_length`."""
    return None if config.long_texts == "windows" else config.sequence_length


def adapt_vectorizer(
    vectorizer: keras.layers.TextVectorization,
    texts: np.ndarray,
    progress: Progress = SILENT,
    *,
    labels: np.ndarray | None = None,
) -> None:
    """Learn the vocabulary from training texts (never validation or test): their most frequent words, or,
    given the texts' `labels`, the words `informative_vocabulary` chooses."""
    if labels is not None:
        size = vectorizer.get_config()["max_tokens"]
        vectorizer.set_vocabulary(informative_vocabulary(texts, labels, size, progress))
        return
    with progress.phase("vocabulary", total=len(texts), unit=" texts") as advance:
        vectorizer.adapt(_counted_batches(texts, advance))


def _counted_batches(texts: np.ndarray, advance):
    """`texts` in batches for adapt (which takes any iterable of batches), one step of a bar per batch."""
    for batch in tf.data.Dataset.from_tensor_slices(texts).batch(VECTORIZE_BATCH):
        yield batch
        advance(int(batch.shape[0]))


def informative_vocabulary(
    texts: np.ndarray, labels: np.ndarray, size: int | None, progress: Progress = SILENT
) -> list[str]:
    """Words for a vocabulary of `size` entries (padding and [UNK] included; None: every word), in order of
    frequency: the most frequent words fill half of it, and the words whose presence in a text tells most about
    its label (information gain) the other half, words found in one text only last. The most frequent words
    alone carry a sentence's structure (articles, negations, conjunctions) but leave out most of the rarer words
    that decide its class."""
    counter = keras.layers.TextVectorization(standardize=standardize, ragged=True)  # every word kept
    with progress.phase("vocabulary", total=len(texts), unit=" texts") as advance:
        counter.adapt(_counted_batches(texts, advance))
    vocabulary = counter.get_vocabulary()  # "", "[UNK]", then every word, the most frequent first
    budget = len(vocabulary) - 2 if size is None else size - 2
    if len(vocabulary) - 2 <= budget:
        return [str(word) for word in vocabulary[2:]]
    classes, label_ids = np.unique(np.asarray(labels), return_inverse=True)
    texts_with = np.zeros((len(vocabulary), len(classes)))  # texts of each class holding each word
    with progress.phase("vocabulary: what each word tells of the label", total=len(texts), unit=" texts") as advance:
        for start in range(0, len(texts), VECTORIZE_BATCH):
            ids = counter(texts[start : start + VECTORIZE_BATCH])
            rows, words = ids.value_rowids().numpy(), ids.flat_values.numpy()
            once = np.unique(rows * len(vocabulary) + words)  # each word once per text
            np.add.at(texts_with, (once % len(vocabulary), label_ids[start + once // len(vocabulary)]), 1)
            advance(int(ids.nrows()))
    gain = information_gain(texts_with[2:], np.bincount(label_ids, minlength=len(classes)))
    gain[texts_with[2:].sum(axis=1) < 2] = -1.0  # a word in one text cannot be learned from: last
    frequent = budget // 2
    by_gain = frequent + np.argsort(-gain[frequent:], kind="stable")[: budget - frequent]  # ties: more frequent
    keep = np.sort(np.concatenate([np.arange(frequent), by_gain]))
    return [str(vocabulary[2 + i]) for i in keep]


def information_gain(texts_with: np.ndarray, class_sizes: np.ndarray) -> np.ndarray:
    """How much knowing whether a text holds each word lowers the entropy of its class, in nats: `texts_with`
    (words, classes) counts the texts of each class that hold each word; `class_sizes` the texts of each."""

    def entropy(counts: np.ndarray) -> np.ndarray:
        totals = counts.sum(axis=-1, keepdims=True)
        shares = np.divide(counts, totals, out=np.zeros_like(counts, dtype=float), where=totals > 0)
        return -(shares * np.log(np.where(shares > 0, shares, 1.0))).sum(axis=-1)

    n = class_sizes.sum()
    holding = texts_with.sum(axis=1)
    without = class_sizes[None, :] - texts_with
    return entropy(class_sizes.astype(float)) - (holding * entropy(texts_with) + (n - holding) * entropy(without)) / n


def vectorize(vectorizer: keras.layers.TextVectorization, texts: np.ndarray, length: int | None = None) -> np.ndarray:
    """Token ids of `texts` as one (n, length) array, computed in batches: every text padded or cut to `length`
    (default: the vectorizer's own sequence length, or else the longest text's)."""
    ds = tf.data.Dataset.from_tensor_slices(texts).batch(VECTORIZE_BATCH).map(vectorizer, num_parallel_calls=AUTOTUNE)
    batches = list(ds.as_numpy_iterator())
    length = length or vectorizer.get_config().get("output_sequence_length")
    if length is None:
        length = max((b.shape[1] for b in batches), default=0)
    return np.concatenate([np.pad(b[:, :length], [(0, 0), (0, length - min(b.shape[1], length))]) for b in batches])


def make_dataset(
    vectorizer: keras.layers.TextVectorization,
    split: Split,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    group_by_length: bool = True,
    windows: int | None = None,
) -> tf.data.Dataset:
    """(token ids, label) batches: vectorize in parallel, cache the ids, then shuffle, batch, prefetch.

    Caching after vectorization means tokenization runs once, not once per epoch. With `windows` (for
    training), a text longer than `windows` tokens becomes consecutive windows of that many tokens (the last
    one shorter), each an example with the text's label: the model is trained on every token of long texts,
    in the windows it reads them in (see models.py). Without it each text comes whole (for validation, which
    then scores texts as the saved model will).

    With `group_by_length` (the default), each window of LENGTH_WINDOW batches is sorted by text length
    before it is cut into batches, and every batch is cut to its longest text: a batch of short texts costs a
    few steps, not `sequence_length`. The batches of a window are then shuffled with the seed, so training
    still sees them in random order. Without it, every batch is padded to `windows` (or to its longest text)
    in the data's order (or the shuffled order).
    """
    ds = (
        tf.data.Dataset.from_tensor_slices((split.texts, split.labels))
        .batch(VECTORIZE_BATCH)
        .map(lambda text, label: (vectorizer(text), label), num_parallel_calls=AUTOTUNE)
        .unbatch()
        .map(_strip_padding, num_parallel_calls=AUTOTUNE)
    )
    if windows is not None:
        ds = ds.flat_map(_cut_into_windows(windows))
    ds = ds.cache()
    # Known size: Keras can show full progress bars and knows where an epoch ends. Counting the windows
    # takes one pass, which also fills the cache that the first epoch would have filled.
    size = len(split) if windows is None else int(ds.reduce(np.int64(0), lambda n, _: n + 1))
    ds = ds.apply(tf.data.experimental.assert_cardinality(size))
    if shuffle:
        ds = ds.shuffle(size, seed=seed, reshuffle_each_iteration=True)
    if not group_by_length:
        return ds.padded_batch(batch_size, padded_shapes=([windows], [])).prefetch(AUTOTUNE)
    ds = (
        ds.padded_batch(batch_size * LENGTH_WINDOW, padded_shapes=([None], []))
        .map(_sort_by_length, num_parallel_calls=AUTOTUNE)
        .unbatch()
        .apply(tf.data.experimental.assert_cardinality(size))
        .batch(batch_size)
        .map(_trim_to_longest, num_parallel_calls=AUTOTUNE)
    )
    if shuffle:
        ds = ds.shuffle(LENGTH_WINDOW, seed=seed, reshuffle_each_iteration=True)
    return ds.prefetch(AUTOTUNE)


def _strip_padding(ids: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return ids[: tf.reduce_sum(tf.cast(ids != 0, tf.int32))], label


def _cut_into_windows(length: int):
    def cut(ids: tf.Tensor, label: tf.Tensor) -> tf.data.Dataset:
        windows = split_windows(ids[None, :], length)  # the windows the model reads; an empty text keeps one
        return tf.data.Dataset.from_tensor_slices((windows, tf.fill(tf.shape(windows)[:1], label)))

    return cut


def _sort_by_length(ids: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    order = tf.argsort(text_lengths(ids), stable=True)
    return tf.gather(ids, order), tf.gather(labels, order)


def _trim_to_longest(ids: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return ids[:, : tf.reduce_max(text_lengths(ids))], labels


def text_lengths(ids: tf.Tensor) -> tf.Tensor:
    """Tokens per row of right-padded ids (padding is id 0, and no token is)."""
    return tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=1)
