"""Word vectors for the conv1d model: a (vocab_size, 100) table whose row i belongs to vocabulary id i.

Two sources, one shape:
  train_word_vectors   skip-gram word2vec with negative sampling, trained on the training token ids
  read_word_vectors    a GloVe / word2vec text file, streamed; missing words filled from learned or random rows
The same table answers "which words are closest to X" (nearest_neighbors, cosine_similarity).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from textpipe.errors import ConfigError, DataError
from textpipe.progress import SILENT, Progress

WORD_VECTOR_DIM = 100
PADDING, UNKNOWN = 0, 1  # TextVectorization reserves id 0 for "" and id 1 for "[UNK]"
SPECIAL_TOKENS = ("", "[UNK]")
# word2vec's default subsampling threshold for corpora of ~1e6-1e9 tokens; with a 1024-word vocabulary the
# few very frequent words ("the", "a", "and") make up much of the text and mostly teach nothing.
SUBSAMPLE = 1e-3
RANDOM_FILL_SCALE = 0.1  # random rows for missing words: about the size of trained ones, never dominating


def train_word_vectors(
    token_ids: np.ndarray,
    vocab_size: int,
    *,
    dim: int = WORD_VECTOR_DIM,
    window: int = 2,
    negatives: int = 4,
    epochs: int = 5,
    batch_size: int = 1024,
    learning_rate: float = 0.005,
    subsample: float = SUBSAMPLE,
    seed: int = 0,
    progress: Progress = SILENT,
) -> np.ndarray:
    """Learn a (vocab_size, dim) float32 table from padded token ids (n_texts, seq_len) by skip-gram.

    Every pair (target, context) of words at most `window` apart is a positive example; `negatives`
    words drawn from the unigram^0.75 distribution are negatives for the same target. Padding and [UNK]
    are never target or context: row 0 is zeros and row 1 keeps its random initial vector.
    `subsample` (0 turns it off) is word2vec's threshold t for dropping frequent words.
    Each epoch is a `progress` phase ("word vectors: skip-gram epoch 1/5") counted in batches.
    """
    keras.utils.set_random_seed(seed)
    token_ids = _check_token_ids(token_ids, vocab_size)
    for name, value in (("dim", dim), ("window", window), ("negatives", negatives), ("epochs", epochs),
                        ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"word vectors: {name} must be a positive integer, got {value!r}")
    if not learning_rate > 0 or not 0 <= subsample < 1:
        raise ConfigError(f"word vectors: need learning_rate > 0 and 0 <= subsample < 1, "
                          f"got {learning_rate!r} and {subsample!r}")

    rng = np.random.default_rng(seed)
    counts = np.bincount(token_ids.ravel(), minlength=vocab_size).astype(np.float64)
    counts[[PADDING, UNKNOWN]] = 0.0
    if subsample > 0:
        token_ids = _subsample(token_ids, counts, subsample, rng)
    pairs = skipgram_pairs(token_ids, window)
    if len(pairs) == 0:
        raise DataError("no word pairs to learn word vectors from: the texts have fewer than two known words each")

    # Negatives from unigram^0.75 (word2vec's choice) rather than log_uniform_candidate_sampler: we have
    # the true counts for free, and the log-uniform sampler would also draw padding and [UNK] (ids 0, 1)
    # and assume a Zipf law the data may not follow. With ~1k words, sampling from counts costs nothing.
    noise = counts**0.75
    noise_logits = np.where(noise > 0, np.log(np.maximum(noise, 1e-30)), -np.inf).astype(np.float32)

    model = SkipGram(vocab_size, dim, noise_logits, negatives, seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        # Each step is tiny, so per-step overhead dominates: 16 steps per call is ~25% faster on CPU.
        steps_per_execution=16,
    )
    batches = _pair_batches(pairs, batch_size, negatives, rng, seed)
    phases = _EpochPhases(progress, epochs, int(batches.cardinality()))
    try:
        model.fit(batches, epochs=epochs, shuffle=False, verbose=0, callbacks=[phases])
    finally:  # fit's callbacks do not run when it raises (Ctrl-C): the open phase ends here
        phases.on_train_end()
    table = np.array(model.target.embeddings.numpy(), dtype=np.float32)
    table[PADDING] = 0.0
    return table


class _EpochPhases(keras.callbacks.Callback):
    """Each epoch of the skip-gram's fit as one `progress` phase, advanced by the batches done."""

    def __init__(self, progress: Progress, epochs: int, steps: int) -> None:
        super().__init__()
        self._progress, self._epochs, self._steps = progress, epochs, steps
        self._phase = contextlib.ExitStack()
        self._advance, self._done = None, 0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        name = f"word vectors: skip-gram epoch {epoch + 1}/{self._epochs}"
        self._advance = self._phase.enter_context(self._progress.phase(name, total=self._steps, unit=" batches"))
        self._done = 0

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        # With steps_per_execution, Keras calls this once per execution, with the index its last step would
        # have, which at the end of an epoch can lie past the epoch's last batch.
        done = min(batch + 1, self._steps)
        self._advance(done - self._done)
        self._done = done

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self._phase.close()

    def on_train_end(self, logs=None) -> None:
        self._phase.close()


class SkipGram(keras.Model):
    """Target and context tables; a positive pair's dot product should be high, a noise word's low.

    Negatives are drawn inside the model from a Keras SeedGenerator: fresh ones every step and epoch,
    reproducible for a fixed seed, and the data pipeline only has to carry the positive pairs.
    """

    def __init__(self, vocab_size: int, dim: int, noise_logits: np.ndarray, negatives: int, seed: int):
        super().__init__(name="skipgram")
        self.target = keras.layers.Embedding(vocab_size, dim, name="target")
        self.context = keras.layers.Embedding(vocab_size, dim, name="context")
        self.noise_logits = tf.constant(noise_logits[None, :])
        self.negatives = negatives
        self.noise_seed = keras.random.SeedGenerator(seed)

    def call(self, pairs):
        batch = tf.shape(pairs)[0]
        # One draw of batch * negatives samples from a single row: cost O(vocab + samples), not O(batch * vocab).
        noise = keras.random.categorical(self.noise_logits, batch * self.negatives, dtype="int32",
                                         seed=self.noise_seed)
        candidates = tf.concat([pairs[:, 1:2], tf.reshape(noise, (batch, self.negatives))], axis=1)
        return tf.einsum("bd,bkd->bk", self.target(pairs[:, 0]), self.context(candidates))


def skipgram_pairs(token_ids: np.ndarray, window: int) -> np.ndarray:
    """All (target, context) pairs, shape (n_pairs, 2) int32, of known words at most `window` apart.

    Vectorized per distance d: ids[:, :-d] against ids[:, d:] lines up every word with the word d to its
    right; both directions are kept. A pair with padding (0) or [UNK] (1) on either side is dropped, but
    [UNK] keeps its place in the text: it still counts in the distance between the words around it.
    """
    token_ids = np.asarray(token_ids)
    targets, contexts = [], []
    for d in range(1, window + 1):
        left, right = token_ids[:, :-d], token_ids[:, d:]
        keep = (left > UNKNOWN) & (right > UNKNOWN)
        left, right = left[keep], right[keep]
        targets += [left, right]
        contexts += [right, left]
    if not targets:
        return np.zeros((0, 2), dtype=np.int32)
    return np.stack([np.concatenate(targets), np.concatenate(contexts)], axis=1).astype(np.int32)


def _subsample(token_ids: np.ndarray, counts: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    """Drop each occurrence of a word with frequency f with probability 1 - (sqrt(t/f) + t/f), as word2vec does.

    Dropped words are removed from their text and the rest moved left (a stable sort on "dropped"), so,
    as in word2vec, the window reaches past them. Drawn once, not per epoch: one array of pairs is
    simpler and the difference is noise.
    """
    freq = counts / max(counts.sum(), 1.0)
    with np.errstate(divide="ignore"):
        ratio = np.where(freq > 0, t / np.maximum(freq, 1e-300), np.inf)
    keep_prob = np.minimum(1.0, np.sqrt(ratio) + ratio)
    keep_prob[[PADDING, UNKNOWN]] = 1.0  # [UNK] keeps its place; padding is moved right anyway
    dropped = (rng.random(token_ids.shape) >= keep_prob[token_ids]) | (token_ids == PADDING)
    order = np.argsort(dropped, axis=1, kind="stable")
    return np.where(np.take_along_axis(dropped, order, axis=1), PADDING, np.take_along_axis(token_ids, order, axis=1))


def _pair_batches(
    pairs: np.ndarray, batch_size: int, negatives: int, rng: np.random.Generator, seed: int
) -> tf.data.Dataset:
    """(pairs (B, 2), labels (B, 1 + negatives)) batches; label 1 for the true context, 0 for the noise words.

    Millions of pairs are too many to shuffle one by one in tf.data, so they are shuffled once in numpy,
    cut into whole batches, and tf.data reshuffles the order of the batches every epoch. The last batch
    is topped up with pairs from the first so that every batch has the same size.
    """
    batch_size = min(batch_size, len(pairs))
    pairs = pairs[rng.permutation(len(pairs))]
    n_batches = -(-len(pairs) // batch_size)
    pairs = np.concatenate([pairs, pairs[: n_batches * batch_size - len(pairs)]])
    labels = np.zeros((batch_size, 1 + negatives), dtype=np.float32)
    labels[:, 0] = 1.0
    return (
        tf.data.Dataset.from_tensor_slices(pairs.reshape(n_batches, batch_size, 2))
        .shuffle(n_batches, seed=seed, reshuffle_each_iteration=True)
        .map(lambda batch: (batch, labels))
        .prefetch(tf.data.AUTOTUNE)
    )


def _check_token_ids(token_ids: np.ndarray, vocab_size: int) -> np.ndarray:
    token_ids = np.asarray(token_ids)
    if token_ids.ndim != 2 or not np.issubdtype(token_ids.dtype, np.integer):
        raise DataError(f"token ids must be a 2-D integer array (texts, tokens), got {token_ids.dtype} "
                        f"of shape {token_ids.shape}")
    if token_ids.size and (token_ids.min() < 0 or token_ids.max() >= vocab_size):
        raise DataError(f"token ids must lie in [0, {vocab_size}), found {token_ids.min()}..{token_ids.max()}; "
                        f"was the vocabulary size changed after vectorizing?")
    return token_ids.astype(np.int64, copy=False)


@dataclasses.dataclass(frozen=True)
class WordVectors:
    table: np.ndarray  # (len(vocabulary), dim) float32, row i for vocabulary id i
    found: int  # vocabulary words (not "" or "[UNK]") whose vector came from the file
    missing: int  # vocabulary words filled from `fill` or at random

    @property
    def found_share(self) -> float:
        total = self.found + self.missing
        return self.found / total if total else 0.0


def read_word_vectors(
    path: str | Path,
    vocabulary: Sequence[str],
    *,
    fill: np.ndarray | None = None,
    seed: int = 0,
    dim: int | None = None,
    progress: Progress = SILENT,
) -> WordVectors:
    """Read the vectors of `vocabulary`'s words from a GloVe (`word v1 ... vd`) or word2vec text file.

    The file is streamed line by line and only vocabulary words are kept, so multi-GB files are fine.
    A first line `<count> <dim>` is taken as a word2vec header. The header, or else the file's first vector,
    sets the dimension; `dim`, where given, is the one expected, and another is refused as soon as it is read.
    Every line's number of values is checked; values are parsed, and so checked, only for words that are kept
    (parsing every number of a GB-sized file would take minutes). After the first vector, which confirms the
    dimension, a line with more values holds a word with spaces in it (GloVe's 840B file has a few, such as
    ". . ."), never a vocabulary word: it is skipped.
    An exact match wins over a lower-cased one, as the vectorizer lower-cases the vocabulary.
    Words not in the file take their row from `fill` (e.g. learned skip-gram vectors, same shape),
    else small seeded random vectors; row 0 (padding) is zeros. Reading is a `progress` phase counted in bytes.
    """
    vocabulary = list(vocabulary)
    index = {word: i for i, word in enumerate(vocabulary) if word not in SPECIAL_TOKENS}
    rows: dict[int, np.ndarray] = {}
    exact: set[int] = set()
    expected, dim, vectors = dim, None, 0
    try:
        f = open(path, "rb")  # binary: its size in bytes is the phase's total
    except FileNotFoundError:
        raise DataError(f"word vector file {path} does not exist") from None
    except OSError as e:
        raise DataError(f"cannot read word vector file {path}: {e.strerror or e}") from None
    with f, progress.phase(f"word vectors: reading {Path(path).name}", total=_size(f), unit="B") as advance:
        unreported = 0
        for number, raw in enumerate(f, start=1):
            unreported += len(raw)
            if unreported >= 1 << 22:  # a bar update per 4 MB, not per line
                advance(unreported)
                unreported = 0
            line = raw.decode("utf-8", errors="replace")
            fields = (line.removeprefix("\ufeff") if number == 1 else line).rstrip().split(" ")
            if fields == [""]:
                continue  # blank line
            if dim is None:  # the first line: a word2vec header (<count> <dim>) or the first vector
                header = len(fields) == 2 and all(x.isdigit() for x in fields)
                dim = int(fields[1]) if header else len(fields) - 1
                if dim < 1:
                    raise DataError(f"{path} line {number}: expected a word followed by its vector values")
                if expected is not None and dim != expected:
                    raise ConfigError(f"{path} holds {dim}-dim vectors but word_vector_dim is {expected}; "
                                      f"pass --word-vector-dim {dim}")
                if header:
                    continue
            if len(fields) - 1 > dim and vectors:
                continue  # a word with spaces in it (not the first vector, which must confirm the width)
            if len(fields) - 1 != dim:
                raise DataError(f"{path} line {number}: expected {dim} values, got {len(fields) - 1}")
            vectors += 1
            word = fields[0]
            i = index.get(word)
            if i is None or i in exact:
                i = index.get(word.lower())
                if i is None or i in exact or i in rows:
                    continue
            try:
                rows[i] = np.array(fields[1:], dtype=np.float32)
            except ValueError:
                bad = next(x for x in fields[1:] if not _is_number(x))
                raise DataError(f"{path} line {number}: value {bad!r} is not a number") from None
            if not np.isfinite(rows[i]).all():
                raise DataError(f"{path} line {number}: the vector of {word!r} holds inf or NaN")
            if word == vocabulary[i]:
                exact.add(i)
        advance(unreported)
    if dim is None:
        raise DataError(f"word vector file {path} holds no vectors")

    shape = (len(vocabulary), dim)
    if fill is not None:
        fill = np.asarray(fill, dtype=np.float32)
        if fill.shape != shape:
            raise DataError(f"{path} has {dim}-dim vectors, so the fill table must have shape {shape}, "
                            f"not {fill.shape}")
        table = fill.copy()
    else:
        # The whole table is drawn up front, so a word's random row depends only on the seed and its id.
        table = np.random.default_rng(seed).normal(0.0, RANDOM_FILL_SCALE, shape).astype(np.float32)
    for i, vector in rows.items():
        table[i] = vector
    if len(vocabulary):
        table[PADDING] = 0.0
    return WordVectors(table=table, found=len(rows), missing=len(index) - len(rows))


def _size(f) -> int | None:
    try:
        return os.fstat(f.fileno()).st_size or None  # a pipe or FIFO reports 0
    except OSError:
        return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def cosine_similarity(table: np.ndarray, vocabulary: Sequence[str], word_a: str, word_b: str) -> float:
    """Cosine of the angle between two words' vectors; 0.0 if either vector is all zeros."""
    vocabulary = list(vocabulary)
    a = _unit(table[_word_id(table, vocabulary, word_a)])
    b = _unit(table[_word_id(table, vocabulary, word_b)])
    return float(a @ b)


def nearest_neighbors(table: np.ndarray, vocabulary: Sequence[str], word: str, k: int = 10) -> list[tuple[str, float]]:
    """The `k` words most cosine-similar to `word`, most similar first (never the word, "" or "[UNK]")."""
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"the number of neighbours must be a positive integer, got {k!r}")
    vocabulary = list(vocabulary)
    i = _word_id(table, vocabulary, word)
    units = _unit(np.asarray(table, dtype=np.float64))
    similarity = units @ units[i]
    excluded = [i] + [j for j, w in enumerate(vocabulary) if w in SPECIAL_TOKENS]
    similarity[excluded] = -np.inf
    order = np.argsort(-similarity, kind="stable")[: min(k, len(vocabulary) - len(set(excluded)))]
    return [(str(vocabulary[j]), float(similarity[j])) for j in order]


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Scale to length 1 along the last axis; all-zero vectors stay zero instead of becoming NaN."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _word_id(table: np.ndarray, vocabulary: list[str], word: str) -> int:
    if len(table) != len(vocabulary):
        raise DataError(f"the word vector table has {len(table)} rows but the vocabulary {len(vocabulary)} words")
    if word in SPECIAL_TOKENS:
        raise DataError(f"{word!r} is the padding or unknown-word token, not a word")
    try:
        return vocabulary.index(word)
    except ValueError:
        hint = f"; the vocabulary is lower-cased, try {word.lower()!r}" if word.lower() in vocabulary else (
            "; the vocabulary is lower-cased and without punctuation")
        raise DataError(f"{word!r} is not in the model's vocabulary of {len(vocabulary)} words{hint}") from None
