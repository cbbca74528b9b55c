"""Accuracy of textpipe's models against TF-IDF + logistic regression, side by side, over several seeds.

Protocol, per dataset and seed:
- evaluation rows: SST-2 and emotion use their validation split; IMDB (train only here) uses a validation
  split carved from train with seed 0, as a user without the test set would;
- the rest of train is the training pool, optionally capped at `max_train_rows` (the same rows for every
  seed and method); each seed holds out a stratified 10% of it for textpipe's validation loss (early stopping),
  and every method is fitted on the same remaining 90%;
- textpipe runs through `textpipe.training.train`, the function behind `textpipe train`, and is evaluated
  through the bundle's own predict path.

Imported by benchmark.py; it has no command line of its own.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = ("sst2", "imdb", "emotion")
METHODS = ("tfidf_lr_restricted", "tfidf_lr_ngrams", "lstm_default", "conv1d_default", "lstm_tuned", "conv1d_tuned")
# The vocabulary budget of the default models, without the padding and [UNK] entries.
RESTRICTED_FEATURES = 1022


def load_benchmark_data(name: str):
    """LabeledData whose `validation` is the evaluation split and whose `train` is the training pool."""
    from textpipe.data import load_labeled_data

    return load_labeled_data(SHARED_DATA / name, validation_fraction=0.1, seed=0)


# Longest sequence a tuned model reads: an LSTM steps through every position in turn, which gets slow on a
# CPU past a few hundred; the conv1d model's cost grows only linearly and in parallel.
MAX_TUNED_LENGTH = {"lstm": 256, "conv1d": 512}


def tuned_settings(train_texts: np.ndarray, model: str) -> dict[str, Any]:
    """The flags that did best here, chosen from the training texts alone so any dataset gets its own.

    A larger vocabulary, a sequence length covering 99% of the texts (capped per model, see MAX_TUNED_LENGTH),
    batches of 32, and early stopping on validation loss that keeps the best epoch's weights. The conv1d
    model also gets pretrained word vectors (see `pretrain_word_vectors`).
    """
    from textpipe.models import conv1d_min_length

    lengths = np.fromiter((len(t.split()) for t in train_texts), dtype=np.int64, count=len(train_texts))
    length = int(np.ceil(np.percentile(lengths, 99) / 8) * 8)
    return {
        "vocab_size": 10_000,
        "sequence_length": int(np.clip(length, conv1d_min_length() + 5, MAX_TUNED_LENGTH[model])),
        "batch_size": 32,
        "epochs": 15,
        "patience": 2,
    }


def pretrain_word_vectors(texts: np.ndarray, settings: dict, path: Path, seed: int = 0) -> Path:
    """Skip-gram vectors learned on all of a dataset's training text, written as a GloVe text file.

    Stands in for the pretrained vectors (GloVe, word2vec) a user would pass with --word-vectors: unlabeled
    text is cheap, so vectors can come from far more text than the labeled rows a model is fitted on.
    """
    from textpipe.embeddings import train_word_vectors
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer, vectorize

    vectorizer = build_vectorizer(settings["vocab_size"], settings["sequence_length"])
    adapt_vectorizer(vectorizer, texts)
    vocabulary = vectorizer.get_vocabulary()
    table = train_word_vectors(vectorize(vectorizer, texts), len(vocabulary), seed=seed)
    with path.open("w", encoding="utf-8") as f:
        for word, vector in zip(vocabulary[2:], table[2:]):  # not padding or [UNK]
            f.write(word + " " + " ".join(f"{v:.5f}" for v in vector) + "\n")
    return path


def run_accuracy(
    datasets: list[str],
    seeds: list[int],
    max_train_rows: int | None,
    epochs: int | None,
    workdir: Path,
    log: Callable[[str], None],
    *,
    quick: bool = False,
    only: tuple[str, ...] = METHODS,
) -> dict:
    """Fit the methods `only` names on every dataset for every seed; `quick` also learns the word vectors on
    the capped training rows only, for a fast check that everything runs."""
    from sklearn.model_selection import train_test_split

    from textpipe.data import Split

    results: dict[str, Any] = {
        "seeds": seeds,
        "max_train_rows": max_train_rows,
        "restricted_features": RESTRICTED_FEATURES,
        "datasets": {},
    }
    for name in datasets:
        data = load_benchmark_data(name)
        pool = data.train
        if max_train_rows is not None and len(pool) > max_train_rows:
            keep = np.sort(np.random.default_rng(0).permutation(len(pool))[:max_train_rows])
            pool = Split(pool.texts[keep], pool.labels[keep])
        start = time.perf_counter()
        vector_texts = pool.texts if quick else data.train.texts
        tuned = {model: tuned_settings(pool.texts, model) for model in ("lstm", "conv1d")}
        vectors, pretrained = workdir / f"{name}-vectors.txt", None
        if "conv1d_tuned" in only:
            pretrain_word_vectors(vector_texts, tuned["conv1d"], vectors)
            pretrained = {"texts": len(vector_texts), "seconds": time.perf_counter() - start}
        if epochs is not None:
            for settings in tuned.values():
                settings["epochs"] = epochs
        methods: dict[str, Callable] = {
            "tfidf_lr_restricted": lambda tr, va, seed: tfidf_lr(tr, va, seed, restricted=True),
            "tfidf_lr_ngrams": lambda tr, va, seed: tfidf_lr(tr, va, seed, restricted=False),
        }
        for model in ("lstm", "conv1d"):
            default = {"epochs": epochs} if epochs is not None else {}
            methods[f"{model}_default"] = _textpipe_method(model, default, data.class_names)
            extra = {"word_vectors": str(vectors)} if model == "conv1d" else {}
            methods[f"{model}_tuned"] = _textpipe_method(model, {**tuned[model], **extra}, data.class_names)
        methods = {method: run for method, run in methods.items() if method in only}

        runs: dict[str, list[dict]] = {method: [] for method in methods}
        for seed in seeds:
            fit_rows, held_rows = train_test_split(
                np.arange(len(pool)), test_size=0.1, random_state=seed, stratify=pool.labels
            )
            fit = Split(pool.texts[np.sort(fit_rows)], pool.labels[np.sort(fit_rows)])
            held = Split(pool.texts[np.sort(held_rows)], pool.labels[np.sort(held_rows)])
            for method, run in methods.items():
                start = time.perf_counter()
                predict_proba, extra = run(fit, held, seed)
                seconds = time.perf_counter() - start  # fitting only: evaluation is not timed
                scores = _scores(data.validation, predict_proba, data.class_names)
                runs[method].append({"seed": seed, "seconds": seconds, **scores, **extra})
                log(f"{name} seed {seed} {method}: accuracy {scores['accuracy']:.4f} "
                    f"macro F1 {scores['macro_f1']:.4f} ({seconds:.0f} s)")
        results["datasets"][name] = {
            "seeds": seeds,
            "max_train_rows": max_train_rows,
            "classes": list(data.class_names),
            "train_rows": len(pool) - len(held),
            "holdout_rows": len(held),
            "eval_rows": len(data.validation),
            "eval_split": "validation carved from train (seed 0)" if data.validation_from_train else "validation",
            "tuned_settings": tuned,
            "pretrained_vectors": pretrained,
            "methods": {method: summarize(method_runs) for method, method_runs in runs.items()},
        }
    return results


def tfidf_lr(fit, held, seed: int, *, restricted: bool) -> tuple[Callable, dict]:
    """TF-IDF + logistic regression: either on the textpipe default's vocabulary budget (unigrams,
    the 1,022 most frequent words), or unrestricted word 1-2-grams seen in at least two texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if restricted:
        vectorizer = TfidfVectorizer(max_features=RESTRICTED_FEATURES, sublinear_tf=True)
    else:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    pipeline = make_pipeline(vectorizer, LogisticRegression(max_iter=2000, random_state=seed))
    pipeline.fit(fit.texts, fit.labels)
    return pipeline.predict_proba, {"features": len(pipeline[0].vocabulary_)}


def _textpipe_method(model: str, settings: dict, class_names) -> Callable:
    def run(fit, held, seed):
        from textpipe.config import Config
        from textpipe.data import LabeledData
        from textpipe.training import train

        data = LabeledData(fit, held, None, tuple(class_names), "text", "label", True)
        bundle = train(Config(model=model, seed=seed, **settings), data)
        return bundle.predict_proba, {"epochs_run": len(bundle.history["loss"])}

    return run


def _scores(split, predict_proba: Callable, class_names) -> dict:
    from textpipe.evaluation import classification_metrics

    metrics = classification_metrics(split.labels, predict_proba(split.texts), class_names)
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}


def summarize(runs: list[dict]) -> dict:
    """Mean and spread (sample standard deviation, min, max) of each metric over the seeds."""
    out: dict[str, Any] = {"runs": runs}
    for key in ("accuracy", "macro_f1", "seconds"):
        values = [r[key] for r in runs]
        out[key] = {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
        }
    if "epochs_run" in runs[0]:
        out["epochs_run"] = [r["epochs_run"] for r in runs]
    return out
