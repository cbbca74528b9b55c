"""Which words moved a prediction: each word's contribution is the drop in the predicted class's probability
when that word is left out of the text.

Leaving a word out, rather than putting the vectorizer's [UNK] token in its place, keeps every variant a plain
text that goes through the bundle's own predict path (the exported model: raw strings in, probabilities out)
and that a user can type and check with `textpipe predict`. [UNK] is also not neutral: it stands for every
word outside the vocabulary and carries what the model learned about rare words. A text and all its variants
are predicted in one model call.

Words are the text's runs of characters between ASCII whitespace, shown as they are written: the model
lower-cases them and drops punctuation, so "Great!" is read as "great", and a run of punctuation alone is no
word. A run that holds more than one of the model's tokens ("great😍😍") is left out whole. The model reads
every word of a text, window by window. A bundle trained with long_texts "truncate" reads only the first
`sequence_length` tokens; leaving out a later word changes nothing, so those get a contribution of exactly 0
without a model call (`seen` is False).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Sequence

import numpy as np

from textpipe.bundle import as_text_array
from textpipe.embeddings import PADDING as PADDING_ID, UNKNOWN as UNKNOWN_ID

if TYPE_CHECKING:
    from textpipe.bundle import Bundle

# What tf.strings.split (the vectorizer's "whitespace" split) separates on: ASCII whitespace only.
CHUNK = re.compile(r"[^ \t\n\v\f\r]+")


@dataclasses.dataclass(frozen=True)
class WordContribution:
    word: str  # as written in the text, e.g. "Great!"
    start: int  # text[start:end] == word
    end: int
    position: int  # 0-based index among the text's words
    in_vocabulary: bool  # False: the model reads it as [UNK]
    seen: bool  # False: past sequence_length, cut off before the model
    contribution: float  # P(predicted class | text) - P(predicted class | text without this word)


@dataclasses.dataclass(frozen=True)
class Explanation:
    text: str
    predicted: str  # the class the model gives the whole text
    probability: float  # its probability
    words: tuple[WordContribution, ...]  # strongest first: by |contribution|, then by position

    def in_text_order(self) -> list[WordContribution]:
        return sorted(self.words, key=lambda w: w.position)

    def to_dict(self, top: int | None = None) -> dict:
        """Plain values, ready for JSON; only the `top` strongest words when given."""
        words = self.words if top is None else self.words[:top]
        return {
            "text": self.text,
            "predicted": self.predicted,
            "probability": self.probability,
            "words": [dataclasses.asdict(w) for w in words],
        }


def explain(bundle: Bundle, texts: Sequence[str]) -> list[Explanation]:
    """One Explanation per text, in the order given: the predicted class, its probability, and each word's
    contribution to it, strongest first."""
    texts = as_text_array(texts)
    vectorizer = bundle.vectorizer
    sequence_length = vectorizer.get_config().get("output_sequence_length")
    return [_explain_one(bundle, text, sequence_length) for text in texts]


def _explain_one(bundle: Bundle, text: str, sequence_length: int | None) -> Explanation:
    chunks = [(m.start(), m.end()) for m in CHUNK.finditer(text)]
    ids, tokens = _token_ids(bundle, [text[s:e] for s, e in chunks])
    first = np.cumsum(tokens) - tokens  # where each run's first token stands among the text's tokens
    words = [(s, e, int(i)) for (s, e), i, n in zip(chunks, ids, tokens) if n]  # punctuation alone: no token
    seen = sum(1 for p, n in zip(first, tokens) if n and (sequence_length is None or p < sequence_length))
    visible = words[:seen]
    variants = [text] + [text[:s] + text[e:] for s, e, _ in visible]
    probabilities = bundle.predict_proba(variants, batch_size=len(variants))
    best = int(probabilities[0].argmax())
    drops = probabilities[0, best] - probabilities[1:, best]
    contributions = [
        WordContribution(
            word=text[s:e], start=s, end=e, position=n, in_vocabulary=i != UNKNOWN_ID,
            seen=n < len(visible), contribution=float(drops[n]) if n < len(visible) else 0.0,
        )
        for n, (s, e, i) in enumerate(words)
    ]
    contributions.sort(key=lambda w: (-abs(w.contribution), w.position))
    return Explanation(text, bundle.class_names[best], float(probabilities[0, best]), tuple(contributions))


def _token_ids(bundle: Bundle, chunks: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The vocabulary id the model gives the first token of each whitespace-separated chunk (0: nothing is left
    of it once punctuation is dropped), and how many tokens each holds (at most the vectorizer's sequence
    length), found by the bundle's own vectorizer."""
    if not chunks:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ids = np.asarray(bundle.vectorizer(np.asarray(chunks, dtype=object)))
    if ids.ndim != 2 or not ids.shape[1]:
        return np.zeros(len(chunks), dtype=np.int64), np.zeros(len(chunks), dtype=np.int64)
    return ids[:, 0], (ids != PADDING_ID).sum(axis=1)
