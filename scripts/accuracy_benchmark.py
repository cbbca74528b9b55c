"""Accuracy of textpipe's models against TF-IDF + logistic regression, side by side, over several seeds.

Protocol, per dataset and seed:
- evaluation rows: SST-2 and emotion use their validation split; IMDB (train only here) uses a validation
  split carved from train with seed 0, as a user without the test set would;
- the rest of train is the training pool, optionally capped at `max_train_rows` (the same rows for every
  seed and method); each seed holds out a stratified 10% of it, on which textpipe chooses its epoch and
  TF-IDF + LR on 1-2-grams its C, and every method is fitted on the same remaining 90%;
- sst2_sentences keeps only the whole sentences of SST-2's training rows (the longest row of each group, see
  sentence_groups): about 6,900 sentences, held out row by row, scored on SST-2's validation sentences;
- SST-2's training rows are the phrases of about 6,900 parsed sentences, most of them inside another row: held
  out at random, 89% of the held-out phrases appear word for word in a fitted row, and the epoch kept is the
  one that has memorised them best. Its rows are held out a sentence at a time instead (see sentence_groups);
- textpipe runs through `textpipe.training.train`, the function behind `textpipe train`, and is evaluated
  through the bundle's own predict path; `--preset accurate --no-ngrams`, run beside `--preset accurate`, is
  that run's network, scored alone (NETWORK_OF).

Imported by benchmark.py; it has no command line of its own.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = ("sst2", "imdb", "emotion")  # what a run measures unless --datasets says otherwise
# Also run on request: SST-2's whole sentences only (see load_benchmark_data), the closest stand-in here for
# the small sentence-level sets users bring (movie-review sentences, tweets).
ALL_DATASETS = DATASETS + ("sst2_sentences",)
METHODS = (
    "tfidf_lr_restricted", "tfidf_lr_ngrams",
    "lstm_default", "conv1d_default",  # textpipe train [--model conv1d]
    "lstm_truncate", "conv1d_truncate",  # ... --long-texts truncate: the first 64 tokens only (textpipe 0.3)
    "lstm_all_epochs", "conv1d_all_epochs",  # ... --patience off --keep-last-epoch --no-average-weights: every
                                             # epoch, the last step's weights kept
    "lstm_accurate_ngrams", "conv1d_accurate_ngrams",  # ... --preset accurate (the n-gram model's mix included)
    "lstm_accurate", "conv1d_accurate",  # ... --preset accurate --no-ngrams: the network alone
    "conv1d_accurate_vectors",  # ... --preset accurate --no-ngrams --word-vectors FILE (vectors from more text)
    "lstm_accurate_unlabeled", "conv1d_accurate_unlabeled",  # ... --preset accurate --no-ngrams --unlabeled FILE
    "lstm_accurate_ngrams_unlabeled", "conv1d_accurate_ngrams_unlabeled",  # ... --preset accurate --unlabeled FILE
    "lstm_adversarial", "conv1d_adversarial",  # ... --adversarial ADVERSARIAL[model]: adversarial training
    "lstm_no_adversarial", "conv1d_no_adversarial",  # ... --adversarial 0: without it, wherever "auto" gives it
    "lstm_frequent", "conv1d_frequent",  # ... --vocabulary frequent: the most frequent words, as before
)
# The fractions of the "adversarial" methods, which force it on whatever the texts. The defaults' own are
# presets.ADVERSARIAL_FRACTION: the same for the lstm; for the conv1d model, 0.025 did better than these rows'
# 0.05 on SST-2's sentences and on 4,500 rows of SST-2 and of emotion (3 seeds each; docs/results.md).
ADVERSARIAL = {"lstm": 0.1, "conv1d": 0.05}
# Settings of each textpipe method, beyond --model and --seed.
TEXTPIPE_SETTINGS = {
    "default": {},
    "truncate": {"long_texts": "truncate"},
    "all_epochs": {"patience": 0, "keep_best_epoch": False, "average_weights": False},
    "accurate_ngrams": {"preset": "accurate"},
    "accurate": {"preset": "accurate", "ngrams": False},
    "accurate_vectors": {"preset": "accurate", "ngrams": False},
    "accurate_unlabeled": {"preset": "accurate", "ngrams": False},
    "accurate_ngrams_unlabeled": {"preset": "accurate"},
    "adversarial": {},  # the fraction per model: ADVERSARIAL
    "no_adversarial": {"adversarial": 0.0},
    "frequent": {"vocabulary": "frequent"},
}
# The `--no-ngrams` variants whose network a `--preset accurate` variant's bundle holds: training is seeded and
# deterministic on CPU, and the n-gram model trains after the network, so a run of both scores the first from the
# second's network instead of training it again (its fit time ends with the network's training).
NETWORK_OF = {"accurate": "accurate_ngrams", "accurate_unlabeled": "accurate_ngrams_unlabeled"}
# The raw text `--unlabeled` reads, per dataset that has some here: the first UNLABELED_ROWS training texts of
# another dataset of the same kind, labels unread (SST-2: IMDB's reviews, as a user could add the Hub's
# unlabeled IMDB reviews to a small set of movie-review sentences).
UNLABELED_TEXT = {"sst2": "imdb", "sst2_sentences": "imdb"}
UNLABELED_ROWS = 5000
# Inverse regularization strengths tried for TF-IDF + LR on 1-2-grams; the held-out rows pick one.
NGRAM_C = (1.0, 4.0)
# The vocabulary budget of the default models, without the padding and [UNK] entries.
RESTRICTED_FEATURES = 1022
# Datasets whose training rows are phrases of longer rows: held out a sentence at a time.
HELD_OUT_BY_SENTENCE = ("sst2",)


def result_key(name: str, max_train_rows: int | None) -> str:
    """Where a dataset's results are kept: "imdb" for the whole training pool, "imdb@5000" for a capped one,
    so runs at different sizes sit side by side."""
    return name if max_train_rows is None else f"{name}@{max_train_rows}"


def dataset_of(key: str) -> tuple[str, int | None]:
    """The dataset and training-pool cap a result key names (see result_key)."""
    name, _, cap = key.partition("@")
    return name, int(cap) if cap.isdigit() else None


def load_benchmark_data(name: str):
    """LabeledData whose `validation` is the evaluation split and whose `train` is the training pool."""
    from textpipe.data import Split, load_labeled_data

    if name == "sst2_sentences":
        data = load_benchmark_data("sst2")
        keep = whole_sentences(data.train.texts)
        return dataclasses.replace(data, train=Split(data.train.texts[keep], data.train.labels[keep]))
    return load_labeled_data(SHARED_DATA / name, validation_fraction=0.1, seed=0)


def whole_sentences(texts: np.ndarray) -> np.ndarray:
    """The rows, in order, that are the longest of their sentence group (see sentence_groups): for a set of
    parse-tree phrases, its whole sentences."""
    groups = sentence_groups(texts)
    longest_first = sorted(range(len(texts)), key=lambda i: -len(str(texts[i]).strip()))
    _, first = np.unique(groups[longest_first], return_index=True)
    return np.sort(np.asarray(longest_first)[first])


def pretrain_word_vectors(texts: np.ndarray, path: Path, seed: int = 0) -> Path:
    """Skip-gram vectors learned on all of a dataset's training text, written as a GloVe text file.

    Stands in for the pretrained vectors (GloVe, word2vec) a user would pass with --word-vectors: unlabeled
    text is cheap, so vectors can come from far more text than the labeled rows a model is fitted on.
    """
    from textpipe.embeddings import train_word_vectors
    from textpipe.presets import auto_settings
    from textpipe.preprocess import adapt_vectorizer, build_vectorizer, vectorize

    settings = auto_settings(texts, "conv1d")
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
    journal: Journal | None = None,
) -> dict:
    """Fit the methods `only` names on every dataset for every seed; `quick` also learns the word vectors on
    the capped training rows only, for a fast check that everything runs. A `journal` keeps each fit's results
    as it ends and gives back the fits it already holds instead of running them again."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

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
        cap = max_train_rows if max_train_rows is not None and len(pool) > max_train_rows else None
        if cap is not None:
            keep = np.sort(np.random.default_rng(0).permutation(len(pool))[:max_train_rows])
            pool = Split(pool.texts[keep], pool.labels[keep])
        start = time.perf_counter()
        vector_texts = pool.texts if quick else data.train.texts
        vectors, pretrained = workdir / f"{name}-vectors.txt", None
        if "conv1d_accurate_vectors" in only:
            pretrain_word_vectors(vector_texts, vectors)
            pretrained = {"texts": len(vector_texts), "seconds": time.perf_counter() - start}
        unlabeled, unlabeled_text = workdir / f"{name}-unlabeled.txt", None
        if any(method.endswith("_unlabeled") for method in only) and name in UNLABELED_TEXT:
            texts = load_benchmark_data(UNLABELED_TEXT[name]).train.texts[: 300 if quick else UNLABELED_ROWS]
            unlabeled.write_text("".join(" ".join(str(text).split()) + "\n" for text in texts), encoding="utf-8")
            unlabeled_text = {"source": UNLABELED_TEXT[name], "texts": len(texts)}
        methods: dict[str, Callable] = {
            "tfidf_lr_restricted": lambda tr, va, seed: tfidf_lr(tr, va, seed, restricted=True),
            "tfidf_lr_ngrams": lambda tr, va, seed: tfidf_lr(tr, va, seed, restricted=False),
        }
        for model in ("lstm", "conv1d"):
            for variant, settings in TEXTPIPE_SETTINGS.items():
                settings = {**settings, **({"epochs": epochs} if epochs is not None else {})}
                if variant == "adversarial":
                    settings["adversarial"] = ADVERSARIAL[model]
                if variant == "accurate_vectors":
                    settings["word_vectors"] = str(vectors)
                if variant.endswith("_unlabeled"):
                    if unlabeled_text is None:
                        continue  # no raw text for this dataset here
                    settings["unlabeled"] = str(unlabeled)
                methods[f"{model}_{variant}"] = _textpipe_method(model, settings, data.class_names)
        methods = {method: run for method, run in methods.items() if method in only}
        # The --no-ngrams methods scored from their --preset accurate method's bundles: {that method: method}.
        derived = {f"{model}_{mixed}": f"{model}_{alone}" for model in ("lstm", "conv1d")
                   for alone, mixed in NETWORK_OF.items() if {f"{model}_{alone}", f"{model}_{mixed}"} <= set(methods)}
        runs: dict[str, list[dict]] = {method: [] for method in methods}
        methods = {method: run for method, run in methods.items() if method not in derived.values()}
        groups = sentence_groups(pool.texts) if name in HELD_OUT_BY_SENTENCE else None
        for seed in seeds:
            if groups is None:
                fit_rows, held_rows = train_test_split(
                    np.arange(len(pool)), test_size=0.1, random_state=seed, stratify=pool.labels
                )
            else:
                fit_rows, held_rows = next(
                    GroupShuffleSplit(n_splits=1, test_size=0.1, random_state=seed).split(pool.texts, groups=groups)
                )
            fit = Split(pool.texts[np.sort(fit_rows)], pool.labels[np.sort(fit_rows)])
            held = Split(pool.texts[np.sort(held_rows)], pool.labels[np.sort(held_rows)])
            for method, run in methods.items():
                fit_key = f"{result_key(name, cap)} seed {seed} {method}"
                if journal is not None and fit_key in journal:
                    for done, record in journal[fit_key].items():
                        runs[done].append(record)
                    continue
                start = time.perf_counter()
                predict_proba, extra = run(fit, held, seed)
                seconds = time.perf_counter() - start  # fitting only: evaluation is not timed
                network = extra.pop("network", None)  # (predict_proba, seconds to train it) of a mixed bundle
                outcomes = [(method, predict_proba, {"seconds": seconds, **extra})]
                if method in derived:
                    alone = {k: v for k, v in extra.items() if k != "network_weight"}
                    outcomes.append((derived[method], network[0], {"seconds": network[1], **alone}))
                fitted = {}
                for done, proba, record in outcomes:
                    scores = _scores(data.validation, proba, data.class_names)
                    fitted[done] = {"seed": seed, **record, **scores}
                    runs[done].append(fitted[done])
                    log(f"{name} seed {seed} {done}: accuracy {scores['accuracy']:.4f} "
                        f"macro F1 {scores['macro_f1']:.4f} ({record['seconds']:.0f} s)")
                if journal is not None:
                    journal.add(fit_key, fitted)
        results["datasets"][result_key(name, cap)] = {
            "seeds": seeds,
            "max_train_rows": cap,  # None: the whole pool
            "classes": list(data.class_names),
            "train_rows": len(pool) - len(held),
            "holdout_rows": len(held),
            "eval_rows": len(data.validation),
            "eval_split": "validation carved from train (seed 0)" if data.validation_from_train else "validation",
            "held_out_by": "sentence" if groups is not None else "row",
            "pretrained_vectors": pretrained,
            "unlabeled_text": unlabeled_text,
            "methods": {method: summarize(method_runs) for method, method_runs in runs.items()},
        }
        for mixed, alone in derived.items():
            results["datasets"][result_key(name, cap)]["methods"][alone]["network_of"] = mixed
    return results


class Journal:
    """The fits an accuracy run has finished, written to a file as each ends, so that a run stopped part way
    (killed, out of time) goes on from where it stopped when the same run is started again.

    `identity` names the run: its settings and the code and libraries that decide its results. A journal
    written under another identity is not read: the run starts afresh and replaces it when its first fit ends.
    Fits are seeded and deterministic on CPU, so the results a resumed run keeps are those it would have
    computed. The machine is not part of the identity (a run may go on on another one); each fit keeps the name
    of the `machine` it ran on, with its time as measured there.
    """

    def __init__(self, path: Path, identity: dict, machine: str):
        self.path, self.identity, self.machine = path, identity, machine
        saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        self.fits: dict[str, dict] = saved.get("fits", {}) if saved.get("identity") == identity else {}

    def __contains__(self, fit_key: str) -> bool:
        return fit_key in self.fits

    def __getitem__(self, fit_key: str) -> dict:
        return self.fits[fit_key]

    def add(self, fit_key: str, results: dict) -> None:
        self.fits[fit_key] = {method: {**record, "machine": self.machine} for method, record in results.items()}
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_text(json.dumps({"identity": self.identity, "fits": self.fits}) + "\n", encoding="utf-8")
        os.replace(partial, self.path)  # a run killed while writing leaves the last whole journal

    def close(self) -> None:
        """The run is done: its results are in the report."""
        self.path.unlink(missing_ok=True)


def code_digest(*paths: Path) -> str:
    """A digest of the Python files at `paths` (files, or folders read whole): whether two runs ran the same code."""
    digest = hashlib.sha256()
    for path in paths:
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(path.parent).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def sentence_groups(texts: np.ndarray, rebuild_every: int = 64) -> np.ndarray:
    """A group id per row: a longest row whose text contains it (its sentence, for a set of parse-tree
    phrases), so that holding out whole groups keeps a sentence's phrases on one side.

    Rows are visited longest first; a row found in no earlier sentence starts a group of its own. A phrase
    found in several sentences joins the first, so it may still be read inside a fitted row (on SST-2, 6% of
    held-out phrases, short common ones, against 89% when rows are held out one by one).
    """
    stripped = [str(text).strip() for text in texts]
    sentences: list[str] = []
    joined, starts = "", []  # the sentences so far, one per line, and where each starts in `joined`
    groups = np.empty(len(stripped), dtype=np.int64)
    for row in sorted(range(len(stripped)), key=lambda i: -len(stripped[i])):
        text = stripped[row]
        at = joined.find(text) if text else -1
        if at >= 0:
            groups[row] = bisect.bisect_right(starts, at) - 1
            continue
        recent = next((k for k in range(len(starts), len(sentences)) if text in sentences[k]), None)
        if recent is not None:
            groups[row] = recent
            continue
        groups[row] = len(sentences)
        sentences.append(text)
        if len(sentences) - len(starts) >= rebuild_every:
            starts = list(np.cumsum([0] + [len(t) + 1 for t in sentences[:-1]]))
            joined = "\n".join(sentences)
    return groups


def tfidf_lr(fit, held, seed: int, *, restricted: bool) -> tuple[Callable, dict]:
    """TF-IDF + logistic regression: either on the textpipe default's vocabulary budget (unigrams,
    the 1,022 most frequent words), or unrestricted word 1-2-grams seen in at least two texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if restricted:
        pipeline = make_pipeline(
            TfidfVectorizer(max_features=RESTRICTED_FEATURES, sublinear_tf=True),
            LogisticRegression(max_iter=2000, random_state=seed),
        )
        pipeline.fit(fit.texts, fit.labels)
        return pipeline.predict_proba, {"features": len(pipeline[0].vocabulary_)}
    best, best_score = None, -1.0
    for c in NGRAM_C:  # the held-out rows choose C, as textpipe's choose its epoch
        pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            LogisticRegression(C=c, max_iter=2000, random_state=seed),
        )
        pipeline.fit(fit.texts, fit.labels)
        score = pipeline.score(held.texts, held.labels)
        if score > best_score:
            best, best_score = pipeline, score
    return best.predict_proba, {"features": len(best[0].vocabulary_), "C": best[-1].C}


def _textpipe_method(model: str, settings: dict, class_names) -> Callable:
    """A method that trains textpipe with `settings`. Where the bundle mixes in the n-gram model, its extra results
    also hold "network": (predict_proba, fit seconds) of the network without it."""

    def run(fit, held, seed):
        import keras

        from textpipe.bundle import end_to_end
        from textpipe.config import Config
        from textpipe.data import LabeledData
        from textpipe.training import train

        class NetworkTrained(keras.callbacks.Callback):
            def on_train_end(self, logs=None):
                self.seconds = time.perf_counter() - start

        data = LabeledData(fit, held, None, tuple(class_names), "text", "label", True)
        clock, start = NetworkTrained(), time.perf_counter()
        bundle = train(Config(model=model, seed=seed, **settings), data, callbacks=[clock])
        chosen = {"vocab_size": bundle.config.vocab_size, "sequence_length": bundle.config.sequence_length,
                  "adversarial": bundle.config.adversarial, "vocabulary": bundle.config.vocabulary,
                  "batch_size": bundle.config.batch_size, "average_weights": bundle.config.average_weights}
        extra = {"epochs_run": len(bundle.history["loss"]), "kept_epoch": bundle.kept_epoch["epoch"],
                 "settings": chosen}
        if bundle.ngrams:
            extra["network_weight"] = bundle.ngrams["network_weight"]
            network = dataclasses.replace(bundle, model=end_to_end(bundle.vectorizer, bundle.network), ngrams={})
            extra["network"] = (network.predict_proba, clock.seconds)
        return bundle.predict_proba, extra

    return run


def _scores(split, predict_proba: Callable, class_names) -> dict:
    from textpipe.evaluation import classification_metrics

    metrics = classification_metrics(split.labels, predict_proba(split.texts), class_names)
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}


def join_seeds(earlier: dict, later: dict) -> dict:
    """`later`, a method's summary, over its own runs and `earlier`'s runs of the seeds it did not run, in seed
    order: how a benchmark too long for one sitting is measured a few seeds at a time."""
    ran = {run["seed"] for run in later["runs"]}
    # Each earlier run keeps the command and date that made it; runs from before runs had their own take the method's.
    made_by = {key: earlier[key] for key in ("command", "date") if key in earlier}
    kept = [{**made_by, **run} for run in earlier["runs"] if run["seed"] not in ran]
    runs = sorted(kept + later["runs"], key=lambda run: run["seed"])
    return {**later, **summarize(runs)}


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
    for key in ("epochs_run", "kept_epoch", "settings", "C"):
        if key in runs[0]:
            out[key] = [r[key] for r in runs]
    return out
