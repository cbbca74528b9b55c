"""Classification metrics from predicted probabilities, computed with scikit-learn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from sklearn import metrics as skm

from textpipe.data import Split

if TYPE_CHECKING:
    from textpipe.bundle import Bundle


def evaluate(bundle: Bundle, split: Split) -> dict[str, Any]:
    """Metrics of `bundle` on a labeled split, through the same predict path users call."""
    return classification_metrics(split.labels, bundle.predict_proba(split.texts), bundle.class_names)


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy; macro and per-class precision, recall, F1; confusion matrix; ROC-AUC for two classes.

    Plain Python numbers and lists, ready for JSON. Rows of the confusion matrix are true classes.
    """
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    ids = list(range(len(class_names)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        labels, predicted, labels=ids, zero_division=0
    )
    result: dict[str, Any] = {
        "n": int(len(labels)),
        "accuracy": float(skm.accuracy_score(labels, predicted)),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": skm.confusion_matrix(labels, predicted, labels=ids).tolist(),
    }
    if len(class_names) == 2:
        # Undefined when the labels hold a single class.
        both = len(np.unique(labels)) == 2
        result["roc_auc"] = float(skm.roc_auc_score(labels, probabilities[:, 1])) if both else None
    return result


def format_report(result: dict[str, Any]) -> str:
    """A readable multi-line report of `classification_metrics` output."""
    names = list(result["per_class"])
    width = max(12, *(len(n) for n in names))
    lines = [
        f"examples   {result['n']}",
        f"accuracy   {result['accuracy']:.4f}",
        f"macro F1   {result['macro_f1']:.4f}",
    ]
    if result.get("roc_auc") is not None:
        lines.append(f"ROC-AUC    {result['roc_auc']:.4f}")
    lines += ["", f"{'class':<{width}} precision  recall      f1  support"]
    for name, m in result["per_class"].items():
        lines.append(
            f"{name:<{width}} {m['precision']:9.4f} {m['recall']:7.4f} {m['f1']:7.4f} {m['support']:8d}"
        )
    lines += ["", "confusion matrix (rows: true, columns: predicted)"]
    cell = max(6, width)
    lines.append(" " * width + "".join(f"{n[:cell]:>{cell + 1}}" for n in names))
    for name, row in zip(names, result["confusion_matrix"]):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>{cell + 1}d}" for v in row))
    return "\n".join(lines)
