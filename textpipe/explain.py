"""Which words moved a prediction: each word's contribution is the drop in the predicted class's probability
when that word is left out of the text.

Leaving a word out, rather than putting the vectorizer's [UNK] token in its place, keeps every variant a plain
text that goes through the bundle's own predict path (the exported model: raw strings in, probabilities out)
and that a user can type and check with `textpipe predict`. [UNK] is also not neutral: it stands for every
word outside the vocabulary and carries what the model learned about rare words. A text and all its variants
are predicted in one model call.

Words are the model's tokens, shown as they are written in the text: the model splits on ASCII whitespace,
lower-cases and strips punctuation, so "Great!" is read as "great", and a run of punctuation alone is no word.
The model reads every word of a text, window by window. A bundle trained with long_texts "truncate" reads
only the first `sequence_length` words; leaving out a later one changes nothing, so those get a contribution
of exactly 0 without a model call (`seen` is False).
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
    ids = _first_token_ids(bundle, [text[s:e] for s, e in chunks])
    words = [(s, e, int(i)) for (s, e), i in zip(chunks, ids) if i != PADDING_ID]  # punctuation alone: no token
    visible = words if sequence_length is None else words[:sequence_length]
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


def _first_token_ids(bundle: Bundle, chunks: list[str]) -> np.ndarray:
    """The vocabulary id the model gives each whitespace-separated chunk (0: nothing is left of it once
    punctuation is stripped), found by the bundle's own vectorizer."""
    if not chunks:
        return np.zeros(0, dtype=np.int64)
    ids = np.asarray(bundle.vectorizer(np.asarray(chunks, dtype=object)))
    return ids[:, 0] if ids.ndim == 2 and ids.shape[1] else np.zeros(len(chunks), dtype=np.int64)
