"""RMSprop that updates a word table only in the rows a batch reads, with the same arithmetic as Keras's own."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="textpipe")
class RowwiseRMSprop(keras.optimizers.RMSprop):
    """keras.optimizers.RMSprop, with the step for a gradient that comes as rows (tf.IndexedSlices: an
    Embedding's, or any other gather's) done on those rows alone.

    Keras's own step recomputes the moving average of squared gradients, and its square root, for every row of
    the table on every step: on a 20,000-word table that is most of an lstm step's cost beyond a 1,024-word one.
    A row the batch does not read has no gradient, so its weights stay as they are and all that changes is its
    average, which decays by `rho`. This optimizer keeps, per row, the step its average was last brought up to
    date, and applies the decays a row missed (rho to the power of their number) when a batch next reads it:
    the weights follow Keras's steps to float rounding. Like Keras's step for rows, it adds the squares of a
    row's gradient slices (a word read twice in a batch adds two squares), and the row moves by their sum scaled
    as Keras scales it.

    Dense gradients, momentum and the centered variant take Keras's own step.
    """

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # Per row of each variable: the number of steps its moving average has seen.
        self._rows_brought_up_to = [
            self.add_variable(
                (variable.shape[0],), initializer="zeros", dtype="int64",
                name=f"{variable.path.replace('/', '_')}_rows_brought_up_to",
            )
            if len(variable.shape) >= 1
            else None
            for variable in variables
        ]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        seen = self._rows_brought_up_to[index]
        if not isinstance(gradient, tf.IndexedSlices) or self.momentum > 0 or self.centered or seen is None:
            return super().update_step(gradient, variable, learning_rate)
        rows, slot = tf.unique(gradient.indices)
        count = tf.shape(rows)[0]
        values = tf.cast(gradient.values, variable.dtype)
        step = tf.cast(self.iterations, "int64") + 1  # the step being taken, counting from 1
        missed = tf.cast(step - tf.gather(seen.value, rows), variable.dtype)
        decay = tf.reshape(tf.pow(tf.cast(self.rho, variable.dtype), missed), [-1] + [1] * (len(variable.shape) - 1))
        velocity = self._velocities[index]
        average = decay * tf.gather(velocity.value, rows) + (1 - self.rho) * tf.math.unsorted_segment_sum(
            tf.square(values), slot, count
        )
        self.assign(velocity, tf.IndexedSlices(average, rows))
        self.assign(seen, tf.IndexedSlices(tf.fill([count], step), rows))
        lr = tf.cast(learning_rate, variable.dtype)
        total = tf.math.unsorted_segment_sum(values, slot, count)
        self.assign_sub(variable, tf.IndexedSlices(lr * total / tf.sqrt(average + self.epsilon), rows))
