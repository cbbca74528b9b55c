"""The figures of the evaluation report, drawn with matplotlib on its Agg canvas and returned as PNG bytes.

Each function takes numbers already computed (by scikit-learn or report.py) and only draws them. Figures are
made with matplotlib's object interface, never pyplot: nothing global (the backend, pyplot's figure list) is
touched, so a program that uses pyplot itself is not disturbed. matplotlib is imported on first use: the
command line imports this module only for `textpipe report`.
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np

DPI = 100
TRAIN_COLOR, VALIDATION_COLOR, KEPT_COLOR = "#1f77b4", "#ff7f0e", "#2ca02c"


def _figure(width: float, height: float, panels: int = 1) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    return figure, list(axes)


def to_png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    # No timestamps or software tags: the same numbers draw the same bytes.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def confusion_figure(matrix: Sequence[Sequence[int]], class_names: Sequence[str]) -> Any:
    """Two heatmaps of the confusion matrix (rows: true class, columns: predicted): counts, and each row
    divided by its total, which reads as recall on the diagonal."""
    counts = np.asarray(matrix, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    n = len(class_names)
    side = min(6.0, 2.2 + 0.45 * n)
    figure, (left, right) = _figure(2 * side + 1.2, side, panels=2)
    for ax, values, title, text in (
        (left, counts, "counts", lambda v: f"{v:d}"),
        (right, shares, "row-normalised", lambda v: f"{v:.2f}"),
    ):
        image = ax.imshow(values, cmap="Blues", vmin=0, vmax=max(values.max(), 1e-9) if values is counts else 1)
        figure.colorbar(image, ax=ax, shrink=0.8)
        ax.set_title(f"Confusion matrix: {title}")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_xticks(range(n), labels=[_short(c) for c in class_names], rotation=45 if n > 3 else 0, ha="right" if n > 3 else "center")
        ax.set_yticks(range(n), labels=[_short(c) for c in class_names])
        if n <= 20:
            middle = values.max() / 2 if values.max() else 0.5
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, text(values[i, j]), ha="center", va="center", fontsize=max(6, 11 - n // 3),
                            color="white" if values[i, j] > middle else "black")
    return figure


def training_curves_figure(history: dict[str, list[float]], kept_epoch: dict[str, Any]) -> Any:
    """Loss, accuracy (and macro F1 when recorded) per epoch on train and validation, the kept epoch marked."""
    panels = [(name, title) for name, title in (("loss", "loss"), ("accuracy", "accuracy"), ("macro_f1", "macro F1"))
              if history.get(name) or history.get(f"val_{name}")]
    figure, axes = _figure(4.2 * len(panels), 3.4, panels=len(panels))
    epochs = max(len(values) for values in history.values())
    # A run resumed from a backup records only the epochs it ran; number them as the whole run does.
    first = max(1, int(kept_epoch.get("last_epoch", epochs)) - epochs + 1)
    for ax, (name, title) in zip(axes, panels):
        for key, label, color in ((name, "train", TRAIN_COLOR), (f"val_{name}", "validation", VALIDATION_COLOR)):
            values = history.get(key)
            if values:
                ax.plot(range(first, first + len(values)), values, marker="o", markersize=3, label=label, color=color)
        if kept_epoch.get("epoch"):
            ax.axvline(kept_epoch["epoch"], color=KEPT_COLOR, linestyle="--", label=f"kept epoch {kept_epoch['epoch']}")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return figure


def roc_figure(false_positive_rate: np.ndarray, true_positive_rate: np.ndarray, area: float, positive: str) -> Any:
    figure, (ax,) = _figure(4.6, 4.2)
    ax.plot(false_positive_rate, true_positive_rate, color=TRAIN_COLOR, label=f"ROC, area {area:.4f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate",
           title=f"ROC curve (positive class: {_short(positive)})")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return figure


def precision_recall_figure(precision: np.ndarray, recall: np.ndarray, area: float, base_rate: float,
                            positive: str) -> Any:
    figure, (ax,) = _figure(4.6, 4.2)
    ax.step(recall, precision, where="post", color=TRAIN_COLOR, label=f"average precision {area:.4f}")
    ax.axhline(base_rate, color="grey", linestyle=":", label=f"chance ({base_rate:.2f})")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall", ylabel="precision",
           title=f"Precision-recall (positive class: {_short(positive)})")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return figure


def reliability_figure(bins: dict[str, np.ndarray], error: float) -> Any:
    """Accuracy against confidence (the predicted class's probability) in equal-width bins, with the diagonal
    a calibrated model follows, and how many predictions fall in each bin."""
    figure, (ax, counts) = _figure(8.6, 3.8, panels=2)
    edges = bins["edges"]
    width = np.diff(edges)
    filled = bins["count"] > 0
    left, accuracy, confidence = edges[:-1][filled], bins["accuracy"][filled], bins["confidence"][filled]
    ax.bar(left, accuracy, width=width[filled], align="edge", color=TRAIN_COLOR, edgecolor="white", alpha=0.85,
           label="accuracy")
    ax.bar(left, confidence - accuracy, bottom=accuracy, width=width[filled], align="edge", color="none",
           edgecolor="#d62728", hatch="//", label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="confidence (probability of the predicted class)",
           ylabel="accuracy", title=f"Reliability diagram (ECE {error:.4f})")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    counts.bar(edges[:-1], bins["count"], width=width, align="edge", color=VALIDATION_COLOR, edgecolor="white")
    counts.set(xlim=(0, 1), xlabel="confidence", ylabel="predictions", title="Predictions per confidence bin")
    counts.grid(alpha=0.3)
    return figure


def probability_distribution_figure(labels: np.ndarray, probabilities: np.ndarray,
                                    class_names: Sequence[str]) -> Any:
    """Histograms, one per true class: of P(second class) for two classes (how well the classes separate),
    else of the probability given to the true class."""
    figure, (ax,) = _figure(6.4, 3.8)
    two = len(class_names) == 2
    edges = np.linspace(0, 1, 21)
    colors = [f"C{i % 10}" for i in range(len(class_names))]
    for i, name in enumerate(class_names):
        rows = labels == i
        if not rows.any():
            continue
        values = probabilities[rows, 1] if two else probabilities[rows, i]
        ax.hist(values, bins=edges, histtype="step", linewidth=1.8, color=colors[i],
                label=f"true {_short(name)} ({int(rows.sum())})")
    what = f"P({_short(class_names[1])})" if two else "probability of the true class"
    ax.set(xlim=(0, 1), xlabel=what, ylabel="texts", title=f"Distribution of {what} per true class")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=1 if len(class_names) <= 6 else 2)
    return figure


def _short(name: str, limit: int = 18) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
