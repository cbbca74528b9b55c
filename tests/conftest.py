from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"real datasets not found at {SHARED_DATA} (only present in the development checkout)",
)

POSITIVE = ["great", "wonderful", "superb", "lovely", "brilliant", "delightful"]
NEGATIVE = ["awful", "terrible", "boring", "dreadful", "poor", "dull"]
FILLER = ["the", "film", "a", "story", "was", "it", "plot", "and", "really", "acting", "quite", "this", "show"]


def make_sentences(n: int, seed: int) -> tuple[list[str], list[int]]:
    """Short texts whose label is given by a single sentiment word among filler words.

    Lengths vary from 2 to 12 words, so most rows are mostly padding at sequence length 16:
    a model that does not mask padding stays near chance on them.
    """
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = rng.choices(FILLER, k=rng.randint(1, 11))
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label else NEGATIVE))
        texts.append(" ".join(words))
        labels.append(label)
    order = rng.sample(range(n), n)
    return [texts[i] for i in order], [labels[i] for i in order]


TINY_SETTINGS = dict(
    vocab_size=64, sequence_length=16, embedding_dim=16, lstm_units=16, batch_size=16, epochs=8, seed=7
)


@pytest.fixture(scope="session")
def tiny_data():
    from textpipe.data import LabeledData, Split

    def split(n, seed):
        texts, labels = make_sentences(n, seed)
        return Split(np.array(texts, dtype=object), np.array(labels, dtype=np.int64))

    return LabeledData(
        train=split(400, 1),
        validation=split(100, 2),
        test=split(200, 3),
        class_names=("negative", "positive"),
        text_column="text",
        label_column="label",
        validation_from_train=False,
    )


@pytest.fixture(scope="session")
def tiny_bundle(tiny_data):
    """One small LSTM trained once and shared by the tests that only read it."""
    from textpipe.config import Config
    from textpipe.training import train

    return train(Config(**TINY_SETTINGS), tiny_data)


@pytest.fixture(scope="session")
def saved_bundle(tiny_bundle, tmp_path_factory):
    from textpipe.bundle import save_bundle

    return save_bundle(tiny_bundle, tmp_path_factory.mktemp("bundles") / "tiny")
