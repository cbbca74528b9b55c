"""Training and loading on the real datasets beside the checkout (skipped where they are absent)."""

import dataclasses

import numpy as np
import pytest

from conftest import SHARED_DATA, needs_shared_data
from textpipe.config import Config
from textpipe.data import Split, load_labeled_data
from textpipe.evaluation import evaluate
from textpipe.training import train


def head(split, n, seed=0):
    index = np.random.default_rng(seed).permutation(len(split))[:n]
    return Split(split.texts[index], split.labels[index])


@pytest.mark.slow
@needs_shared_data
def test_default_lstm_learns_sst2_from_a_few_thousand_rows():
    data = load_labeled_data(SHARED_DATA / "sst2")
    assert (len(data.train), len(data.validation)) == (67349, 872)
    small = dataclasses.replace(data, train=head(data.train, 4000))
    bundle = train(Config(epochs=3, seed=1), small)
    result = evaluate(bundle, data.validation)
    # Chance is ~0.51 on this validation split; a few thousand short sentences get well past it (0.67-0.73
    # over seeds 1-3 after 3 epochs).
    assert result["accuracy"] > 0.65, result
    assert result["roc_auc"] > 0.72, result


@needs_shared_data
def test_shared_layouts_load_as_documented():
    imdb = load_labeled_data(SHARED_DATA / "imdb", seed=0)
    assert imdb.validation_from_train and (len(imdb.train), len(imdb.validation)) == (22500, 2500)
    emotion = load_labeled_data(SHARED_DATA / "emotion")
    assert len(emotion.class_names) == 6 and len(emotion.validation) == 2000
