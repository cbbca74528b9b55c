"""An evaluation report: one self-contained HTML page that shows a bundle's results on a labeled split.

The page holds what was evaluated (bundle, settings, classes, data, rows, date), the metrics of
`textpipe.evaluation.evaluate` (the numbers `textpipe evaluate --json` prints), the confusion matrix, the training
curves, ROC and precision-recall curves (two classes), a reliability diagram with the expected calibration
error, the distribution of predicted probabilities, the most confident mistakes with each word shaded by its
contribution (textpipe.explain), and the nearest neighbours of a few frequent words. Figures are PNG images
inlined as base64: the page needs no network, no other file and no JavaScript. It is written atomically.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from sklearn import metrics as skm

from textpipe import __version__
from textpipe.atomic import atomic_file
from textpipe.data import Split
from textpipe.errors import ConfigError, DataError
from textpipe.evaluation import classification_metrics
from textpipe.explain import Explanation, explain
from textpipe.paths import is_null_device

if TYPE_CHECKING:
    from textpipe.bundle import Bundle

MISTAKES = 20
NEIGHBOR_WORDS = 6
NEIGHBORS = 5
CALIBRATION_BINS = 10
# Texts per prediction step: the progress callback is called after each.
PREDICT_CHUNK = 1024
# A word whose removal lowers the predicted class's probability this much is shaded fully (or the text's strongest
# word, when stronger): a text where no word matters much stays pale instead of showing noise at full strength.
FULL_SHADE = 0.05
# Words shorter than this are mostly function words ("the", "and", "was"), whose neighbours say little.
NEIGHBOR_MIN_LENGTH = 4

# progress(done, total, stage): `done` of `total` steps finished, `stage` names the step under way.
Progress = Callable[[int, int, str], None]

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 0.25em 0.7em; text-align: left; }
tbody tr:nth-child(odd) { background: #f4f6f8; } th { border-bottom: 1px solid #888; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
.text { white-space: pre-wrap; line-height: 1.7; max-width: 60em; }
.note { color: #555; font-size: 0.92em; }
"""


@dataclasses.dataclass(frozen=True)
class ReportSummary:
    path: Path
    metrics: dict[str, Any]  # evaluate()'s result
    mistakes_shown: int
    expected_calibration_error: float


def write_report(
    bundle: Bundle,
    split: Split,
    output_path: str | Path,
    *,
    source_description: str,
    split_name: str,
    progress: Progress | None = None,
    mistakes: int = MISTAKES,
    bundle_path: str | Path | None = None,
    neighbor_words: Sequence[str] | None = None,
) -> ReportSummary:
    """Evaluate `bundle` on `split` and write the HTML report to `output_path` (atomically).

    `source_description` and `split_name` say where the split came from; `bundle_path` where the bundle was
    loaded from. `neighbor_words` default to the most frequent vocabulary words of NEIGHBOR_MIN_LENGTH or more
    characters.
    """
    from textpipe import figures

    if len(split) == 0:
        raise DataError(f"split {split_name!r} of {source_description} is empty; nothing to report")
    if mistakes < 0:
        raise ConfigError(f"the number of mistakes to show must be 0 or more, got {mistakes}")
    two = len(bundle.class_names) == 2
    chunks = range(0, len(split), PREDICT_CHUNK)
    steps = [f"predicting {start + 1}-{min(start + PREDICT_CHUNK, len(split))}" for start in chunks]
    steps += ["evaluating", "drawing the confusion matrix", "drawing the training curves"]
    steps += ["drawing ROC and precision-recall"] * two + ["drawing calibration", "finding neighbours"]
    done = 0

    def advance() -> None:  # one step of `steps` is finished
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(steps), steps[done] if done < len(steps) else "writing")

    if progress is not None:
        progress(0, len(steps), steps[0])
    probabilities = np.zeros((len(split), len(bundle.class_names)), dtype=np.float32)
    for start in chunks:
        probabilities[start : start + PREDICT_CHUNK] = bundle.predict_proba(split.texts[start : start + PREDICT_CHUNK])
        advance()
    labels = np.asarray(split.labels)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    # Most confident first; among equals, in the split's order.
    shown = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:mistakes]
    steps += [f"explaining mistake {i + 1} of {len(shown)}" for i in range(len(shown))]

    result = classification_metrics(labels, probabilities, bundle.class_names)  # evaluate()'s numbers
    advance()
    sections = [_metrics_section(result)]
    sections.append(_figure_section(
        "confusion", "Confusion matrix", [("confusion-matrix", "Confusion matrix: counts and row-normalised shares",
                                           figures.confusion_figure(result["confusion_matrix"], bundle.class_names))],
        "Rows are true classes, columns predicted ones. Right: each row divided by its total (recall on the diagonal).",
    ))
    advance()
    sections.append(_training_section(bundle, figures))
    advance()
    if two:
        sections.append(_binary_section(labels, probabilities, bundle.class_names, result, figures))
        advance()
    bins, error = calibration(labels, probabilities)
    sections.append(_figure_section(
        "calibration", "Calibration",
        [("reliability-diagram", f"Reliability diagram, expected calibration error {error:.4f}",
          figures.reliability_figure(bins, error)),
         ("probability-distribution", "Distribution of the predicted probability per true class",
          figures.probability_distribution_figure(labels, probabilities, bundle.class_names))],
        f"Expected calibration error (ECE, {CALIBRATION_BINS} equal-width bins of the predicted class's probability): "
        f"<b>{error:.4f}</b>: the share-weighted gap between confidence and accuracy; 0 is perfectly calibrated.",
    ))
    advance()
    words = list(neighbor_words) if neighbor_words is not None else frequent_words(bundle)
    neighbors = {word: bundle.neighbors(word, NEIGHBORS) for word in words}
    advance()
    explanations = []
    for row in shown:
        explanations.extend(explain(bundle, [split.texts[row]]))
        advance()
    sections.append(_mistakes_section(explanations, labels[shown], bundle.class_names, len(wrong), mistakes))
    sections.append(_neighbors_section(neighbors))

    header = _summary_section(bundle, len(split), source_description, split_name, bundle_path)
    page = _page(f"textpipe report: {split_name} of {source_description}", [header, *sections])
    path = Path(output_path)
    if is_null_device(path):  # written and dropped, as asked; never renamed over the device
        with open(os.devnull, "w", encoding="utf-8") as f:
            f.write(page)
    else:
        with atomic_file(path) as f:
            f.write(page)
    return ReportSummary(path, result, len(shown), error)


def calibration(labels: np.ndarray, probabilities: np.ndarray, n_bins: int = CALIBRATION_BINS
                ) -> tuple[dict[str, np.ndarray], float]:
    """Confidence (the predicted class's probability) in `n_bins` equal-width bins: each bin's edges, count,
    mean confidence and accuracy, and the expected calibration error, sum over bins of
    count / n * |accuracy - mean confidence|."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, confidence, n_bins) / count
        accuracy = np.bincount(which, correct.astype(np.float64), n_bins) / count
    filled = count > 0
    error = float(np.sum(count[filled] / len(confidence) * np.abs(accuracy[filled] - mean_confidence[filled])))
    return {"edges": edges, "count": count, "confidence": mean_confidence, "accuracy": accuracy}, error


def frequent_words(bundle: Bundle, n: int = NEIGHBOR_WORDS) -> list[str]:
    """The `n` most frequent vocabulary words (the vectorizer orders its vocabulary by training frequency) of
    NEIGHBOR_MIN_LENGTH or more characters."""
    vocabulary = bundle.vectorizer.get_vocabulary()[2:]  # after padding "" and [UNK]
    return [w for w in vocabulary if len(w) >= NEIGHBOR_MIN_LENGTH][:n]


def _summary_section(bundle: Bundle, rows: int, source: str, split_name: str, bundle_path: str | Path | None) -> str:
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    kept = bundle.kept_epoch
    facts = [
        ("bundle", str(bundle_path) if bundle_path is not None else "(not saved)"),
        ("model", bundle.config.model),
        ("classes", ", ".join(bundle.class_names)),
        ("data", source),
        ("split", split_name),
        ("rows", f"{rows}"),
        ("vocabulary", f"{bundle.vocabulary_size} entries, including padding and [UNK]"),
        ("kept epoch", _describe_kept(kept)),
        *([("n-gram model", _describe_ngrams(bundle.ngrams))] if bundle.ngrams else []),
        ("date", now),
        ("textpipe", __version__),
    ]
    settings = [(name, _setting(value)) for name, value in bundle.config.to_dict().items()]
    return (
        '<section id="summary"><h2>What was evaluated</h2>' + _table(["", ""], facts, header=False)
        + "<details><summary>All settings of the bundle</summary>"
        + _table(["setting", "value"], settings) + "</details></section>"
    )


def _describe_kept(kept: dict[str, Any]) -> str:
    if not kept:
        return "not recorded"
    why = "the last one run" if kept["selected_by"] == "last epoch" else f"best {kept['selected_by']}"
    return f"{kept['epoch']} of {kept['last_epoch']} ({why}{'; stopped early' if kept.get('stopped_early') else ''})"


def _describe_ngrams(report: dict[str, Any]) -> str:
    return (f"epoch {_describe_kept(report['kept_epoch'])}; weight {1 - report['network_weight']:.1f} in the mix with "
            f"the network (validation macro F1 {report['mixed_score']:.4f}, network alone {report['network_score']:.4f})")


def _metrics_section(result: dict[str, Any]) -> str:
    overall = [("examples", f"{result['n']}"), ("accuracy", f"{result['accuracy']:.4f}"),
               ("macro precision", f"{result['macro_precision']:.4f}"), ("macro recall", f"{result['macro_recall']:.4f}"),
               ("macro F1", f"{result['macro_f1']:.4f}")]
    if result.get("roc_auc") is not None:
        overall.append(("ROC-AUC", f"{result['roc_auc']:.4f}"))
    per_class = [
        (name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", f"{m['support']}")
        for name, m in result["per_class"].items()
    ]
    return (
        '<section id="metrics"><h2>Metrics</h2>'
        + _table(["metric", "value"], overall, table_id="overall-metrics", numeric_from=1)
        + _table(["class", "precision", "recall", "F1", "support"], per_class, table_id="per-class-metrics",
                 numeric_from=1)
        + "</section>"
    )


def _training_section(bundle: Bundle, figures: Any) -> str:
    if not any(bundle.history.values()):
        return _figure_section("training", "Training", [], "This bundle holds no training history.")
    kept = bundle.kept_epoch
    note = (f"The bundle holds the weights of epoch {kept['epoch']} (dashed line), chosen by "
            f"{html.escape(str(kept['selected_by']))}." if kept else "")
    return _figure_section(
        "training", "Training",
        [("training-curves", "Training curves: loss and accuracy on train and validation, kept epoch marked",
          figures.training_curves_figure(bundle.history, kept))],
        note,
    )


def _binary_section(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str],
                    result: dict[str, Any], figures: Any) -> str:
    positive = class_names[1]
    if len(np.unique(labels)) < 2:
        return _figure_section("curves", "ROC and precision-recall", [],
                               "Not drawn: the split holds one class only, so the curves are undefined.")
    scores = probabilities[:, 1]
    fpr, tpr, _ = skm.roc_curve(labels, scores)
    precision, recall, _ = skm.precision_recall_curve(labels, scores)
    average_precision = float(skm.average_precision_score(labels, scores))
    return _figure_section(
        "curves", "ROC and precision-recall",
        [("roc-curve", f"ROC curve, area {result['roc_auc']:.4f}",
          figures.roc_figure(fpr, tpr, result["roc_auc"], positive)),
         ("precision-recall-curve", f"Precision-recall curve, average precision {average_precision:.4f}",
          figures.precision_recall_figure(precision, recall, average_precision, float(np.mean(labels == 1)), positive))],
        f"Positive class: {html.escape(positive)}. Area under the ROC curve <b>{result['roc_auc']:.4f}</b>; "
        f"average precision (area under the precision-recall curve) <b>{average_precision:.4f}</b>.",
    )


def _mistakes_section(explanations: list[Explanation], true_labels: np.ndarray, class_names: Sequence[str],
                      wrong: int, asked: int) -> str:
    if not explanations:
        body = f'<p class="note">{"No mistakes on this split." if wrong == 0 else "None asked for."}</p>'
    else:
        rows = []
        for number, (e, label) in enumerate(zip(explanations, true_labels), 1):
            strongest = ", ".join(f"{html.escape(w.word)} {w.contribution:+.3f}" for w in e.words[:5])
            rows.append(
                f'<tr><td class="n">{number}</td><td>{html.escape(class_names[label])}</td>'
                f'<td>{html.escape(e.predicted)}</td><td class="n">{e.probability:.4f}</td>'
                f'<td><div class="text">{shaded_text(e)}</div><div class="note">{strongest}</div></td></tr>'
            )
        body = (
            '<table id="mistakes-table"><thead><tr><th>#</th><th>true</th><th>predicted</th><th>probability</th>'
            "<th>text</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        )
    note = (
        f"The {len(explanations)} most confident of {wrong} mistakes (at most {asked} shown). Each word is shaded by "
        "how much leaving it out lowers the probability of the predicted class: "
        '<span style="background: rgba(230, 120, 20, 0.6)">orange</span> words pushed toward the wrong prediction, '
        '<span style="background: rgba(40, 110, 220, 0.6)">blue</span> ones against it. The strongest word of each '
        f"text is shaded fully when its contribution is {FULL_SHADE} or more. Hover a word for its contribution."
    )
    return f'<section id="mistakes"><h2>Most confident mistakes</h2><p class="note">{note}</p>{body}</section>'


def shaded_text(explanation: Explanation) -> str:
    """The text as HTML, each word in a span whose background shows its contribution."""
    text = explanation.text
    scale = max([FULL_SHADE, *(abs(w.contribution) for w in explanation.words)])
    pieces, at = [], 0
    for w in explanation.in_text_order():
        alpha = min(1.0, abs(w.contribution) / scale) * 0.75
        color = "230, 120, 20" if w.contribution > 0 else "40, 110, 220"
        pieces.append(html.escape(text[at : w.start]))
        pieces.append(
            f'<span style="background: rgba({color}, {alpha:.2f})" title="{w.contribution:+.4f}">'
            f"{html.escape(w.word)}</span>"
        )
        at = w.end
    pieces.append(html.escape(text[at:]))
    return "".join(pieces)


def _neighbors_section(neighbors: dict[str, list[tuple[str, float]]]) -> str:
    rows = [(word, ", ".join(f"{n} ({s:.2f})" for n, s in found)) for word, found in neighbors.items()]
    body = _table(["word", f"{NEIGHBORS} nearest words (cosine similarity)"], rows, table_id="neighbors-table")
    return (
        '<section id="neighbors"><h2>Nearest neighbours</h2><p class="note">Frequent words and the words whose '
        "vectors (the model's word vectors or embedding) are closest to theirs.</p>" + body + "</section>"
    )


def _figure_section(section_id: str, title: str, images: list[tuple[str, str, Any]], note: str) -> str:
    from textpipe.figures import to_png

    parts = [f'<section id="{section_id}"><h2>{html.escape(title)}</h2>']
    if note:
        parts.append(f'<p class="note">{note}</p>')
    for image_id, alt, figure in images:
        data = base64.b64encode(to_png(figure)).decode("ascii")
        parts.append(f'<img id="{image_id}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
    parts.append("</section>")
    return "".join(parts)


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, table_id: str | None = None,
           header: bool = True, numeric_from: int | None = None) -> str:
    identity = f' id="{table_id}"' if table_id else ""
    head = "<thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr></thead>" if header else ""
    numeric = ' class="n"'
    body = "".join(
        "<tr>" + "".join(
            f"<td{numeric if numeric_from is not None and i >= numeric_from else ''}>{html.escape(str(v))}</td>"
            for i, v in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table{identity}>{head}<tbody>{body}</tbody></table>"


def _setting(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "(none)" if value is None else str(value)


def _page(title: str, sections: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>" + "".join(sections) + "</body></html>\n"
    )
