"""Metrics computed inside Keras' fit, so that training can pick its best epoch by them."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="textpipe")
class MacroF1(keras.metrics.Metric):
    """Macro-averaged F1 of the predicted class (probability > 0.5 for one sigmoid output, else the argmax).

    Unlike accuracy, a model that never predicts a minority class scores low, and unlike the loss, it does
    not move with the confidence of predictions that stay right or wrong. Every class counts, as in
    `evaluation.evaluate`: one that is neither present nor predicted scores 0.
    """

    def __init__(self, n_classes: int, name: str = "macro_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.n_classes = n_classes
        shape = (max(n_classes, 2),)
        self.true_positives = self.add_variable(shape=shape, initializer="zeros", name="true_positives")
        self.predicted = self.add_variable(shape=shape, initializer="zeros", name="predicted")
        self.actual = self.add_variable(shape=shape, initializer="zeros", name="actual")

    def update_state(self, y_true, y_pred, sample_weight=None):
        k = self.true_positives.shape[0]
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        if y_pred.shape[-1] == 1:
            y_pred = ops.cast(ops.reshape(y_pred, (-1,)) > 0.5, "int32")
        else:
            y_pred = ops.argmax(y_pred, axis=-1)
        true = ops.one_hot(y_true, k, dtype=self.dtype)
        predicted = ops.one_hot(y_pred, k, dtype=self.dtype)
        if sample_weight is not None:
            weight = ops.reshape(ops.cast(sample_weight, self.dtype), (-1, 1))
            true, predicted = true * weight, predicted * weight
        self.true_positives.assign_add(ops.sum(true * predicted, axis=0))
        self.predicted.assign_add(ops.sum(predicted, axis=0))
        self.actual.assign_add(ops.sum(true, axis=0))

    def result(self):
        return ops.mean(ops.divide_no_nan(2.0 * self.true_positives, self.predicted + self.actual))

    def reset_state(self):
        for variable in (self.true_positives, self.predicted, self.actual):
            variable.assign(ops.zeros(variable.shape, variable.dtype))

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes}
