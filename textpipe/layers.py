"""The layers that make a model's cost follow real tokens while its results ignore padding, and the two that
add a linear n-gram model beside the network (see models.build_ngrams).

    SplitWindows             texts of any length -> windows of `window` tokens, the empty ones left out
    AverageOverWindows       each window's class probabilities -> one row per text (their mean log-odds)
    TrimPadding              token ids padded to any width -> the width this batch's texts need
    MaskedLSTM               an LSTM that a GPU's cuDNN kernel runs even when a window holds no token
    TokenAveragePooling1D    average over the output positions real tokens reach, not over padding
    TokenMaxPooling1D        each channel's largest value over the positions of real tokens, not of padding
    NgramLogits              a linear model on a window's words and hashed word pairs (bigrams)
    MixProbabilities         two models' class probabilities -> one weighted geometric mean

and the vectorizer's standardization (`standardize`), raw text -> lower-cased words without punctuation.

All are registered with Keras under the package name "textpipe", so a saved model that holds them loads
wherever textpipe is imported (`load_bundle` does); `model.export()` writes a SavedModel that needs neither.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Characters that separate words, as a space does, besides the ASCII whitespace that tf.strings.split splits
# on: the other control characters (such as the stray C1 codes of text decoded with the wrong code page) and
# every other Unicode space (a no-break space would join two words into one). Written to leave ASCII
# whitespace alone: replacing every space by a space took longer than all the rest of the standardization.
SEPARATORS = r"[^\PZ ]|[^\P{Cc}\t\n\x0B\x0C\r]"
# Characters dropped: all punctuation, ASCII and Unicode (curly quotes and apostrophes, dashes, the ellipsis),
# the currency, math and modifier symbols (which hold the rest of ASCII's punctuation: $ + < = > | ~ ^ `, and
# emoji skin tones), invisible format characters (zero-width joiners), the emoji variation selectors and the
# replacement character that stands for undecodable bytes.
DROPPED = r"[\p{P}\p{Sc}\p{Sm}\p{Sk}\p{Cf}\x{FE0E}\x{FE0F}\x{FFFD}]"
# Characters that are a word each, wherever they stand: emoji and other pictographs.
SYMBOLS = r"\p{So}"


@keras.saving.register_keras_serializable(package="textpipe")
def standardize(texts: tf.Tensor) -> tf.Tensor:
    """Raw texts -> texts whose whitespace-separated words are the vectorizer's tokens: lower-cased (Unicode
    letters too), every punctuation mark dropped and each emoji a word of its own.

    On ASCII text it gives exactly what Keras' built-in "lower_and_strip_punctuation" gives. That one lower-cases
    ASCII letters and strips ASCII punctuation only, so in text from the web "don’t" (a curly apostrophe) was
    another word than "don't", “great” another than "great", and "great😍😍" one word instead of "great" and two
    emoji. presets.words applies the same rule in Python.
    """
    texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, SEPARATORS, " ")
    texts = tf.strings.regex_replace(texts, DROPPED, "")
    return tf.strings.regex_replace(texts, SYMBOLS, r" \0 ")


@keras.saving.register_keras_serializable(package="textpipe")
class TrimPadding(keras.layers.Layer):
    """Cut right-padded token ids (id 0 is padding) to the width the batch's longest text needs.

    The output width is the longest text's length plus `margin`, at least `min_length` and at most
    `max_length` (texts are truncated there), padded with 0 where the input is narrower. So a batch of short
    texts costs the model a few steps, not `max_length`, while every text keeps the positions it had.
    """

    def __init__(self, max_length: int, min_length: int = 1, margin: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not 1 <= min_length <= max_length or margin < 0:
            raise ValueError(f"need 1 <= min_length <= max_length and margin >= 0, got {min_length}, {max_length}, {margin}")
        self.max_length, self.min_length, self.margin = max_length, min_length, margin

    def call(self, ids):
        ids = ids[:, : self.max_length]
        longest = tf.reduce_max(tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=1))  # right-padded: count = length
        width = tf.clip_by_value(longest + self.margin, self.min_length, self.max_length)
        ids = ids[:, :width]
        return tf.pad(ids, [[0, 0], [0, width - tf.shape(ids)[1]]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None)

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length, "min_length": self.min_length,
                "margin": self.margin}


@keras.saving.register_keras_serializable(package="textpipe")
class MaskedLSTM(keras.layers.LSTM):
    """keras.layers.LSTM, for masks that may leave a row empty (an empty text's one window).

    cuDNN's LSTM kernel refuses a fully masked row: on a GPU, Keras fails the whole batch (in graph mode, as
    `fit` and prediction run). Here such a row reads its first position, which keeps the mask right-padded as
    cuDNN needs, and its output is then set to zeros: what Keras's generic kernel outputs for a fully masked
    row on a CPU. Only the output is corrected (the last step's, or every step's with return_sequences), so
    states are not returned and layers are not stateful.
    """

    def __init__(self, units, **kwargs):
        if kwargs.get("return_state") or kwargs.get("stateful"):
            raise ValueError("MaskedLSTM returns its output only: return_state and stateful are not supported")
        super().__init__(units, **kwargs)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if mask is None:
            return super().call(sequences, initial_state=initial_state, training=training)
        mask = tf.cast(mask, tf.bool)
        any_token = tf.reduce_any(mask, axis=1, keepdims=True)  # (batch, 1)
        first = (tf.range(tf.shape(mask)[1]) == 0)[None, :]
        outputs = super().call(sequences, initial_state=initial_state, mask=mask | (first & ~any_token),
                               training=training)
        if self.return_sequences:  # (batch, steps, units): a row's every step
            any_token = any_token[:, :, None]
        return outputs * tf.cast(any_token, outputs.dtype)


@keras.saving.register_keras_serializable(package="textpipe")
class TokenAveragePooling1D(keras.layers.Layer):
    """Average features over the positions real tokens reach; positions that saw only padding are left out.

    Called on [features, token_ids]: `features` (batch, steps, channels) come from a stack of 'valid'
    convolutions and poolings with total stride `stride` over `token_ids` (batch, length), right-padded
    with 0. Output position j starts at input position stride * j, so a text of n tokens reaches the first
    ceil(n / stride) positions. A text with no tokens pools to zeros.
    """

    def __init__(self, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride

    def call(self, inputs):
        features, ids = inputs
        lengths = tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=1)
        reached = tf.minimum((lengths + self.stride - 1) // self.stride, tf.shape(features)[1])
        mask = tf.sequence_mask(reached, tf.shape(features)[1], dtype=features.dtype)[:, :, None]
        total = tf.reduce_sum(features * mask, axis=1)
        return total / tf.cast(tf.maximum(reached, 1), features.dtype)[:, None]

    def compute_output_shape(self, input_shapes):
        features = input_shapes[0]
        return (features[0], features[2])

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="textpipe")
class TokenMaxPooling1D(keras.layers.Layer):
    """Each channel's largest value over the positions that hold a real token; padding is left out.

    Called on [features, token_ids]: `features` (batch, steps, channels) has one position per token of
    `token_ids` (batch, steps), right-padded with 0 (e.g. an LSTM's every output). A text with no tokens pools
    to zeros.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # it reads the LSTM's mask from the ids, and passes none on

    def compute_mask(self, inputs, previous_mask):
        return None  # one row per window: no positions left to mask

    def call(self, inputs):
        features, ids = inputs
        real = (ids != 0)[:, :, None]
        lowest = tf.constant(features.dtype.min, dtype=features.dtype)
        largest = tf.reduce_max(tf.where(real, features, lowest), axis=1)
        return tf.where(tf.reduce_any(real, axis=1), largest, tf.zeros_like(largest))

    def compute_output_shape(self, input_shapes):
        features = input_shapes[0]
        return (features[0], features[2])


def _windows(ids: tf.Tensor, window: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Right-padded ids (batch, width) cut into consecutive windows of `window` tokens.

    Returns the windows (batch * n, window), the real tokens in each (batch, n), and which windows a text
    is read through (batch, n): those holding a token, and always the first, so an empty text still gets
    a prediction (the model's answer to no words, as before windows existed).
    """
    width = tf.shape(ids)[1]
    n = tf.maximum((width + window - 1) // window, 1)
    ids = tf.pad(ids, [[0, 0], [0, n * window - width]])
    lengths = tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=1)
    tokens = tf.clip_by_value(lengths[:, None] - tf.range(n)[None, :] * window, 0, window)
    read = (tokens > 0) | (tf.range(n) == 0)[None, :]
    return tf.reshape(ids, [-1, window]), tokens, read


def split_windows(ids: tf.Tensor, window: int) -> tf.Tensor:
    """The windows (n, window) that the texts of right-padded `ids` (batch, width) are read through, in order."""
    windows, _, read = _windows(ids, window)
    return tf.boolean_mask(windows, tf.reshape(read, [-1]))


@keras.saving.register_keras_serializable(package="textpipe")
class SplitWindows(keras.layers.Layer):
    """Cut each text's token ids into windows of `window` tokens, the model's reading span, and stack the
    windows that hold tokens: (batch, width) -> (windows, window). A text no longer than `window` is one
    window, itself; AverageOverWindows puts the windows' predictions back together, one row per text.
    """

    def __init__(self, window: int, **kwargs):
        super().__init__(**kwargs)
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.window = window

    def call(self, ids):
        return split_windows(ids, self.window)

    def compute_output_shape(self, input_shape):
        return (None, self.window)

    def get_config(self):
        return {**super().get_config(), "window": self.window}


@keras.saving.register_keras_serializable(package="textpipe")
class AverageOverWindows(keras.layers.Layer):
    """Called on [window outputs (windows, classes), token ids (batch, width)]: one output per text from its
    windows' outputs. The windows must come from SplitWindows with the same `window`, on the same ids.

    `average` "log_odds": the windows' log-odds (a softmax's log-probabilities) are averaged, each window
    counting once, and turned back into probabilities; a window the model is sure of outweighs one it is not,
    and a short last window, often where a review gives its verdict, counts as much as a full one. Each
    window is one example in training, so each counts once here too. "tokens": the windows' probabilities
    averaged, each weighted by its real tokens (bundles saved before "log_odds" existed).
    A text of one window gets that window's output either way.
    """

    AVERAGES = ("log_odds", "tokens")

    def __init__(self, window: int, average: str = "tokens", **kwargs):
        super().__init__(**kwargs)
        if average not in self.AVERAGES:
            raise ValueError(f"average must be one of {', '.join(self.AVERAGES)}, got {average!r}")
        self.window, self.average = window, average

    def call(self, inputs):
        outputs, ids = inputs
        _, tokens, read = _windows(ids, self.window)
        batch = tf.shape(ids)[0]
        owner = tf.boolean_mask(tf.broadcast_to(tf.range(batch)[:, None], tf.shape(read)), read)
        if self.average == "tokens":
            weights = tf.cast(tf.boolean_mask(tf.maximum(tokens, 1), read), outputs.dtype)
            total = tf.math.unsorted_segment_sum(outputs * weights[:, None], owner, batch)
            return total / tf.math.unsorted_segment_sum(weights, owner, batch)[:, None]
        scores = tf.math.unsorted_segment_mean(_log_odds(outputs), owner, batch)
        return _probabilities(scores)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[1][0], input_shapes[0][1])

    def get_config(self):
        return {**super().get_config(), "window": self.window, "average": self.average}


# Probabilities are clipped to [EPSILON, 1 - EPSILON] before their logarithm: a model, or a window, that is
# sure cannot veto the others with an infinite log.
EPSILON = 1e-7


def _log_odds(probabilities: tf.Tensor) -> tf.Tensor:
    """A sigmoid's P(class 1) (one column) -> its log-odds; a softmax's probabilities -> their logarithms."""
    p = tf.clip_by_value(tf.cast(probabilities, tf.float32), EPSILON, 1 - EPSILON)
    if p.shape[-1] == 1:
        return tf.math.log(p) - tf.math.log1p(-p)
    return tf.math.log(p)


def _probabilities(scores: tf.Tensor) -> tf.Tensor:
    """The inverse of _log_odds, up to a constant per row: a mean of log-probabilities is renormalized."""
    return tf.sigmoid(scores) if scores.shape[-1] == 1 else tf.nn.softmax(scores, axis=-1)


@keras.saving.register_keras_serializable(package="textpipe")
class NgramLogits(keras.layers.Layer):
    """A linear model on the words (unigrams) and adjacent word pairs (bigrams) of each row of right-padded
    token ids: (rows, width) -> (rows, outputs) logits, the mean of the weights of the row's n-grams.

    A unigram's weights are looked up by its token id; a bigram's by its pair of ids hashed into `buckets`
    rows after the vocabulary's (collisions share weights). Padding (id 0) is no n-gram, so a row's logits do
    not depend on its width, and a row without tokens gets zeros; [UNK] (id 1) counts as a word, standing for
    the words outside the vocabulary. The table starts at zero, and its outputs are
    multiplied by `scale`: an optimizer whose steps suit a network's weights (RMSprop at 1e-3) then moves
    these logits as fast as a linear model needs.
    """

    def __init__(self, vocabulary: int, outputs: int, buckets: int, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if vocabulary < 1 or outputs < 1 or buckets < 1:
            raise ValueError(f"need vocabulary, outputs and buckets >= 1, got {vocabulary}, {outputs}, {buckets}")
        self.vocabulary, self.outputs, self.buckets, self.scale = vocabulary, outputs, buckets, scale

    def build(self, input_shape):
        self.table = self.add_weight(
            shape=(self.vocabulary + self.buckets, self.outputs), initializer="zeros", name="table"
        )

    def call(self, ids):
        ids = tf.cast(ids, tf.int64)
        real = ids != 0
        pairs = real[:, :-1] & real[:, 1:]
        bigrams = self.vocabulary + tf.math.floormod(ids[:, :-1] * self.vocabulary + ids[:, 1:], self.buckets)
        grams = tf.concat([ids, tf.where(pairs, bigrams, tf.zeros_like(bigrams))], axis=1)
        present = tf.cast(tf.concat([real, pairs], axis=1), self.compute_dtype)
        weights = tf.gather(tf.cast(self.table, self.compute_dtype), grams) * present[:, :, None]
        count = tf.maximum(tf.reduce_sum(present, axis=1, keepdims=True), 1)
        return self.scale * tf.reduce_sum(weights, axis=1) / count

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.outputs)

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "outputs": self.outputs,
                "buckets": self.buckets, "scale": self.scale}


@keras.saving.register_keras_serializable(package="textpipe")
class MixProbabilities(keras.layers.Layer):
    """Called on [probabilities of model A, probabilities of model B] (rows, classes): their geometric mean
    with weight `weight` on A and 1 - weight on B, renormalized. One column is a sigmoid's P(class 1): its
    log-odds are mixed, which is the same mean for two classes."""

    def __init__(self, weight: float, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {weight}")
        self.weight = float(weight)

    def call(self, inputs):
        a, b = (_log_odds(p) for p in inputs)  # clipped: a model that is sure cannot veto the other
        return _probabilities(self.weight * a + (1 - self.weight) * b)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}
