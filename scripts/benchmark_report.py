"""BENCHMARKS.md from the results benchmark.py keeps in BENCHMARKS.json."""

from __future__ import annotations

METHODS = {
    "tfidf_lr_restricted": "TF-IDF + LR, 1,022 words",
    "tfidf_lr_ngrams": "TF-IDF + LR, word 1-2-grams",
    "lstm_default": "textpipe lstm, defaults",
    "conv1d_default": "textpipe conv1d, defaults",
    "lstm_tuned": "textpipe lstm, tuned",
    "conv1d_tuned": "textpipe conv1d, tuned",
}
DATASET_NAMES = {"sst2": "SST-2", "imdb": "IMDB", "emotion": "emotion"}


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


def mean_sd(stats: dict, scale: float = 100.0) -> str:
    return f"{stats['mean'] * scale:.1f} ± {stats['std'] * scale:.1f}"


def render_accuracy(section: dict) -> str:
    lines = [
        "## Accuracy against TF-IDF + logistic regression\n",
        stamp(section),
        "Means ± sample standard deviation over the seeds each dataset names, in percent. Every method is "
        "fitted on the same rows: the training pool (capped where a dataset says so, the same rows for every "
        "seed and method), less a stratified 10% that each seed holds out for textpipe's validation loss (early stopping). "
        "Scores are on the evaluation split named per dataset, which no method sees while fitting. Fit time is "
        "wall-clock seconds for fitting only (textpipe: vocabulary, word vectors, training).\n",
        "Tuned textpipe settings are flags any user can pass, derived from the training texts alone: "
        "`--vocab-size 10000`, `--sequence-length` covering 99% of the texts (at most 256 for the lstm, which "
        "steps through positions one by one, and 512 for conv1d), `--batch-size 32`, "
        "`--epochs 15 --patience 2` (early stopping that keeps the best epoch); conv1d also gets "
        "`--word-vectors` learned by textpipe's skip-gram on all of the dataset's training text (standing in "
        "for downloaded GloVe vectors, which this machine cannot fetch).\n",
    ]
    verdicts = []
    for name, data in section["datasets"].items():
        title = DATASET_NAMES.get(name, name)
        tuned = data["tuned_settings"]
        seeds = ", ".join(map(str, data["seeds"]))
        cap = f"capped at {data['max_train_rows']:,}" if data.get("max_train_rows") else "not capped"
        lines.append(
            f"### {title}\n\n{data['train_rows']:,} training rows (pool {cap}), {data['holdout_rows']:,} held out, "
            f"{data['eval_rows']:,} evaluation rows ({data['eval_split']}); {len(data['classes'])} classes; "
            f"seeds {seeds}. Tuned sequence length: lstm {tuned['lstm']['sequence_length']}, conv1d "
            f"{tuned['conv1d']['sequence_length']}; conv1d's tuned word vectors learned on "
            f"{data['pretrained_vectors']['texts']:,} texts in {data['pretrained_vectors']['seconds']:,.0f} s. "
            f"Run by `{data['command']}` on {data['date']}, on {data['cores_used']} core{'s' if data['cores_used'] != 1 else ''}.\n"
        )
        lines.append("| method | accuracy | macro F1 | fit time (s) | epochs run |\n|---|---|---|---|---|")
        methods = data["methods"]
        for key, label in METHODS.items():
            if key not in methods:
                continue
            m = methods[key]
            epochs = ", ".join(map(str, m["epochs_run"])) if "epochs_run" in m else "–"
            lines.append(
                f"| {label} | {mean_sd(m['accuracy'])} | {mean_sd(m['macro_f1'])} | {m['seconds']['mean']:,.0f} | {epochs} |"
            )
        lines.append("")
        verdicts.extend(targets(title, methods))
    lines.append("### Targets\n")
    lines.append("Mean accuracy, in points; a target is met when the difference is ≥ 0 (≥ -1 for IMDB's second one).\n")
    lines.append("| dataset | comparison | difference | met |\n|---|---|---|---|")
    lines.extend(verdicts)
    return "\n".join(lines) + "\n"


def targets(title: str, methods: dict) -> list[str]:
    acc = {k: v["accuracy"]["mean"] * 100 for k, v in methods.items()}
    rows = []
    for model in ("lstm", "conv1d"):
        diff = acc[f"{model}_default"] - acc["tfidf_lr_restricted"]
        rows.append(f"| {title} | {model} defaults − TF-IDF + LR on 1,022 words | {diff:+.1f} | {'yes' if diff >= 0 else 'no'} |")
    best = max((k for k in acc if k.startswith(("lstm", "conv1d"))), key=acc.get)
    diff = acc[best] - acc["tfidf_lr_ngrams"]
    bar = -1.0 if title == "IMDB" else 0.0
    rows.append(f"| {title} | best textpipe ({METHODS[best]}) − TF-IDF + LR on 1-2-grams | {diff:+.1f} | {'yes' if diff >= bar else 'no'} |")
    return rows


def render_scoring(section: dict) -> str:
    s = section["scoring"]
    memory = "; ".join(f"{k.replace('_lines_mib', '')} lines: {mib:,.0f} MiB" for k, mib in s["peak_memory"].items())
    text = f"""## Scoring

{stamp(section)}- texts: {section['texts']}; medians of {section['repeats']} runs, the two sides of each ratio interleaved

### `textpipe score` against in-memory `model.predict`

Default lstm bundle, {s['lines']:,} lines in a plain text file, batch 512, JSON Lines output.

| path | rows/s |
|---|---|
| `score_files` (read, batch, predict, write) | {s['score_rows_per_s']:,.0f} |
| `model.predict` on one in-memory tensor | {s['predict_rows_per_s']:,.0f} |
| ratio (target ≥ 0.9) | **{s['ratio']:.2f}** |

Peak resident memory of a fresh scoring process (bundle loaded, TensorFlow included): {memory}.
"""
    if "beam" in section:
        text += render_beam(section["beam"])
    return text


def render_throughput(section: dict) -> str:
    t, v = section["training"], section["vectorizer"]
    text = f"""## Training input, vectorizer and inference

{stamp(section)}- texts: {section['texts']}; medians of {section['repeats']} runs, the two sides of each ratio interleaved

### Training input: tf.data pipeline against numpy arrays

One epoch of the default lstm (batch 16) on {t['rows']:,} rows.

| input | examples/s |
|---|---|
| textpipe's tf.data pipeline (vectorize, cache, shuffle, batch, prefetch) | {t['pipeline_examples_per_s']:,.0f} |
| pre-vectorized numpy arrays | {t['numpy_examples_per_s']:,.0f} |
| ratio (target ≥ 0.95) | **{t['ratio']:.2f}** |

### Vectorizer

{v['texts']:,} texts: adapt {v['adapt_texts_per_s']:,.0f} texts/s; vectorize through tf.data {v['map_texts_per_s']:,.0f} texts/s.
"""
    if "inference" in section:
        text += render_inference(section["inference"])
    return text


def render_inference(i: dict) -> str:
    rows = "\n".join(
        f"| {name} | {m['flops_per_text'] / 1e6:,.1f} | {m['floor_texts_per_s']:,.0f} | {m['texts_per_s']:,.0f} | **{m['share_of_floor']:.2f}** |"
        for name, m in i["models"].items()
    )
    return f"""
### Model-only inference against the floating-point floor

The default models on {i['rows']:,} inputs in batches of {i['batch']} (token ids for the lstm, 100-dim word
vectors for conv1d), called through one traced function. The floor is what the model's matrix products alone
would allow at the machine's measured float32 matmul rate ({i['matmul_gflops_per_s']:,.0f} GFLOP/s on 2048×2048
products): FLOPs per text ÷ that rate. Element-wise work is not counted, so a share of 1.0 is out of reach.

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
