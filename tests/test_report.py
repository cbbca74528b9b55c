"""The HTML report: self-contained, every figure present, the numbers of `evaluate`, written atomically."""

import base64
import json
import random
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from conftest import FILLER, NEGATIVE, POSITIVE, TINY_SETTINGS, make_sentences

from textpipe.cli import main
from textpipe.data import LabeledData, Split
from textpipe.evaluation import evaluate
from textpipe.report import calibration, frequent_words, write_report

FIGURES = {"confusion-matrix", "training-curves", "reliability-diagram", "probability-distribution"}
TWO_CLASS_FIGURES = {"roc-curve", "precision-recall-curve"}
PNG = b"\x89PNG\r\n\x1a\n"
NEUTRAL = ["average", "okay", "ordinary", "middling", "passable", "fair"]


class Page(HTMLParser):
    """Every start tag with its attributes, and the cells of each table that has an id."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.tables, self._table, self._cell = [], {}, None, None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table" and "id" in attrs:
            self._table = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag == "td" and self._table is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag == "td" and self._cell is not None:
            self._table[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def ids(self):
        return {attrs["id"] for _, attrs in self.tags if "id" in attrs}

    def images(self):
        return {attrs["id"]: attrs for tag, attrs in self.tags if tag == "img"}


def split_of(texts, labels):
    return Split(np.array(texts, dtype=object), np.array(labels, dtype=np.int64))


def three_class_sentences(n, seed):
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        words = rng.choices(FILLER, k=rng.randint(1, 8))
        words.insert(rng.randint(0, len(words)), rng.choice([NEGATIVE, NEUTRAL, POSITIVE][i % 3]))
        texts.append(" ".join(words))
        labels.append(i % 3)
    return texts, labels


@pytest.fixture(scope="module")
def three_class_bundle():
    from textpipe.config import Config
    from textpipe.training import train

    data = LabeledData(
        train=split_of(*three_class_sentences(300, 1)), validation=split_of(*three_class_sentences(60, 2)),
        test=None, class_names=("bad", "so-so", "good"), text_column="text", label_column="label",
        validation_from_train=False,
    )
    return train(Config(**{**TINY_SETTINGS, "epochs": 4}), data)


def with_mistakes(texts, labels, wrong):
    """Labels of the first `wrong` rows turned to another class: mistakes the model makes with confidence."""
    labels = list(labels)
    for i in range(wrong):
        labels[i] = (labels[i] + 1) % (max(labels) + 1)
    return split_of(texts, labels)


def check_page(path, figures):
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    tags = {tag for tag, _ in page.tags}
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    for tag, attrs in page.tags:  # nothing outside the file
        for name in ("src", "href"):
            assert name not in attrs or attrs[name].startswith("data:image/png;base64,"), (tag, attrs)
    images = page.images()
    assert set(images) == figures
    for attrs in images.values():
        png = base64.b64decode(attrs["src"].split(",", 1)[1], validate=True)
        assert png.startswith(PNG) and len(png) > 5000
        assert attrs["alt"]
    assert {"summary", "metrics", "mistakes", "neighbors"} <= page.ids()
    return page, text


def check_metrics(page, result):
    overall = dict(page.tables["overall-metrics"][1:])
    assert overall["examples"] == str(result["n"])
    for label, key in [("accuracy", "accuracy"), ("macro precision", "macro_precision"),
                       ("macro recall", "macro_recall"), ("macro F1", "macro_f1"), ("ROC-AUC", "roc_auc")]:
        if result.get(key) is not None:
            assert overall.pop(label) == f"{result[key]:.4f}"
    assert set(overall) == {"examples"}  # nothing shown that evaluate did not give
    per_class = page.tables["per-class-metrics"][1:]
    assert [row[0] for row in per_class] == list(result["per_class"])
    for name, precision, recall, f1, support in per_class:
        m = result["per_class"][name]
        assert (precision, recall, f1, support) == (
            f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"]))


def test_two_class_report(tiny_bundle, tmp_path):
    texts, labels = make_sentences(120, 9)
    split = with_mistakes(texts, labels, 12)
    split.texts[12], split.labels[12] = "<script>alert('x')</script> & an awful, dreadful film", 1
    seen = []
    summary = write_report(
        tiny_bundle, split, tmp_path / "report.html", source_description="made <here>", split_name="test",
        bundle_path="/models/tiny", progress=lambda *step: seen.append(step),
    )
    page, text = check_page(tmp_path / "report.html", FIGURES | TWO_CLASS_FIGURES)
    result = evaluate(tiny_bundle, split)
    assert summary.metrics == result
    check_metrics(page, result)
    assert "made &lt;here&gt;" in text and "/models/tiny" in text

    probabilities = tiny_bundle.predict_proba(split.texts)
    wrong = np.flatnonzero(probabilities.argmax(axis=1) != split.labels)
    assert 13 <= len(wrong) <= 20 and 12 in wrong
    rows = page.tables["mistakes-table"][1:]
    assert summary.mistakes_shown == len(rows) == len(wrong)  # all of them: at most 20 are shown
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    shown = [float(row[3]) for row in rows]
    assert shown == sorted(shown, reverse=True)
    assert shown[0] == pytest.approx(probabilities[wrong].max(), abs=1e-4)
    shaded = [attrs for tag, attrs in page.tags if tag == "span" and "title" in attrs]
    assert len(shaded) >= 5 and all(attrs["style"].startswith("background: rgba(") for attrs in shaded)

    _, error = calibration(split.labels, probabilities)
    assert summary.expected_calibration_error == pytest.approx(error)
    assert f"{error:.4f}" in text

    neighbors = page.tables["neighbors-table"][1:]
    assert [row[0] for row in neighbors] == frequent_words(tiny_bundle)
    word, found = neighbors[0]
    assert found.startswith(tiny_bundle.neighbors(word, 5)[0][0] + " (")

    done = [d for d, _, _ in seen]
    assert done == list(range(len(seen))) and seen[-1][0] == seen[-1][1]


def test_three_class_report(three_class_bundle, tmp_path):
    split = with_mistakes(*three_class_sentences(90, 3), 6)
    summary = write_report(three_class_bundle, split, tmp_path / "r.html", source_description="made",
                           split_name="test")
    page, text = check_page(tmp_path / "r.html", FIGURES)  # no ROC or precision-recall
    check_metrics(page, evaluate(three_class_bundle, split))
    assert [row[0] for row in page.tables["per-class-metrics"][1:]] == ["bad", "so-so", "good"]
    assert 6 <= summary.mistakes_shown <= 20


def test_calibration_error_by_hand():
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.35, 0.65], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 1])
    bins, error = calibration(labels, probabilities, n_bins=2)
    # Every confidence is above 0.5: one bin, mean confidence 0.7375, accuracy 0.75.
    assert list(bins["count"]) == [0, 4]
    assert error == pytest.approx(abs(0.75 - 0.7375))
    bins, error = calibration(labels, probabilities, n_bins=10)
    # Bins are closed on the right: 0.6 right in (0.5, 0.6], 0.65 right in (0.6, 0.7], 0.8 wrong in (0.7, 0.8],
    # 0.9 right in (0.8, 0.9].
    assert list(bins["count"]) == [0, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    assert error == pytest.approx((0.4 + 0.35 + 0.8 + 0.1) / 4)


def test_a_failed_report_leaves_the_old_file(tiny_bundle, tiny_data, tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("old report")

    def broken(*args):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr("textpipe.figures.to_png", broken)
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_report(tiny_bundle, tiny_data.test, target, source_description="x", split_name="test")
    assert target.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def write_reviews(folder):
    folder.mkdir()
    texts, labels = make_sentences(80, 21)
    texts[1] = 'a "quoted" <b>dreadful</b> show'
    labels[1] = 1  # a confident mistake
    names = ["negative" if y == 0 else "positive" for y in labels]
    pd.DataFrame({"text": texts, "label": names}).to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"text": texts, "label": names}).to_csv(folder / "train.csv", index=False)
    return folder


@pytest.fixture
def no_datasets_bars():
    """`datasets` is imported before main() runs here, too early for the switch the command line sets."""
    import datasets

    enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    yield
    if enabled:
        datasets.enable_progress_bars()


def test_report_command(saved_bundle, tmp_path, capsys, no_datasets_bars):
    data = write_reviews(tmp_path / "data")
    out_file = tmp_path / "out" / "report.html"
    status = main(["report", str(saved_bundle), "--dataset", str(data), "--output", str(out_file), "--mistakes", "3"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert err == ""  # no progress bar when standard error is not a terminal, and nothing from matplotlib
    assert out.splitlines()[-1] == f"report written to {out_file}"
    page, text = check_page(out_file, FIGURES | TWO_CLASS_FIGURES)
    assert "&lt;b&gt;dreadful&lt;/b&gt;" in text and str(data) in text

    assert main(["evaluate", str(saved_bundle), "--dataset", str(data), "--json"]) == 0
    check_metrics(page, json.loads(capsys.readouterr().out))
    assert 1 <= len(page.tables["mistakes-table"]) - 1 <= 3

    # Without --dataset: the data the bundle was trained on (here the built-in sample).
    status = main(["report", str(saved_bundle), "-o", str(tmp_path / "sample.html"), "--mistakes", "0"])
    assert status == 0
    page, text = check_page(tmp_path / "sample.html", FIGURES | TWO_CLASS_FIGURES)
    assert "the built-in sample dataset, the data the bundle was trained on" in text
    assert "mistakes-table" not in page.tables


@pytest.mark.parametrize(
    "argv, message",
    [
        (["report", "{tmp}/no-bundle", "-o", "{tmp}/r.html"], "no model bundle at"),
        (["report", "{bundle}", "--dataset", "{tmp}/missing", "-o", "{tmp}/r.html"], "no such file or folder"),
        (["report", "{bundle}", "-o", "{tmp}"], "is a folder; name a file to write"),
        (["report", "{bundle}", "-o", "-"], "the report is an HTML file"),
        (["report", "{bundle}", "-o", "{tmp}/r.html", "--mistakes", "-2"], "--mistakes must be 0 or more"),
        (["report", "{bundle}", "-o", "{tmp}/r.html", "--split", "nope"], "no split 'nope'"),
        (["report", "{bundle}", "-o", "{bundle}/model.keras"], "is inside the model bundle"),
        (["report", "{bundle}", "-o", "{bundle}/report.html"], "is inside the model bundle"),
    ],
)
def test_report_command_bad_input(saved_bundle, tmp_path, capsys, argv, message):
    status = main([a.format(tmp=tmp_path, bundle=saved_bundle) for a in argv])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("textpipe: error: ") and message in err
    assert not (tmp_path / "r.html").exists()
