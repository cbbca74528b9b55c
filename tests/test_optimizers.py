"""RowwiseRMSprop: Keras's RMSprop steps, done on the rows of a word table that a batch reads."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_SETTINGS
from textpipe.config import Config
from textpipe.models import build_model
from textpipe.optimizers import RowwiseRMSprop


def _batches(vocabulary: int, steps: int, seed: int = 0):
    """Batches of ids that read a few words often (twice in a row, too) and the rest seldom: most rows go
    many steps unread between reads."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocabulary, size=(steps * 8, 6))
    x[:, :2] = rng.integers(0, 4, size=(steps * 8, 2))
    y = (x[:, 2] % 2).astype("float32")
    return x, y


def _bag_of_words(optimizer: keras.optimizers.Optimizer, vocabulary: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    ids = keras.Input((None,), dtype="int64")
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(vocabulary, 8)(ids))
    model = keras.Model(ids, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    return model


@pytest.mark.parametrize("rho", [0.9, 0.5])
def test_steps_match_keras_rmsprop(rho):
    vocabulary = 300
    x, y = _batches(vocabulary, steps=60)
    trained = []
    for optimizer in (keras.optimizers.RMSprop(0.01, rho=rho), RowwiseRMSprop(0.01, rho=rho)):
        model = _bag_of_words(optimizer, vocabulary)
        start = model.get_weights()
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        trained.append(model.get_weights())
    keras_weights, rowwise_weights = trained
    assert not np.allclose(keras_weights[0], start[0])  # the table learned
    for a, b in zip(keras_weights, rowwise_weights):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_only_the_rows_read_move():
    vocabulary = 50
    model = _bag_of_words(RowwiseRMSprop(0.01), vocabulary)
    table = model.layers[1].embeddings
    before = table.numpy()
    model.train_on_batch(np.array([[3, 3, 7], [7, 9, 9]]), np.array([[1.0], [0.0]]))
    moved = np.flatnonzero(np.any(table.numpy() != before, axis=1))
    assert moved.tolist() == [3, 7, 9]


def test_an_adversarial_step_matches_keras_rmsprop():
    """The adversarial classifier passes each row's summed gradient once; its steps are Keras's."""
    config = Config(**{**TINY_SETTINGS, "dropout": 0.0, "adversarial": 0.3})
    rng = np.random.default_rng(0)
    x = np.zeros((48, 10), dtype=np.int64)
    for row, length in enumerate(rng.integers(1, 11, size=48)):
        x[row, :length] = rng.integers(2, config.vocab_size, size=length)
    y = rng.integers(0, 2, size=(48, 1)).astype(np.float32)
    trained = []
    for optimizer in (keras.optimizers.RMSprop(0.01), RowwiseRMSprop(0.01)):
        keras.utils.set_random_seed(1)
        model = build_model(config, 2)
        assert isinstance(model.optimizer, RowwiseRMSprop)  # what training uses
        model.compile(optimizer=optimizer, loss="binary_crossentropy")
        initial = model.get_weights()
        for start in range(0, 48, 8):
            model.train_on_batch(x[start : start + 8], y[start : start + 8])
        trained.append(model.get_weights())
    assert all(not np.allclose(w, w0) for w, w0 in zip(trained[1], initial))  # every weight moved
    for a, b in zip(*trained):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_dense_gradients_take_keras_step():
    variable = keras.Variable(np.ones((4, 3), dtype="float32"))
    reference = keras.Variable(np.ones((4, 3), dtype="float32"))
    gradient = tf.constant(np.arange(12, dtype="float32").reshape(4, 3))
    for optimizer, weights in ((RowwiseRMSprop(0.1), variable), (keras.optimizers.RMSprop(0.1), reference)):
        for _ in range(3):
            optimizer.apply_gradients([(gradient, weights)])
    np.testing.assert_array_equal(variable.numpy(), reference.numpy())
