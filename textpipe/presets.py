"""Presets: named layers of settings between the defaults and the user's own, and the settings chosen from the
training texts ("auto").

`--preset seed` (the default) is the reference model's numbers, half the vocabulary chosen by what its words tell
of the label, the conv1d model's weights averaged, and adversarial training on the word vectors when the training
texts are sentence-length.
`--preset accurate` lets the data choose the vocabulary and the sequence length, trains longer (the best epoch is
kept either way), the lstm in larger batches with its outputs max-pooled, the conv1d model in the seed preset's
batches with its weights averaged, trains adversarially as the seed preset does, and mixes the network with a
linear model on word 1-2-grams.
A setting given in a config file, as a flag or to `Config` always wins over the preset: a preset fills only
the settings left at None.
"""

from __future__ import annotations

import collections
import dataclasses
import unicodedata
from typing import Any, Iterable, Sequence

import numpy as np

PRESETS: dict[str, dict[str, Any]] = {
    # The reference model's numbers.
    # A setting given per model ({model: value}) takes the value of the model trained. Averaging the weights
    # (--average-weights) left the conv1d model level (within 0.1) or up to 1.7 points higher on all seven
    # dataset sizes of the benchmark, with a narrower spread over seeds on three; the lstm's results were mixed
    # (one of three lower), so it trains as the reference did (docs/results.md).
    # Adversarial training: see ADVERSARIAL_FRACTION.
    # The vocabulary's 1,022 words: half the most frequent, half the most informative about the label (see
    # preprocess.informative_vocabulary) instead of the 1,022 most frequent. It lifted the lstm and the conv1d
    # model by 4.6 and 5.0 points on emotion's 4,500 tweets (macro F1 +6.0, +8.2), 4.7 and 4.8 on all of them,
    # and 2.2 and 1.7 on 4,500 IMDB reviews; on SST-2's sentences and 4,500 of its phrase rows it left the lstm
    # level (+0.5, -0.2) and lifted the conv1d model by 0.2 and 1.1 (3 seeds each; docs/results.md).
    "seed": {"vocab_size": 1024, "vocabulary": "informative", "sequence_length": 64, "batch_size": 16, "epochs": 10,
             "lstm_pooling": "last", "ngrams": False, "average_weights": {"lstm": False, "conv1d": True},
             "adversarial": "auto"},
    # Max pooling over the lstm's outputs scored 0.2-2.8 points over the last output on SST-2's whole set and
    # sentences, IMDB and emotion, and 1.9 under it on 4,500 of SST-2's phrase rows (3 seeds each; docs/results.md).
    # The n-gram model's mix added 0.1-3.4 points to the lstm and 0.4-6.1 to the conv1d model on SST-2 (4,500
    # rows and the whole set), its sentences and IMDB's 4,500 reviews; on emotion, where the networks beat
    # 1-2-grams by 3-13 points, validation gave the lstm's mix little or no n-gram weight (docs/results.md).
    # Adversarial training ("auto", as under the seed preset, which this preset does not change) lifted this
    # preset's lstm by 1.2 and 2.5 points on 4,500 of SST-2's and of emotion's rows and left it level on SST-2's
    # sentences, where the network alone gained 1.2 but the n-gram model's mix already made up as much; it lifted
    # the conv1d model by 3.3 and 1.4 points on emotion's 4,500 rows and whole set and left it level (-0.4, -0.1)
    # on SST-2's sentences and 4,500 rows, where the mix gives its network little weight (the network alone: +5.7,
    # +1.5, +3.1, -0.7; 3 seeds each; docs/results.md).
    # Its vocabulary holds every word seen twice (five times: see SKIPGRAM_MIN_COUNT), so which words fill it
    # matters only past MAX_AUTO_VOCABULARY (IMDB's reviews): there the most frequent, as measured; the informative
    # choice was measured at 1,024 only.
    # The conv1d model trains as under the seed preset, in batches of 16 with its weights averaged: in batches of
    # 32 without averaging it scored 1.9 and 1.1 points lower on 4,500 of SST-2's rows and 1.8 and 1.4 lower on
    # emotion's (each change alone, 3 seeds; docs/results.md).
    "accurate": {"vocab_size": "auto", "vocabulary": "frequent", "sequence_length": "auto",
                 "batch_size": {"lstm": 32, "conv1d": 16}, "epochs": 15, "lstm_pooling": "max", "ngrams": True,
                 "average_weights": {"lstm": False, "conv1d": True}},
}
AUTO = "auto"
# Settings that shape the weights: a warm start keeps its bundle's.
AUTO_SETTINGS = ("vocab_size", "sequence_length")

# "auto" vocabulary: every word seen at least MIN_WORD_COUNT times in the training texts (a word seen once
# cannot be learned from: it is in one text), up to MAX_AUTO_VOCABULARY. The conv1d model whose word vectors a
# skip-gram learns from the training texts alone keeps only words seen SKIPGRAM_MIN_COUNT times (word2vec's own
# default): a rarer word's vector comes from too few contexts. With every word seen twice the preset's conv1d
# network scored 1.4 and 3.0 points under its score on the defaults' 1,024 words on 4,500 of SST-2's and emotion's
# rows; the words seen five times did better than 1,024 on SST-2's sentences (docs/results.md).
MIN_WORD_COUNT = 2
SKIPGRAM_MIN_COUNT = 5
MAX_AUTO_VOCABULARY = 20_000
# "auto" sequence length: long enough for LENGTH_COVERAGE of the training texts, rounded up to a multiple of 8,
# at most MAX_AUTO_LENGTH per model. The lstm reads one position after another, so its cost per text grows with
# the length it reads, and where texts are longer than its window, more and shorter windows did better: on 4,500
# IMDB reviews the preset's lstm alone scored 83.5 in 256-token windows, 85.2 in 64 and 85.9 in 32 (with the
# n-gram model 86.4, 86.5 and 86.4; on all 20,250, 89.9, 90.1 and 90.5, at about 1.6 times the fit time in 32
# as in 64; alone on all 20,250, 88.7 in 256 and 89.8 in 32, at about 3.5 times the fit time). On emotion's
# tweets 32 tokens, which cut some of them in two, left it level (whole set: 93.6 in 48, 93.9 in 32; 4,500 rows:
# 92.1 in 40, 91.8 in 32; 3 seeds each; docs/results.md), so 32 is its longest. The conv1d model reads all
# positions at once and a batch is padded only to its longest text, so its window holds the longest training
# text: cut into windows, a text is read as separate pieces, and texts to classify may be longer than those
# trained on (SST-2's phrases against its whole sentences, where windows for 95% of the phrases cost the conv1d
# model 2 points).
LENGTH_COVERAGE = {"lstm": 0.95, "conv1d": 1.0}
MAX_AUTO_LENGTH = {"lstm": 32, "conv1d": 512}
# The shortest window the conv1d stack reads: one output position's receptive field (models.receptive_field of
# models.conv1d_stack, which a test checks). A number here, so that settings are checked without loading Keras.
CONV1D_MIN_LENGTH = 19
# "auto" adversarial training: this fraction of the word vectors' length per model when there are at least
# ADVERSARIAL_MIN_TEXTS training texts and they are sentence-length (at least half of them within
# SENTENCE_WORDS words, the seed preset's window, where it was measured), else off: whatever the window, so
# that `--preset accurate`'s longer windows on reviews do not turn it on. On sentence-length data of 4,500 or
# more rows (SST-2's phrases, 4,500 and all; its sentences; emotion's 4,500 and all) it raised the lstm's
# accuracy by 1.4-2.7 points and the conv1d model's by 0.2-2.5; with fewer rows it gained less, and on 900 it
# cost the lstm 3.7 (SST-2's sentences) and 10.5 points (emotion), level at 2,000. With the lstm's first epoch
# unpushed (training.PLAIN_EPOCHS) it gains 2.3 and 1.7 at 2,000 and still loses at 1,500 (2.0, 1.2) and 900
# (3.2, 9.5). On IMDB's reviews, read in several windows each, it changed neither model (-0.2, -0.1) and took up
# to 2.5 times as long (3 seeds each; docs/results.md).
ADVERSARIAL_FRACTION = {"lstm": 0.1, "conv1d": 0.025}
ADVERSARIAL_MIN_TEXTS = 2_000
SENTENCE_WORDS = 64


class _Standardization(dict):
    """str.translate's table for layers.standardize, filled in as characters are met: a separator becomes a
    space, punctuation and the other dropped characters nothing, a pictograph a word of its own."""

    def __missing__(self, code: int) -> str | int | None:
        category = unicodedata.category(chr(code))
        if category == "Cc" or category.startswith("Z"):
            value: str | int | None = " "
        elif category.startswith("P") or category in ("Sc", "Sm", "Sk", "Cf") or code in (0xFE0E, 0xFE0F, 0xFFFD):
            value = None
        elif category == "So":
            value = f" {chr(code)} "
        else:
            value = code
        self[code] = value
        return value


_STANDARDIZATION = _Standardization()


def preset_settings(name: str) -> dict[str, Any]:
    """The settings preset `name` gives, for every setting that some preset sets."""
    return {**PRESETS["seed"], **PRESETS[name]}


def words(text: str) -> list[str]:
    """The words the vectorizer makes of `text` (layers.standardize: lower-cased, punctuation dropped, each emoji
    a word; split on whitespace)."""
    return text.lower().translate(_STANDARDIZATION).split()


def word_lengths_and_counts(texts: Iterable[str]) -> tuple[list[int], collections.Counter[str]]:
    """How many words each text has, and how often each word occurs in all of them (see `words`)."""
    counts: collections.Counter[str] = collections.Counter()
    lengths = []
    for text in texts:
        tokens = words(str(text))
        counts.update(tokens)
        lengths.append(len(tokens))
    return lengths, counts


def min_word_count(config) -> int:
    """How often a word must occur in the training texts for `config`'s "auto" vocabulary (see MIN_WORD_COUNT)."""
    learned_here = config.model == "conv1d" and config.word_vectors is None and config.unlabeled is None
    return SKIPGRAM_MIN_COUNT if learned_here else MIN_WORD_COUNT


def auto_settings(
    texts: Iterable[str],
    model: str,
    *,
    statistics: tuple[list[int], collections.Counter[str]] | None = None,
    min_count: int = MIN_WORD_COUNT,
) -> dict[str, int]:
    """The vocabulary size and sequence length the training `texts` call for: every word seen `min_count` times
    or more (see MIN_WORD_COUNT) and LENGTH_COVERAGE. `statistics`: the texts' `word_lengths_and_counts`, where
    already computed."""
    lengths, counts = word_lengths_and_counts(texts) if statistics is None else statistics
    frequent = sum(1 for n in counts.values() if n >= min_count)
    coverage = LENGTH_COVERAGE[model]
    length = int(np.ceil(np.quantile(lengths, coverage, method="inverted_cdf") / 8) * 8) if lengths else 8
    shortest = CONV1D_MIN_LENGTH if model == "conv1d" else 8
    return {
        "vocab_size": int(np.clip(frequent + 2, 3, MAX_AUTO_VOCABULARY)),  # + padding and [UNK]
        "sequence_length": int(np.clip(length, shortest, MAX_AUTO_LENGTH[model])),
    }


def auto_adversarial(texts: Sequence[str], model: str, *, lengths: Sequence[int] | None = None) -> float:
    """The adversarial fraction the training `texts` call for (see ADVERSARIAL_FRACTION). `lengths`: the texts'
    word counts, where already computed."""
    if len(texts) < ADVERSARIAL_MIN_TEXTS:
        return 0.0
    if lengths is None:
        lengths = [len(words(str(text))) for text in texts]
    sentences = np.quantile(lengths, 0.5, method="inverted_cdf") <= SENTENCE_WORDS  # the ceil(n/2)-th shortest
    return ADVERSARIAL_FRACTION[model] if sentences else 0.0


def resolve_auto(config, texts: Sequence[str], start=None):
    """`config` with every "auto" setting replaced: the vocabulary and sequence length by the starting bundle's
    values when warm-starting (its weights are shaped by them), else by what the training `texts` call for;
    adversarial training by what the `texts` call for."""
    auto = [name for name in AUTO_SETTINGS if getattr(config, name) == AUTO]
    # One pass over the texts serves both choices.
    statistics = word_lengths_and_counts(texts) if (auto and start is None) else None
    if auto:
        chosen = (
            {name: getattr(start.config, name) for name in AUTO_SETTINGS}
            if start is not None
            else auto_settings(texts, config.model, statistics=statistics, min_count=min_word_count(config))
        )
        config = dataclasses.replace(config, **{name: chosen[name] for name in auto})
    if config.adversarial == AUTO:
        lengths = statistics[0] if statistics is not None else None
        config = dataclasses.replace(config, adversarial=auto_adversarial(texts, config.model, lengths=lengths))
    return config
