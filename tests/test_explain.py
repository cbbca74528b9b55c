"""Word contributions: the drop in the predicted class's probability when a word is left out."""

import dataclasses
import json
import time

import numpy as np
import pytest

from conftest import TINY_SETTINGS
from textpipe.cli import main
from textpipe.config import Config
from textpipe.errors import DataError
from textpipe.explain import explain
from textpipe.training import train


def without(text, word):
    return text[: word.start] + text[word.end :]


def test_leaving_out_the_strongest_word_lowers_the_probability_by_its_contribution(tiny_bundle, tiny_data):
    for text in tiny_data.test.texts[:20]:
        (e,) = explain(tiny_bundle, [text])
        best = tiny_bundle.class_names.index(e.predicted)
        assert e.probability == pytest.approx(tiny_bundle.predict_proba([text])[0, best], abs=1e-6)
        strongest = max(e.words, key=lambda w: w.contribution)
        assert strongest.contribution > 0
        # The text without the word, spaced the usual way, as a user would type it.
        rest = " ".join(w.word for w in e.in_text_order() if w is not strongest)
        dropped = e.probability - tiny_bundle.predict_proba([rest])[0, best]
        assert dropped == pytest.approx(strongest.contribution, abs=1e-5)
        assert without(text, strongest) != text


def test_the_sentiment_word_is_the_strongest(tiny_bundle):
    (e,) = explain(tiny_bundle, ["the film was really quite wonderful and the plot"])
    assert e.predicted == "positive"
    assert e.words[0].word == "wonderful" and e.words[0].contribution > 0.05


def test_strongest_first_and_every_word_once(tiny_bundle, tiny_data):
    for e in explain(tiny_bundle, tiny_data.test.texts[:10]):
        strengths = [abs(w.contribution) for w in e.words]
        assert strengths == sorted(strengths, reverse=True)
        assert sorted(w.position for w in e.words) == list(range(len(e.text.split())))


def test_words_are_the_models_tokens_as_written(tiny_bundle):
    text = "The  film was GREAT!!, really... -- zyzzyva\twonderful"
    (e,) = explain(tiny_bundle, [text])
    words = e.in_text_order()
    assert [w.word for w in words] == ["The", "film", "was", "GREAT!!,", "really...", "zyzzyva", "wonderful"]
    assert all(text[w.start : w.end] == w.word for w in words)
    assert [w.in_vocabulary for w in words] == [True, True, True, True, True, False, True]
    # As many words as the vectorizer gives tokens ("--" is punctuation only: no token).
    ids = np.asarray(tiny_bundle.vectorizer([text]))[0]
    assert len(words) == int((ids != 0).sum())
    assert e.predicted == "positive" and e.words[0].word in ("GREAT!!,", "wonderful")


def test_words_past_the_first_window_count(tiny_bundle):
    length = tiny_bundle.config.sequence_length  # 16: the text below is read in two windows
    text = " ".join(["awful"] + ["film"] * (length - 1) + ["wonderful", "superb", "lovely"])
    (e,) = explain(tiny_bundle, [text])
    late = [w for w in e.in_text_order() if w.position >= length]
    assert [w.word for w in late] == ["wonderful", "superb", "lovely"] and all(w.seen for w in e.words)
    best = tiny_bundle.class_names.index(e.predicted)
    left_out = tiny_bundle.predict_proba([without(text, late[1])])[0, best]
    assert left_out == pytest.approx(e.probability - late[1].contribution, abs=1e-6)
    assert abs(late[1].contribution) > 1e-4


def test_words_past_sequence_length_are_cut_off_and_count_zero_when_truncating(tiny_data):
    bundle = train(Config(**{**TINY_SETTINGS, "long_texts": "truncate", "epochs": 2}), tiny_data)
    length = bundle.config.sequence_length
    text = " ".join(["awful"] + ["film"] * (length - 1) + ["wonderful", "superb", "lovely"])
    (e,) = explain(bundle, [text])
    late = [w for w in e.in_text_order() if w.position >= length]
    assert [w.word for w in late] == ["wonderful", "superb", "lovely"]
    assert all(not w.seen and w.contribution == 0.0 for w in late)
    assert all(w.seen for w in e.words if w.position < length)
    best = bundle.class_names.index(e.predicted)
    assert bundle.predict_proba([without(text, late[1])])[0, best] == pytest.approx(e.probability, abs=1e-6)
    # Words that hold two tokens each ("film" and an emoji) fill the window twice as fast: what is cut off
    # follows the tokens, not the words (the last of these starts at token 15 of 16, and is seen).
    text = " ".join(["awful"] + ["film\U0001F600"] * (length // 2) + ["wonderful", "superb"])
    (e,) = explain(bundle, [text])
    assert [w.word for w in e.in_text_order() if not w.seen] == ["wonderful", "superb"]


def test_one_model_call_per_text_and_fast(tiny_bundle):
    bundle = dataclasses.replace(tiny_bundle)
    calls = []

    def counting(texts):
        calls.append(len(texts))
        return tiny_bundle.infer(texts)

    bundle._infer = counting
    text = " ".join(["the", "film", "was", "really", "quite", "boring", "and", "the", "plot"] * 6)
    words = len(text.split())
    explain(bundle, [text])  # traced once
    calls.clear()
    start = time.perf_counter()
    explanations = explain(bundle, [text, "a dull show"])
    seconds = time.perf_counter() - start
    assert calls == [words + 1, 4]  # every word is read
    assert len(explanations[0].words) == words >= 50
    assert seconds < 0.5


def test_bundle_method_empty_text_and_bad_input(tiny_bundle):
    texts = ["a lovely story", ""]
    assert tiny_bundle.explain(texts) == explain(tiny_bundle, texts)
    empty = explain(tiny_bundle, ["", " ... "])
    assert [e.words for e in empty] == [(), ()]
    assert empty[0].predicted in tiny_bundle.class_names
    with pytest.raises(DataError, match="single string"):
        explain(tiny_bundle, "a lovely story")
    with pytest.raises(DataError, match="not a string"):
        explain(tiny_bundle, ["fine", None])


def test_explain_command(saved_bundle, capsys):
    status = main(["explain", str(saved_bundle), "the plot was dreadful", "a lovely film", "--top", "2"])
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split("\t")[0] == "negative" and lines[0].endswith("\tthe plot was dreadful")
    assert lines[1].startswith("  +") and lines[1].endswith("\tdreadful")
    assert lines[3].split("\t")[0] == "positive" and len(lines) == 6

    status = main(["explain", str(saved_bundle), "the plot was dreadful", "", "--json", "--top", "0"])
    out, err = capsys.readouterr()
    assert status == 0
    first, second = map(json.loads, out.splitlines())
    assert first["predicted"] == "negative" and len(first["words"]) == 4
    assert first["words"][0]["word"] == "dreadful" and first["words"][0]["contribution"] > 0
    assert second == {"text": "", "predicted": None, "probability": None, "words": []}
    assert err == "textpipe: text 2 is empty: no prediction\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["explain", "{tmp}/no-bundle", "hello"], "no model bundle at"),
        (["explain", "{bundle}", "hello", "--top", "-1"], "--top must be 0 (all words) or more"),
    ],
)
def test_explain_command_bad_input(saved_bundle, tmp_path, capsys, argv, message):
    status = main([a.format(tmp=tmp_path, bundle=saved_bundle) for a in argv])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("textpipe: error: ") and message in err
