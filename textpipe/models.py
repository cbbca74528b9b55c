"""The classifiers. They take right-padded token ids, not text.

Both accept texts of any length. They read `sequence_length` tokens at a time: a longer text is cut into
windows of that many tokens (SplitWindows), each window is classified, and the text gets the mean of its
windows' log-odds, each window counting once (AverageOverWindows). A TrimPadding layer cuts every
batch of windows to what its longest window needs, so the work follows real tokens, and neither model's
output for a text depends on how much padding its batch carries.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from textpipe.config import Config
from textpipe.layers import (
    AverageOverWindows, MaskedLSTM, MixProbabilities, NgramLogits, SplitWindows, TokenAveragePooling1D,
    TokenMaxPooling1D, TrimPadding,
)
from textpipe.metrics import MacroF1
from textpipe.optimizers import RowwiseRMSprop
from textpipe.presets import AUTO


def build_model(
    config: Config, n_classes: int, word_vectors: np.ndarray | None = None, *, fixed_length: bool = False
) -> keras.Model:
    """Build and compile the model `config.model` names, with a head for `n_classes` classes.

    The conv1d model reads words through `word_vectors`, a (vocabulary, word_vector_dim) table that it starts
    from (and fine-tunes unless config.fine_tune_word_vectors is False); the lstm's Embedding starts from it
    when given. `fixed_length` pads every batch to
    sequence_length instead of cutting it to its longest text, as textpipe 0.1 did: the same results at a
    higher cost, kept as the baseline benchmarks compare against.
    Call this inside the training strategy's scope, so that weights and optimizer state live on its replicas.
    """
    previous = keras.mixed_precision.dtype_policy()
    if config.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        if config.model == "conv1d":
            model = build_conv1d(config, n_classes, word_vectors, fixed_length)
        else:
            model = build_lstm(config, n_classes, fixed_length, word_vectors)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)  # a global setting: leave it as it was
    compile_model(model, config, n_classes)
    return model


def build_lstm(
    config: Config, n_classes: int, fixed_length: bool = False, word_vectors: np.ndarray | None = None
) -> keras.Model:
    """Token ids -> windows -> Embedding (starting from `word_vectors` when given) -> LSTM (its last output, or
    with lstm_pooling "max" each unit's largest output over the tokens) -> head -> average over each text's
    windows."""
    if word_vectors is not None and word_vectors.shape[1] != config.embedding_dim:
        raise ValueError(f"the lstm's Embedding is {config.embedding_dim} wide; word vectors are {word_vectors.shape[1]}")
    shortest = config.sequence_length if fixed_length else 1
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    windows = SplitWindows(config.sequence_length, name="windows")(ids)
    trimmed = TrimPadding(config.sequence_length, min_length=shortest, name="trim_padding")(windows)
    # mask_zero: padding (id 0) follows each text; unmasked, the LSTM would read the padding after a short text
    # and forget what came before it, and its output would change with the batch's width.
    embedding = keras.layers.Embedding(config.vocab_size, config.embedding_dim, mask_zero=True, name="embedding")
    # Default activations and no recurrent dropout: Keras runs this layer on the fused cuDNN kernel when a GPU
    # is present. That kernel needs a right-padded mask with no empty row, or the batch fails: MaskedLSTM reads
    # an empty text's row once and zeroes its output (see layers.py).
    if config.lstm_pooling == "max":
        # Each unit's largest output over the window's tokens: what the window says anywhere in it reaches
        # the head in one step, instead of through every later step of the LSTM.
        x = MaskedLSTM(config.lstm_units, return_sequences=True)(embedding(trimmed))
        x = TokenMaxPooling1D(name="max_over_tokens")([x, trimmed])
    else:
        x = MaskedLSTM(config.lstm_units)(embedding(trimmed))
    x = keras.layers.Dropout(config.dropout)(x)
    x = classification_head(n_classes)(x)
    model = classifier_model(ids, average_over_windows(config)([x, ids]), config, "embedding")
    if word_vectors is not None:
        # Rows past the vocabulary learned (smaller than vocab_size on little text) are never read.
        table = np.zeros((config.vocab_size, config.embedding_dim), dtype=np.float32)
        table[: len(word_vectors)] = word_vectors[: config.vocab_size]
        embedding.set_weights([table])
    return model


# The n-gram model: word pairs are hashed into this many rows (a prime, so that pairs spread over all of them)
# after the vocabulary's; and its logits are scaled by NGRAM_SCALE (see NgramLogits), which made a linear model
# on SST-2 and emotion subsets learn within a few epochs at the network's learning rate.
NGRAM_BUCKETS = 262_139
NGRAM_SCALE = 100.0


def build_ngrams(config: Config, n_classes: int) -> keras.Model:
    """Token ids -> windows -> a linear model on each window's words and word pairs -> sigmoid or softmax ->
    average over each text's windows: a bag of n-grams read through the same windows as the network, so that
    both see the same text."""
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    windows = SplitWindows(config.sequence_length, name="windows")(ids)
    trimmed = TrimPadding(config.sequence_length, name="trim_padding")(windows)
    width = 1 if n_classes == 2 else n_classes
    logits = NgramLogits(config.vocab_size, width, NGRAM_BUCKETS, NGRAM_SCALE, dtype="float32", name="ngram_logits")(trimmed)
    activation = "sigmoid" if n_classes == 2 else "softmax"
    x = keras.layers.Activation(activation, dtype="float32", name="probabilities")(logits)
    model = keras.Model(ids, average_over_windows(config)([x, ids]), name="ngrams")
    compile_model(model, dataclasses.replace(config, average_weights=False), n_classes)
    return model


def mixed_classifier(network: keras.Model, ngrams: keras.Model, weight: float) -> keras.Model:
    """One classifier of uncompiled copies of `network` and `ngrams` that outputs the geometric mean of their
    probabilities, `weight` on the network's (see MixProbabilities)."""
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    network, ngrams = uncompiled_copy(network, "network"), uncompiled_copy(ngrams, "ngrams")
    mixed = MixProbabilities(weight, dtype="float32", name="mix")([network(ids), ngrams(ids)])
    return keras.Model(ids, mixed, name="classifier")


def uncompiled_copy(model: keras.Model, name: str | None = None) -> keras.Model:
    """A copy of `model` with the same weights and no optimizer (clone_model would compile it too)."""
    config = model.get_config()
    if name is not None:
        config = {**config, "name": name}
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def conv1d_stack() -> list[keras.layers.Layer]:
    """The reference Conv1D/MaxPooling1D stack, every layer 'valid' (no padding of its own)."""
    return [
        keras.layers.Conv1D(64, 3, activation="relu"),
        keras.layers.Conv1D(64, 3, activation="relu"),
        keras.layers.MaxPooling1D(3),
        keras.layers.Conv1D(128, 3, activation="relu"),
        keras.layers.Conv1D(128, 3, activation="relu"),
    ]


def build_conv1d(
    config: Config, n_classes: int, word_vectors: np.ndarray | None, fixed_length: bool = False
) -> keras.Model:
    """Token ids -> windows -> word vectors (fine-tuned, or frozen) -> the convolution stack -> average over
    real tokens -> head -> average over each text's windows."""
    if word_vectors is None or word_vectors.ndim != 2 or word_vectors.shape[1] != config.word_vector_dim:
        shape = None if word_vectors is None else word_vectors.shape
        raise ValueError(f"the conv1d model needs a (vocabulary, {config.word_vector_dim}) word-vector table, got {shape}")
    stack = conv1d_stack()
    field, stride = receptive_field(stack)
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    windows = SplitWindows(config.sequence_length, name="windows")(ids)
    # Pad past the longest window by the stack's receptive field: every output position a real token reaches
    # then sees the same inputs however wide the batch is.
    shortest = config.sequence_length if fixed_length else field
    trimmed = TrimPadding(config.sequence_length, min_length=shortest, margin=field - 1, name="trim_padding")(windows)
    table = keras.layers.Embedding(*word_vectors.shape, trainable=config.fine_tune_word_vectors, name="word_vectors")
    x = table(trimmed)
    for layer in stack:
        x = layer(x)
    # The seed's GlobalAveragePooling1D would average over padding too, so a text's score would depend on
    # its batch's width (and, at a fixed width, shrink towards the padding's output for short texts); like
    # the lstm's mask, the average covers only the positions that real tokens reach.
    x = TokenAveragePooling1D(stride, name="average_over_tokens")([x, trimmed])
    x = keras.layers.Dropout(config.dropout)(x)
    x = classification_head(n_classes)(x)
    model = classifier_model(ids, average_over_windows(config)([x, ids]), config, "word_vectors")
    model.get_layer("word_vectors").set_weights([np.asarray(word_vectors, dtype=np.float32)])
    return model


def receptive_field(layers: list[keras.layers.Layer]) -> tuple[int, int]:
    """(inputs one output position sees, input steps between neighbouring output positions) of a stack of
    'valid' Conv1D/MaxPooling1D layers."""
    field, stride = 1, 1
    for layer in layers:
        size = layer.kernel_size[0] if isinstance(layer, keras.layers.Conv1D) else layer.pool_size[0]
        field += (size - 1) * stride
        stride *= layer.strides[0]
    return field, stride


def classifier_model(ids, outputs, config: Config, table: str) -> keras.Model:
    """The classifier from `ids` to `outputs`, reading words through the Embedding layer named `table`: an
    AdversarialClassifier when config.adversarial is a positive fraction, else a plain functional model.
    training.train settles adversarial="auto" from the training texts first; a model built without them trains
    plainly."""
    if config.adversarial and config.adversarial != AUTO:
        return AdversarialClassifier(ids, outputs, epsilon=config.adversarial, table=table, name="classifier")
    return keras.Model(ids, outputs, name="classifier")


def inference_model(classifier: keras.Model) -> keras.Model:
    """A plain functional model over `classifier`'s layers and weights (no copy): what is saved and served,
    without the training step of an AdversarialClassifier."""
    if isinstance(classifier, AdversarialClassifier):
        return keras.Model(classifier.inputs, classifier.outputs, name=classifier.name)
    return classifier


class AdversarialClassifier(keras.Model):
    """A functional classifier that also trains on adversarial examples: each step fits the batch as it is and
    again with the word vectors it reads pushed in the direction that raises its loss most, and applies the
    sum of both gradients. The push is `epsilon` times as long as those vectors (L2 norms over all the rows
    the batch reads), so it means the same for a table of any scale: learned from scratch, by skip-gram, or
    read from a file. This is the fast gradient method on word embeddings (Miyato, Dai and Goodfellow, 2017,
    "Adversarial training methods for semi-supervised text classification"): a word's neighbourhood in the
    table must classify as the word does, which regularizes a network trained on little text.

    For its first `plain_steps` optimizer steps the push is zero (each step still fits the batch twice, with
    Dropout's masks drawn afresh): training.train sets them to one epoch when the table starts random (see
    training.PLAIN_EPOCHS).

    Only training changes: inference_model gives the same layers as a plain model to save.
    """

    def __init__(self, inputs, outputs, *, epsilon: float, table: str, **kwargs):
        super().__init__(inputs, outputs, **kwargs)
        self.epsilon = float(epsilon)
        self.table_name = table
        self.plain_steps = 0  # read when fit() traces the training step

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        table = self.get_layer(self.table_name).embeddings
        weights = list(self.trainable_variables)
        # A frozen table (conv1d --freeze-word-vectors) is pushed too; only its gradient is not applied.
        sources = weights if table.trainable else weights + [table]
        with tf.GradientTape() as tape:
            predictions = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=predictions, sample_weight=sample_weight, training=True)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, sources)
        position = next(i for i, v in enumerate(sources) if v is table)  # not .index: == compares values
        push = adversarial_push(tf.convert_to_tensor(table), gradients[position], self.epsilon)
        if self.plain_steps:
            push = tf.IndexedSlices(
                push.values * tf.cast(self.optimizer.iterations >= self.plain_steps, push.values.dtype),
                push.indices, push.dense_shape,
            )

        def value(variable):
            if variable is table:  # a copy of the table with the rows read pushed
                return tf.tensor_scatter_nd_add(tf.convert_to_tensor(variable), push.indices[:, None], push.values)
            return tf.convert_to_tensor(variable)

        pushed = [value(v) for v in self.trainable_variables]
        with tf.GradientTape() as tape:
            tape.watch(pushed)
            adversarial, updated = self.stateless_call(
                pushed, [value(v) for v in self.non_trainable_variables], x, training=True
            )
            adversarial_loss = self.compute_loss(
                x=x, y=y, y_pred=adversarial, sample_weight=sample_weight, training=True
            )
            adversarial_scaled = self.optimizer.scale_loss(adversarial_loss)
        adversarial_gradients = tape.gradient(adversarial_scaled, pushed)
        for variable, new in zip(self.non_trainable_variables, updated):
            if variable is not table:  # Dropout's seeds move on, so the next step draws other masks
                variable.assign(new)
        self.optimizer.apply_gradients(
            (_sum(a, b), v) for a, b, v in zip(gradients, adversarial_gradients, weights) if a is not None
        )
        # The loss on the batch as it is, as without adversarial training. Under a strategy each replica's loss
        # is divided by the number of replicas (for the sum of their gradients); the logged loss is not.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss * replicas, sample_weight=tf.shape(x)[0])
        return self.compute_metrics(x, y, predictions, sample_weight=sample_weight)


def adversarial_push(table: tf.Tensor, gradient, epsilon: float) -> tf.IndexedSlices:
    """The push AdversarialClassifier gives a word-vector `table`, as the rows it moves (each once): along the
    loss's `gradient` with respect to the table (the rows a batch did not read have none), `epsilon` times as
    long as the rows that have one."""
    gradient = _rows(gradient)
    read = tf.cast(tf.reduce_any(gradient.values != 0, axis=1, keepdims=True), table.dtype)
    length = epsilon * tf.norm(tf.gather(table, gradient.indices) * read)
    values = tf.stop_gradient(length * gradient.values / (tf.norm(gradient.values) + 1e-12))
    return tf.IndexedSlices(values, gradient.indices, tf.shape(table, out_type=gradient.indices.dtype))


def _rows(gradient) -> tf.IndexedSlices:
    """`gradient` as rows, each row once (an Embedding's gradient comes as IndexedSlices with a row per word
    read, a word read twice twice)."""
    if not isinstance(gradient, tf.IndexedSlices):
        gradient = tf.convert_to_tensor(gradient)
        shape = tf.shape(gradient, out_type=tf.int64)
        return tf.IndexedSlices(gradient, tf.range(shape[0]), shape)
    rows, slot = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, slot, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, gradient.dense_shape)


def _sum(a, b):
    """The sum of two gradients of one weight: the rows of both when both come as rows, else dense. Either way
    the optimizer sees each row's total once, so its step is what it is for the dense sum."""
    if isinstance(a, tf.IndexedSlices) and isinstance(b, tf.IndexedSlices):
        both = tf.IndexedSlices(
            tf.concat([a.values, b.values], 0), tf.concat([a.indices, b.indices], 0), a.dense_shape
        )
        return _rows(both)
    return tf.convert_to_tensor(a) + tf.convert_to_tensor(b)


def average_over_windows(config: Config) -> AverageOverWindows:
    # float32, like the head: its averages are the probabilities every caller sees.
    return AverageOverWindows(
        config.sequence_length, average="log_odds", dtype="float32", name="average_over_windows"
    )


def classification_head(n_classes: int) -> keras.layers.Dense:
    """One sigmoid unit for two classes (the probability of class 1), else a softmax over all classes.

    Always float32: under mixed precision a float16 softmax/sigmoid loses the small probabilities.
    """
    if n_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probabilities")
    return keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")


# With config.average_weights, the weights are averaged over about this many of the last steps (an exponential
# moving average, momentum 1 - 1/AVERAGE_STEPS), or over one epoch's steps when an epoch has fewer.
AVERAGE_STEPS = 100


def compile_model(model: keras.Model, config: Config, n_classes: int) -> None:
    loss = "binary_crossentropy" if n_classes == 2 else "sparse_categorical_crossentropy"
    model.compile(
        optimizer=RowwiseRMSprop(
            learning_rate=config.learning_rate, use_ema=config.average_weights, ema_momentum=1 - 1 / AVERAGE_STEPS
        ),
        loss=loss,
        metrics=["accuracy", MacroF1(n_classes)],
    )
