"""The classifiers, each written as the list of its layers. They take padded token ids, not text."""

from __future__ import annotations

import keras

from textpipe.config import Config


def build_model(config: Config, n_classes: int) -> keras.Model:
    """Build and compile the model `config.model` names, with a head for `n_classes` classes.

    Call it inside the training strategy's scope, so that weights and optimizer state live on its replicas.
    """
    builders = {"lstm": build_lstm, "conv1d": build_conv1d}
    previous = keras.mixed_precision.dtype_policy()
    if config.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = builders[config.model](config, n_classes)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)  # a global setting: leave it as it was
    compile_model(model, config, n_classes)
    return model


def build_lstm(config: Config, n_classes: int) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(config.sequence_length,), dtype="int64", name="token_ids"),
            # mask_zero: TextVectorization pads with id 0 at the end; unmasked, the LSTM would read
            # dozens of padding steps after a short text and forget what came before them.
            keras.layers.Embedding(config.vocab_size, config.embedding_dim, mask_zero=True),
            # Default activations, no recurrent dropout, right-padded mask: the conditions under which
            # Keras runs this layer on the fused cuDNN kernel when a GPU is present.
            keras.layers.LSTM(config.lstm_units),
            keras.layers.Dropout(config.dropout),
            classification_head(n_classes),
        ],
        name="classifier",
    )


def build_conv1d(config: Config, n_classes: int) -> keras.Model:
    """Reads sequences of word vectors (the pipeline looks them up), not token ids."""
    return keras.Sequential(
        [
            keras.Input(shape=(config.sequence_length, config.word_vector_dim), name="word_vectors"),
            keras.layers.Conv1D(64, 3, activation="relu"),
            keras.layers.Conv1D(64, 3, activation="relu"),
            keras.layers.MaxPooling1D(3),
            keras.layers.Conv1D(128, 3, activation="relu"),
            keras.layers.Conv1D(128, 3, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dropout(config.dropout),
            classification_head(n_classes),
        ],
        name="classifier",
    )


def conv1d_min_length() -> int:
    """Shortest input the conv1d stack accepts: two 3-wide convolutions, pool by 3, two more convolutions."""
    after_pool = 2 + 2 + 1  # the last two convolutions need 5 steps to leave one
    return 3 * after_pool + 4  # the first two convolutions eat 4 steps before the pool


def classification_head(n_classes: int) -> keras.layers.Dense:
    """One sigmoid unit for two classes (the probability of class 1), else a softmax over all classes.

    Always float32: under mixed precision a float16 softmax/sigmoid loses the small probabilities.
    """
    if n_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probabilities")
    return keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")


def compile_model(model: keras.Model, config: Config, n_classes: int) -> None:
    loss = "binary_crossentropy" if n_classes == 2 else "sparse_categorical_crossentropy"
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=config.learning_rate),
        loss=loss,
        metrics=["accuracy"],
    )
