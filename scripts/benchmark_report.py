"""BENCHMARKS.md from the results benchmark.py keeps in BENCHMARKS.json."""

from __future__ import annotations

import collections

from accuracy_benchmark import ADVERSARIAL
from textpipe.presets import ADVERSARIAL_FRACTION, ADVERSARIAL_MIN_TEXTS, MAX_AUTO_LENGTH, SENTENCE_WORDS

METHODS = {
    "tfidf_lr_restricted": "TF-IDF + LR, 1,022 words",
    "tfidf_lr_ngrams": "TF-IDF + LR, word 1-2-grams (C of 1, 4)",
    "lstm_default": "textpipe lstm, defaults",
    "conv1d_default": "textpipe conv1d, defaults",
    "lstm_truncate": "textpipe lstm, --long-texts truncate",
    "conv1d_truncate": "textpipe conv1d, --long-texts truncate",
    "lstm_all_epochs": "textpipe lstm, every epoch, last kept",
    "conv1d_all_epochs": "textpipe conv1d, every epoch, last kept",
    "lstm_accurate_ngrams": "textpipe lstm, --preset accurate",
    "conv1d_accurate_ngrams": "textpipe conv1d, --preset accurate",
    "lstm_accurate": "textpipe lstm, --preset accurate --no-ngrams",
    "conv1d_accurate": "textpipe conv1d, --preset accurate --no-ngrams",
    "conv1d_accurate_vectors": "textpipe conv1d, --preset accurate --no-ngrams --word-vectors",
    "lstm_accurate_unlabeled": "textpipe lstm, --preset accurate --no-ngrams --unlabeled",
    "conv1d_accurate_unlabeled": "textpipe conv1d, --preset accurate --no-ngrams --unlabeled",
    "lstm_accurate_ngrams_unlabeled": "textpipe lstm, --preset accurate --unlabeled",
    "conv1d_accurate_ngrams_unlabeled": "textpipe conv1d, --preset accurate --unlabeled",
    "lstm_adversarial": f"textpipe lstm, --adversarial {ADVERSARIAL['lstm']}",
    "conv1d_adversarial": f"textpipe conv1d, --adversarial {ADVERSARIAL['conv1d']}",
    "lstm_no_adversarial": "textpipe lstm, --adversarial 0",
    "conv1d_no_adversarial": "textpipe conv1d, --adversarial 0",
    "lstm_frequent": "textpipe lstm, --vocabulary frequent",
    "conv1d_frequent": "textpipe conv1d, --vocabulary frequent",
}
DATASET_NAMES = {"sst2": "SST-2", "imdb": "IMDB", "emotion": "emotion", "sst2_sentences": "SST-2 sentences"}
# What a dataset's section says of its rows, where more than its name.
DATASET_NOTES = {
    "sst2_sentences": "SST-2's training rows with only the longest row of each parsed sentence kept, the whole "
                      "sentence, not its phrases: the closest stand-in here for a small set of sentences. ",
}


def render(results: dict) -> str:
    parts = [
        "# Benchmarks\n",
        "Written by `scripts/benchmark.py` (`--report-only` rewrites this file from BENCHMARKS.json). Each section\n"
        "says how it was run; every ratio compares two measurements taken in the same process.\n",
    ]
    if "accuracy" in results:
        parts.append(render_accuracy(results["accuracy"]))
    if "scoring" in results:
        parts.append(render_scoring(results["scoring"]))
    if "throughput" in results:
        parts.append(render_throughput(results["throughput"]))
    if "optimizer" in results:
        parts.append(render_optimizer(results["optimizer"]))
    if "vectorizer" in results:
        parts.append(render_vectorizer(results["vectorizer"]))
    if "startup" in results:
        parts.append(render_startup(results["startup"]))
    if "report" in results:
        parts.append(render_report(results["report"]))
    return "\n".join(parts)


def stamp(section: dict) -> str:
    m = section["machine"]
    used = m.get("cores_used", m["cores"])
    cores = f"{m['cores']} cores" + (f" ({used} used: the run was pinned with taskset)" if used != m["cores"] else "")
    return (
        f"- command: `{section['command']}`\n"
        f"- date: {section['date']}\n"
        f"- machine: {m['cpu']}, {cores}, {m['memory_gib']} GiB, GPU: {'yes' if m['gpu'] else 'no'}; "
        f"Python {m['python']}, TensorFlow {m['tensorflow']}\n"
    )


def mean_sd(stats: dict, runs: int) -> str:
    """'85.1 ± 1.3' in percent; '85.1' for one run, which has no spread to show."""
    mean = f"{stats['mean'] * 100:.1f}"
    return mean if runs == 1 else f"{mean} ± {stats['std'] * 100:.1f}"


def span(values: list[int]) -> str:
    """'24' when every seed chose the same number, else '3,591–3,628'."""
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def recorded_adversarial(settings: list[dict]) -> bool:
    """Whether every run recorded the adversarial fraction its preset chose (runs before they did, did not)."""
    return bool(settings) and all("adversarial" in s for s in settings)


def adversarial_chosen(settings: list[dict]) -> str:
    """', adversarial 0.1' where the runs recorded the fraction their preset chose (runs before it did: '')."""
    if not recorded_adversarial(settings):
        return ""
    fractions = sorted({s["adversarial"] for s in settings})
    return ", adversarial " + " or ".join(f"{f:g}" if f else "off" for f in fractions)


# The datasets whose texts are sentence-length, on which "auto" trains adversarially (the section's intro).
SENTENCE_DATASETS = ("sst2", "sst2_sentences", "emotion")


def before_adversarial_accurate(dataset: str, key: str, method: dict) -> bool:
    """Whether a `--preset accurate` row on sentence-length texts comes from runs made before the preset trained
    its model adversarially (the lstm's, then the conv1d model's): runs since record the fraction chosen."""
    _, _, variant = key.partition("_")  # "lstm_accurate_ngrams": "accurate_ngrams"
    return (variant.startswith("accurate") and dataset in SENTENCE_DATASETS
            and not recorded_adversarial(method.get("settings", [])))


# The methods that train with the defaults' vocabulary (the preset's and --vocabulary frequent choose their own).
DEFAULT_VOCABULARY = ("default", "all_epochs", "truncate", "adversarial", "no_adversarial")


def recorded_vocabulary(method: dict) -> bool:
    """Whether every run recorded how its vocabulary was chosen (runs before `--vocabulary` did not)."""
    settings = method.get("settings", [])
    return bool(settings) and all("vocabulary" in s for s in settings)


def before_informative_vocabulary(key: str, method: dict) -> bool:
    """Whether a row that trains with the defaults' vocabulary comes from runs made before the defaults chose
    half of its words by what they tell of the label: runs since record the choice."""
    _, _, variant = key.partition("_")  # "lstm_all_epochs": "all_epochs"
    return variant in DEFAULT_VOCABULARY and not recorded_vocabulary(method)


def before_conv1d_accurate(key: str, method: dict) -> bool:
    """Whether a conv1d `--preset accurate` row comes from runs made before the preset trained the conv1d model
    as the seed preset does (batches of 16, weights averaged) on the words seen five times, in windows that hold
    the longest training text: runs since record the batch size."""
    settings = method.get("settings", [])
    return key.startswith("conv1d_accurate") and not (settings and all("batch_size" in s for s in settings))


# Runs from this date on trained the lstm's first epoch without pushing its word vectors when it trained
# adversarially from a random Embedding (training.PLAIN_EPOCHS); earlier runs pushed them from the first step.
PLAIN_FIRST_EPOCH_SINCE = "2026-12-07"


def before_plain_first_epoch(dataset: str, key: str, method: dict) -> bool:
    """Whether an lstm row that trains adversarially from a random Embedding (not from --unlabeled text's
    vectors) comes from runs made before its first epoch trained unpushed."""
    if not key.startswith("lstm_") or "unlabeled" in key or key.endswith("_no_adversarial"):
        return False
    settings = method.get("settings", [])
    if recorded_adversarial(settings):
        adversarial = any(s["adversarial"] for s in settings)
    else:  # before the fraction was recorded: on where forced, or where "auto" turned it on
        adversarial = key.endswith("_adversarial") or (key.endswith("_frequent") and dataset in SENTENCE_DATASETS)
    return adversarial and any(run.get("date", method["date"]) < PLAIN_FIRST_EPOCH_SINCE for run in method["runs"])


def before_short_lstm_windows(key: str, method: dict) -> bool:
    """Whether an lstm `--preset accurate` row comes from runs whose window was longer than the preset's lstm now
    reads (MAX_AUTO_LENGTH): runs made before its window was capped there, on texts longer than that."""
    settings = method.get("settings", [])
    return key.startswith("lstm_accurate") and any(s["sequence_length"] > MAX_AUTO_LENGTH["lstm"] for s in settings)


def rules_note(dataset: str, key: str, method: dict) -> str:
    """What a row's label adds when it ran before one of today's rules for its method: the preset's adversarial
    training on sentence-length texts (before_adversarial_accurate), its lstm window (before_short_lstm_windows),
    its conv1d rules (before_conv1d_accurate), the lstm's plain first epoch (before_plain_first_epoch)."""
    note = ""
    if before_adversarial_accurate(dataset, key, method):
        note += " (before the preset trained adversarially)"
    if before_short_lstm_windows(key, method):
        lengths = span([s["sequence_length"] for s in method["settings"]])
        note += f" ({lengths}-token windows, before the preset capped the lstm's at {MAX_AUTO_LENGTH['lstm']})"
    if before_conv1d_accurate(key, method):
        note += " (before the conv1d rules: words seen twice, batches of 32)"
    if before_plain_first_epoch(dataset, key, method):
        note += " (before the plain first epoch)"
    return note


def preset_choices(dataset: str, methods: dict) -> list[tuple[str, dict]]:
    """Per model, the `--preset accurate` row whose runs' settings the section's header gives: the network
    alone's, or the mix's where only that one ran under the preset's current rules."""
    chosen = []
    for model in dict.fromkeys(key.split("_")[0] for key in methods if key.endswith("_accurate")):
        rows = [(key, methods[key]) for key in (f"{model}_accurate", f"{model}_accurate_ngrams")
                if "settings" in methods.get(key, {})]
        current = [(key, m) for key, m in rows if not rules_note(dataset, key, m)]
        chosen.extend((current or rows)[:1])
    return chosen


def render_accuracy(section: dict) -> str:
    lines = [
        "## Accuracy against TF-IDF + logistic regression\n",
        stamp(section),
        "Means ± sample standard deviation over the seeds each dataset names, in percent. Every method is "
        "fitted on the same rows: the training pool (capped where a dataset says so, the same rows for every "
        "seed and method), less a stratified 10% that each seed holds out (SST-2's a sentence at a time, as "
        "its section says), on which textpipe chooses the epoch it keeps and TF-IDF + LR on 1-2-grams its C. "
        "Scores are on the evaluation split named per dataset, "
        "which no method sees while fitting. Fit time is wall-clock seconds for fitting only (textpipe: "
        "vocabulary, word vectors, training).\n",
        "textpipe runs as `textpipe train` would: defaults (up to 10 epochs, the best by validation macro F1 "
        "kept, stopping after 3 without a better one; the conv1d model's weights averaged over the last 100 "
        f"steps; adversarial training, as `--adversarial` below, on {ADVERSARIAL_MIN_TEXTS:,} training texts or "
        f"more, at least half of them within {SENTENCE_WORDS} words, by {ADVERSARIAL_FRACTION['lstm']} for the lstm and "
        f"{ADVERSARIAL_FRACTION['conv1d']} for the conv1d model: on SST-2 and emotion, not on IMDB; the lstm's "
        "word vectors, which start random, are not pushed in its first epoch: rows whose label says so ran before, "
        "pushed from the first step); "
        "`--patience off --keep-last-epoch "
        "--no-average-weights` (all 10 epochs, the last step's weights kept, as textpipe 0.2 and the reference "
        "model did, adversarial training as in the defaults); `--preset accurate` (vocabulary and sequence "
        "length from the training texts, up to 15 epochs, the lstm in batches of 32 and max-pooled, in windows "
        f"for 95% of the texts up to {MAX_AUTO_LENGTH['lstm']} tokens (rows whose label says so ran before, in "
        "longer windows), the conv1d "
        "model in batches of 16 with its weights averaged, on the words seen five times (twice with "
        "--word-vectors or --unlabeled) and in windows that hold the longest text (rows whose label says so "
        "ran before: words seen twice, batches of 32, windows for 95% of the texts), adversarial "
        "training as in the defaults (rows whose label says so ran before the preset trained so), the network's "
        "probabilities mixed with a linear model's on word 1-2-grams by a weight chosen on the held-out rows; "
        "`--no-ngrams`: the network alone; rows whose label says so are scored from the network inside the "
        "`--preset accurate` run's bundles, the same network, as the n-gram model trains after it, with the fit "
        "time up to the end of its training); `--adversarial F` (defaults, each batch also fitted with the "
        "word vectors it reads pushed in the direction that raises its loss most, by "
        f"{ADVERSARIAL['lstm']} of their length for the lstm, {ADVERSARIAL['conv1d']} for the conv1d model, "
        "whatever the texts; `--adversarial 0`: the defaults without it, as textpipe trained before it was "
        "a default); `--vocabulary frequent` (defaults, the 1,022 most frequent words, as textpipe chose them "
        "before; rows whose label says so ran before the defaults chose half of them by what they tell of the "
        "label). "
        "`--word-vectors` "
        "gets skip-gram vectors learned by textpipe on all of the dataset's training text, standing in for "
        "downloaded GloVe vectors, which this machine cannot fetch. `--unlabeled` reads raw text of another "
        "dataset, as its section says, from which the skip-gram learns too. A text longer than the sequence "
        "length (most of IMDB's reviews, under the defaults) is read in windows, combined by their mean "
        "log-odds, each window counting once (bundle format 4); rows kept from runs whose note says format 3 "
        "combined them by their mean probability, each window weighted by its tokens. Runs of format 4 and "
        "earlier read text with Keras' built-in standardization, not textpipe's (format 5, which reads Unicode "
        "punctuation and emoji as the Vectorizer section says): SST-2's and emotion's texts give the same "
        "token ids either way, and 991 of IMDB's 25,000 reviews (4%) differ by a token or a few.\n",
    ]
    verdicts = []
    for dataset_key, data in section["datasets"].items():
        name, cap = dataset_key.partition("@")[0], data.get("max_train_rows")
        title = DATASET_NAMES.get(name, name) + (", whole training set" if cap is None else f", {cap:,}-row pool")
        seeds = ", ".join(map(str, data["seeds"]))
        pool = "not capped" if cap is None else f"capped at {cap:,}"
        vectors = data.get("pretrained_vectors")
        vectors = (f" `--word-vectors` learned on {vectors['texts']:,} texts in {vectors['seconds']:,.0f} s."
                   if vectors else "")
        unlabeled = data.get("unlabeled_text")
        if unlabeled:
            source = DATASET_NAMES.get(unlabeled["source"], unlabeled["source"])
            vectors += f" `--unlabeled` read {unlabeled['texts']:,} {source} training texts, labels unread."
        chosen = "; ".join(
            f"{key.split('_')[0]} {span([s['vocab_size'] for s in m['settings']])} words, length "
            f"{span([s['sequence_length'] for s in m['settings']])}{adversarial_chosen(m['settings'])}"
            for key, m in preset_choices(name, data["methods"])
        )
        chosen = f" `--preset accurate` chose: {chosen}." if chosen else ""
        lines.append(
            f"### {title}\n\n{DATASET_NOTES.get(name, '')}{data['train_rows']:,} training rows (pool {pool}), {data['holdout_rows']:,} held out{held_out_by(data)}, "
            f"{data['eval_rows']:,} evaluation rows ({data['eval_split']}); {len(data['classes'])} classes; "
            f"seeds {seeds}.{chosen}{vectors} "
            f"Run by `{data['command']}` on {data['date']}, on {data['cores_used']} core{'s' if data['cores_used'] != 1 else ''}"
            f"{machines_note(data)}.\n"
        )
        lines.append("| method | accuracy | macro F1 | fit time (s) | epoch kept / run, per seed |\n|---|---|---|---|---|")
        methods = data["methods"]
        # Rows kept from earlier runs point to a numbered note naming the run (several, where seeds were added).
        earlier = sorted({run for m in methods.values() for run in earlier_runs(m, data)})
        note_of = {run: number for number, run in enumerate(earlier, start=1)}
        for key, label in METHODS.items():
            if key not in methods:
                continue
            m = methods[key]
            if "kept_epoch" in m:
                epochs = ", ".join(f"{k}/{r}" for k, r in zip(m["kept_epoch"], m["epochs_run"]))
            else:
                epochs = ", ".join(map(str, m.get("epochs_run", []))) or "–"
            if all("network_weight" in r for r in m["runs"]):  # --ngrams: the n-gram model's share of the mix
                epochs += "; n-gram weight " + ", ".join(f"{1 - r['network_weight']:.1f}" for r in m["runs"])
            label += rules_note(name, key, m)
            if "network_of" in m:
                label += " (the network of the `--preset accurate` run)"
            if before_informative_vocabulary(key, m):
                label += " (before `--vocabulary informative` was the default: the most frequent words)"
            elif key.endswith("_frequent") and not recorded_vocabulary(m):
                label += " (the defaults' runs from before `--vocabulary informative`)"
            seeds_run = [r["seed"] for r in m["runs"]]
            if seeds_run != data["seeds"]:
                label += f" (seed{'s' if len(seeds_run) > 1 else ''} {', '.join(map(str, seeds_run))})"
            notes = sorted(note_of[run] for run in earlier_runs(m, data))
            mark = " " + "".join(f"[{n}]" for n in notes) if notes else ""
            scores = " | ".join(mean_sd(m[key], len(seeds_run)) for key in ("accuracy", "macro_f1"))
            lines.append(f"| {label}{mark} | {scores} | {m['seconds']['mean']:,.0f} | {epochs} |")
        for (command, date, version, fmt, by), number in note_of.items():
            drawn = " (held-out rows drawn row by row)" if by != data.get("held_out_by", "row") else ""
            lines.append(f"\n[{number}] kept from an earlier run: textpipe {version} (bundle format {fmt}), `{command}` "
                         f"on {date}{drawn}.")
        lines.append("")
        verdicts.extend(targets(title, methods, name))
    lines.append("### Targets\n")
    lines.append("Mean accuracy, in points. A target is met when the difference is ≥ 0, ≥ -1 for the lstm "
                 "alone against 1-2-grams, and ≥ minus the larger seed spread (standard deviation) for early stopping "
                 "against every epoch.\n")
    lines.append("| dataset | comparison | difference | met |\n|---|---|---|---|")
    lines.extend(verdicts)
    return "\n".join(lines) + "\n"


def run_commands(method: dict, data: dict) -> set[tuple[str, str]]:
    """The (command, date) of each of a method's seeds: one, unless seeds were added to an earlier run."""
    command, date = method.get("command", data["command"]), method.get("date", data["date"])
    return {(run.get("command", command), run.get("date", date)) for run in method["runs"]}


def machines_note(data: dict) -> str:
    """Where a run stopped part way went on on another machine: how many of its fits ran on each."""
    machines = collections.Counter(run["machine"] for method in data["methods"].values() for run in method["runs"]
                                   if (run.get("command"), run.get("date")) == (data["command"], data["date"])
                                   and "machine" in run)
    if len(machines) < 2:
        return ""
    return " (resumed on another machine; fits per machine: " + ", ".join(
        f"{machine} {count}" for machine, count in sorted(machines.items())) + ")"


def earlier_runs(method: dict, data: dict) -> set[tuple[str, str, str, str, str]]:
    """The (command, date, textpipe version, bundle format, held-out rows' drawing) of each run behind a method's
    row that an earlier run than the section's own made: another command, or the same one on another day. Runs
    before the format was recorded were of format 3 or earlier (a long text's windows combined by their
    token-weighted mean probability)."""
    version, by = method.get("textpipe", "?"), method.get("held_out_by", "row")
    fmt = str(method.get("bundle_format", "3 or earlier"))
    return {(command, date, version, fmt, by) for command, date in run_commands(method, data)
            if (command, date) != (data["command"], data["date"])}


def held_out_by(data: dict) -> str:
    """How the held-out rows were drawn, where not row by row."""
    if data.get("held_out_by") != "sentence":
        return ""
    return " a sentence at a time (the phrases of one parsed sentence all on one side)"


def targets(title: str, methods: dict, dataset: str) -> list[str]:
    acc = {k: v["accuracy"]["mean"] * 100 for k, v in methods.items()}
    sd = {k: v["accuracy"]["std"] * 100 for k, v in methods.items()}
    rows = []

    def row(comparison: str, diff: float, bar: float) -> None:
        rows.append(f"| {title} | {comparison} | {diff:+.1f} | {'yes' if diff >= bar else 'no'} |")

    before = {key: before_informative_vocabulary(key, method) for key, method in methods.items()}

    def defaults(model: str) -> str:
        stale = before[f"{model}_default"]
        label = f"{model} defaults" + (" (the most frequent words, before `--vocabulary informative`)" if stale else "")
        return label + rules_note(dataset, f"{model}_default", methods[f"{model}_default"])

    for model in ("lstm", "conv1d"):
        if f"{model}_default" in acc and "tfidf_lr_restricted" in acc:
            row(f"{defaults(model)} − TF-IDF + LR on 1,022 words", acc[f"{model}_default"] - acc["tfidf_lr_restricted"], 0.0)
    for model in ("lstm", "conv1d"):
        if f"{model}_default" in acc and f"{model}_all_epochs" in acc:
            spread = max(sd[f"{model}_default"], sd[f"{model}_all_epochs"])
            kept = "best epoch, weights averaged" if model == "conv1d" else "best epoch"
            comparison = f"{defaults(model)} ({kept}) − every epoch, last kept"
            diff = acc[f"{model}_default"] - acc[f"{model}_all_epochs"]
            if before[f"{model}_all_epochs"] != before[f"{model}_default"]:  # two vocabularies: not early stopping
                rows.append(f"| {title} | {comparison} (not comparable: the rows ran with different vocabularies) "
                            f"| {diff:+.1f} | – |")
                continue
            if len({before_plain_first_epoch(dataset, f"{model}_{v}", methods[f"{model}_{v}"]) for v in ("default", "all_epochs")}) > 1:
                rows.append(f"| {title} | {comparison} (not comparable: one row ran before the plain first epoch) "
                            f"| {diff:+.1f} | – |")
                continue
            row(comparison, diff, -spread)
    # The preset, then the network alone (--no-ngrams), on the baselines' rows only.
    for suffix, flags in (("_accurate_ngrams", "`--preset accurate`"), ("_accurate", "`--preset accurate --no-ngrams`")):
        preset = [k for k in acc if k.endswith(suffix)]
        if preset and "tfidf_lr_ngrams" in acc:
            best = max(preset, key=acc.get)
            label = METHODS[best] + rules_note(dataset, best, methods[best])
            row(f"best {flags} ({label}) − TF-IDF + LR on 1-2-grams", acc[best] - acc["tfidf_lr_ngrams"], 0.0)
            if f"lstm{suffix}" in acc:
                note = rules_note(dataset, f"lstm{suffix}", methods[f"lstm{suffix}"])
                row(f"lstm {flags}{note} − TF-IDF + LR on 1-2-grams", acc[f"lstm{suffix}"] - acc["tfidf_lr_ngrams"], -1.0)
    more_text = [k for k in acc if k.endswith(("_accurate_vectors", "_unlabeled"))]
    if more_text and "tfidf_lr_ngrams" in acc:
        best = max(more_text, key=acc.get)
        label = METHODS[best] + rules_note(dataset, best, methods[best])
        rows.append(f"| {title} | {label} − TF-IDF + LR on 1-2-grams (no target: the baselines do not read "
                    f"the extra text) | {acc[best] - acc['tfidf_lr_ngrams']:+.1f} | – |")
    return rows


def render_scoring(section: dict) -> str:
    s = section["scoring"]
    memory = "; ".join(f"{k.replace('_lines_mib', '')} lines: {mib:,.0f} MiB" for k, mib in s["peak_memory"].items())
    r = s["rows_per_s"]
    narrow = ""
    if "score_narrow" in r:  # measured since the window grew
        narrow = (f"| `score_files` reading rows {s['narrow_window']} batches at a time, as it did before (now "
                  f"{s['window']} batches) | {r['score_narrow']:,.0f} |\n"
                  f"| **`score_files` ÷ the same, {s['narrow_window']}-batch windows** | **{s['wide_vs_narrow']:.2f}** |\n")
    text = f"""## Scoring

{stamp(section)}- texts: {section['texts']}; medians of {section['repeats']} runs, all paths interleaved

Default lstm bundle, {s['lines']:,} lines in a plain text file (or held in memory), batch 512, JSON Lines output.
The long texts are the same sentences joined into lines of 80 words; with punctuation stripped nearly every one
still runs past 64 tokens, so it is read as two windows.

| path | rows/s |
|---|---|
| `score_files` (read, batch by length, predict, write) | {r['score']:,.0f} |
| `Bundle.predict_proba` on the texts in memory (batched by length) | {r['predict_proba']:,.0f} |
| Keras `model.predict` on the texts in memory (batches in input order) | {r['keras_predict']:,.0f} |
| `score_files` on as many 80-word lines | {r['score_long']:,.0f} |
{narrow}| **`score_files` ÷ `predict_proba`** (target ≥ 0.9) | **{s['ratio']:.2f}** |
| **short ÷ long texts, `score_files`** (target ≥ 3) | **{s['short_vs_long']:.2f}** |

Peak resident memory of a fresh scoring process (bundle loaded, TensorFlow included): {memory}.
"""
    if "beam" in section:
        text += render_beam(section["beam"])
    return text


def render_throughput(section: dict) -> str:
    rows = []
    for name, t in section["training"].items():
        speed, steps, rate = t["speedup_vs_fixed"], t["steps_per_text"], t["examples_per_s"]
        rows.append(
            f"| {name} | {t['rows']:,} | {t['tokens_per_text']:.1f} | {steps['fixed']:.0f} / {steps['cut']:.1f} / "
            f"{steps['grouped']:.1f} | {rate['fixed']:,.0f} | {rate['numpy']:,.0f} | {rate['cut']:,.0f} | "
            f"{rate['grouped']:,.0f} | **{speed['grouped']:.2f}×** |"
        )
    table = "\n".join(rows)
    text = f"""## Training and inference throughput

{stamp(section)}- texts: {section['texts']} (training: each dataset's own); medians of {section['repeats']} runs, all feeds interleaved

### Training: batches cut to their longest text against fixed padding

The second epoch (the first includes tracing) of the default lstm (batch 16, sequence length 64) on the same
rows, fed four ways: *fixed* pads every batch to 64 steps, as textpipe 0.1 did; *numpy* is the same from
pre-vectorized arrays (the tf.data pipeline's own overhead); *cut* cuts batches of randomly mixed texts to their
longest text; *grouped*, textpipe's default, also sorts windows of 50 batches by length first. Steps per text
counts the padded positions the model runs over.

| texts | rows | real tokens per text | steps per text: fixed / cut / grouped | fixed (ex/s) | numpy (ex/s) | cut (ex/s) | grouped (ex/s) | grouped ÷ fixed |
|---|---|---|---|---|---|---|---|---|
{table}
{render_determinism(section["determinism"]) if "determinism" in section else ""}"""
    if "inference" in section:
        text += render_inference(section["inference"])
    return text


def render_vectorizer(section: dict) -> str:
    rows = "\n".join(
        f"| {name} | {v['texts']:,} | {v['chars_per_text']:,.0f} | {v['texts_per_s']['builtin']['adapt']:,.0f} | "
        f"{v['texts_per_s']['textpipe']['adapt']:,.0f} | **{v['cost_ratio']['adapt']:.2f}×** | "
        f"{v['texts_per_s']['builtin']['vectorize']:,.0f} | {v['texts_per_s']['textpipe']['vectorize']:,.0f} | "
        f"**{v['cost_ratio']['vectorize']:.2f}×** |"
        for name, v in section["texts"].items()
    )
    return f"""## Vectorizer: textpipe's standardization against Keras' built-in one

{stamp(section)}- texts: each dataset's training texts; medians of {section['repeats']} runs, the two interleaved

The default vectorizer (1,024 words, 64 tokens) adapted to the texts (counting words) and applied to them
through tf.data, with Keras' `"lower_and_strip_punctuation"` and with textpipe's standardization, which also
lower-cases non-ASCII letters, drops Unicode punctuation, splits at Unicode spaces and makes each emoji a word
(three regular-expression passes instead of one).

| texts | rows | characters per text | adapt, built-in (texts/s) | adapt, textpipe (texts/s) | time ÷ built-in | vectorize, built-in (texts/s) | vectorize, textpipe (texts/s) | time ÷ built-in |
|---|---|---|---|---|---|---|---|---|
{rows}
"""


def render_determinism(d: dict) -> str:
    rows = "\n".join(
        f"| {name} | {model} | {m['rows']:,} | {m['examples_per_s']['deterministic']:,.0f} | "
        f"{m['examples_per_s']['default']:,.0f} | **{m['cost_ratio']:.2f}×** |"
        for name, models in d.items() for model, m in models.items()
    )
    return f"""
### Training: the cost of deterministic kernels

`textpipe train` runs under TensorFlow's deterministic kernels on CPU, so that the same seed, data and settings
give the same model. The second epoch of each default model (batches grouped by length, as above) on the same
rows, with them and with TensorFlow's default kernels, interleaved; the conv1d model reads a random word-vector
table of the default width, since its cost does not depend on the values.

| texts | model | rows | deterministic (ex/s) | default kernels (ex/s) | time ÷ default kernels |
|---|---|---|---|---|---|
{rows}
"""


def render_optimizer(section: dict) -> str:
    rows = "\n".join(
        f"| {name} | {t['vocab_size']:,} | {t['sequence_length']} | {'yes' if t['adversarial'] else 'no'} | "
        f"{t['rows']:,} | {t['examples_per_s']['keras']:,.0f} | {t['examples_per_s']['rowwise']:,.0f} | "
        f"**{t['speedup']:.2f}×** |"
        for name, t in section["texts"].items()
    )
    return f"""## Training: updating the word table in the rows a batch reads

{stamp(section)}- medians of {section['epochs_per_fit']} epochs in each of {section['repeats']} fits per optimizer, the two interleaved

Keras's RMSprop recomputes the moving average of squared gradients of every row of an Embedding table on every
step, though a batch reads a few hundred of its rows. textpipe's RowwiseRMSprop updates only the rows read
and applies the decays a row's average missed when a batch next reads it: the same steps, to float rounding.
Epochs after the first of `--preset accurate`'s lstm (its vocabulary, window and adversarial training chosen
from each whole training set, as a real fit's are) on the same rows, with each optimizer, under the
deterministic kernels `textpipe train` uses.

| texts | words | window | adversarial | rows | Keras RMSprop (ex/s) | RowwiseRMSprop (ex/s) | speed-up |
|---|---|---|---|---|---|---|---|
{rows}
"""


def render_inference(i: dict) -> str:
    rows = "\n".join(
        f"| {name} | {m['flops_per_text'] / 1e6:,.2f} | {m['floor_texts_per_s']:,.0f} | {m['texts_per_s']:,.0f} | **{m['share_of_floor']:.2f}** |"
        for name, m in i["models"].items()
    )
    return f"""
### Model-only inference against the floating-point floor

The default models on {i['rows']:,} texts ({i['tokens_per_text']:.1f} real tokens each on average) as token ids,
sorted by length into batches of {i['batch']} as `predict_proba` and `textpipe score` form them, called through one
traced function. The floor is what the matrix products over the texts' real tokens alone would allow at the
machine's measured float32 matmul rate ({i['matmul_gflops_per_s']:,.0f} GFLOP/s on 2048×2048 products): one LSTM
step per real token; for conv1d, the convolutions over each text plus the 18 steps its receptive field reaches
past the text. Padding left inside a batch and element-wise work count against the share, so 1.0 is out of reach.

| model | MFLOPs per text | floor (texts/s) | measured (texts/s) | share of floor |
|---|---|---|---|---|
{rows}
"""


def render_beam(b: dict) -> str:
    return f"""
### Scoring on Apache Beam (DirectRunner) against `textpipe score`

The same bundle and {b['rows']:,}-line file; each run end to end (the Beam ones include building the pipeline and
every worker loading the bundle), interleaved, medians of {b['repeats']}.

| path | rows/s | ratio to `textpipe score` |
|---|---|---|
| `textpipe score`, in this process | {b['local_rows_per_s']:,.0f} | 1.00 |
| `--runner DirectRunner`, 1 worker (`in_memory`) | {b['beam_1_rows_per_s']:,.0f} | {b['beam_1_vs_local']:.2f} |
| `--runner DirectRunner`, 2 workers (`multi_processing`) | {b['beam_2_rows_per_s']:,.0f} | {b['beam_2_vs_local']:.2f} |
"""


def render_startup(section: dict) -> str:
    base = section["baseline_s"]
    rows = "\n".join(f"| {name} | {seconds:.2f} | {seconds / base:.2f} |" for name, seconds in section["seconds"].items())
    return f"""## Time to an error

{stamp(section)}- medians of {section['repeats']} runs of `python -m textpipe ...` in a fresh process, to its exit

Mistakes are found before TensorFlow is imported. The baseline is a process that imports TensorFlow and
nothing else ({base:.2f} s here): what each of these errors took when the command line imported it first.
An unreachable Hub id waits at most 3 s for an answer before it is looked for in the local cache.

| case | seconds | ÷ importing TensorFlow |
|---|---|---|
{rows}
"""


def render_report(section: dict) -> str:
    seconds = section["seconds"]
    return f"""## Report and explain

{stamp(section)}- medians of {section['repeats']} runs, each command in a fresh process, the two interleaved

A default lstm trained on {section['dataset']} (2 epochs), reported on its {section['split']} split
({section['rows']:,} rows): `textpipe report` against `textpipe evaluate` on the same rows, both timed to
their exit (starting Python and TensorFlow included). The report's page is {section['report_bytes'] / 1024:,.0f} KiB.

| command | seconds | ÷ evaluate |
|---|---|---|
| `textpipe evaluate BUNDLE --dataset emotion --split validation` | {seconds['evaluate']:.2f} | 1.00 |
| `textpipe report BUNDLE --dataset emotion --split validation -o r.html` | {seconds['report']:.2f} | {seconds['report'] / seconds['evaluate']:.2f} |

`Bundle.explain` on one 50-word text (51 variants in one model call, the model already traced):
{section['explain_50_words_s'] * 1000:,.0f} ms.
"""
