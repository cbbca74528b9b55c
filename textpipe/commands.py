"""What each `textpipe` subcommand does, given its parsed arguments (cli.py parses them): check the arguments,
call one library function, print. Each returns the exit status (see cli.py).

TensorFlow takes seconds to import, `datasets` about one: each command checks its arguments (paths, settings)
first and imports them after, so that a mistake is reported at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from textpipe.errors import TextpipeError, one_line


def run_train(args: argparse.Namespace) -> int:
    from textpipe.bundle_files import check_bundle_target
    from textpipe.config import load_config
    from textpipe.paths import check_training_paths
    from textpipe.sources import resolve_source

    config = load_config(args.config, {name: getattr(args, name) for name in args.config_fields})
    # Before hours of training, not after; and before the imports of datasets and TensorFlow, not after.
    check_training_paths(config)
    check_bundle_target(config.output)
    resolve_source(config.dataset)  # a local dataset that is not there
    if config.unlabeled is not None:
        from textpipe.unlabeled import check_unlabeled_source

        check_unlabeled_source(config.unlabeled)
    from textpipe.data import load_training_data

    data = load_training_data(config)
    held_out = "carved from train" if data.validation_from_train else "the dataset's validation split"
    print(
        f"data: {len(data.train)} train, {len(data.validation)} validation ({held_out}); "
        f"classes: {', '.join(data.class_names)}; columns: {data.text_column!r}, {data.label_column!r}",
        flush=True,
    )
    from textpipe.bundle import save_bundle  # TensorFlow: once the data is there
    from textpipe.evaluation import format_report
    from textpipe.training import train

    bundle = train(config, data, verbose=1 if sys.stdout.isatty() else 2, progress=_terminal_progress())
    print(describe_kept_epoch(bundle.kept_epoch))
    if bundle.ngrams:
        print(describe_ngrams(bundle.ngrams))
    path = save_bundle(bundle, config.output)
    print(f"\nvalidation metrics\n{format_report(bundle.metrics['validation'])}\n")
    print(f"bundle saved to {path}" if bundle.is_chief else f"bundle left to the chief worker, which saves it to {path}")
    return 0


def _terminal_progress():
    """Training's phases as tqdm bars on stderr (only on a terminal), and a line on stdout as each ends."""
    from tqdm import tqdm

    from textpipe.progress import Progress

    class TerminalProgress(Progress):
        @contextlib.contextmanager
        def phase(self, name, total=None, unit="it"):
            scale = unit == "B"  # bytes: shown as kB, MB
            with tqdm(desc=name, total=total, unit=unit, unit_scale=scale, file=sys.stderr, disable=None,
                      leave=False, dynamic_ncols=True) as bar:
                yield bar.update

        def word_vectors(self, report):
            print(describe_word_vectors(report), flush=True)

        def classifier(self, config, plain_epochs=0):
            epochs = config.epochs
            averaged = ", its weights averaged over the last steps" if config.average_weights else ""
            adversarial = f", adversarial training ({config.adversarial:g})" if config.adversarial else ""
            if adversarial and plain_epochs:
                adversarial += f" from epoch {plain_epochs + 1}"
            print(f"classifier: {config.model}, at most {epochs} epoch{'s' if epochs > 1 else ''}{averaged}"
                  f"{adversarial}", flush=True)

        def ngrams(self, epochs):
            print(f"n-gram model: words and word pairs, at most {epochs} epoch{'s' if epochs > 1 else ''}", flush=True)

    return TerminalProgress()


def describe_word_vectors(report: dict) -> str:
    """One line: where the model's word vectors came from."""
    tuned = "; trained with the model" if report.get("fine_tuned") else "; kept frozen"
    if "found" in report:
        return (
            f"word vectors: {report['found']} of {report['found'] + report['missing']} vocabulary words found in "
            f"{report['source']} ({report['found_share']:.1%}); the rest got small random vectors{tuned}"
        )
    extra = f" and {report['unlabeled_texts']:,} unlabeled texts from {report['unlabeled']}" if "unlabeled" in report else ""
    return f"word vectors: learned by skip-gram on the training texts{extra} in {report['seconds']:.1f} s{tuned}"


def describe_ngrams(report: dict) -> str:
    """One line: the n-gram model's epoch kept, and its weight in the mix with the network."""
    kept = describe_kept_epoch(report["kept_epoch"]).replace("kept", "n-gram model: kept", 1)
    return (
        f"{kept}; weight {1 - report['network_weight']:.1f} in the mix with the network, validation macro F1 "
        f"{report['mixed_score']:.4f} (network alone {report['network_score']:.4f})"
    )


def describe_kept_epoch(kept: dict) -> str:
    """One line: which epoch's weights the bundle holds, and why."""
    stopped = "; stopped early" if kept["stopped_early"] else ""
    if kept["selected_by"] == "last epoch":
        return f"kept the last epoch's weights (epoch {kept['epoch']}{stopped})"
    score = f" {kept['score']:.4f}" if "score" in kept else ""
    return f"kept epoch {kept['epoch']} of {kept['last_epoch']} (best validation macro F1{score}{stopped})"


def check_evaluation_arguments(args: argparse.Namespace) -> None:
    """`evaluate`'s and `report`'s bundle, data source and encoding, checked before anything is loaded."""
    from textpipe.bundle_files import check_bundle_folder
    from textpipe.config import check_encoding
    from textpipe.sources import resolve_source

    check_bundle_folder(args.bundle)
    if args.dataset is not None:
        resolve_source(args.dataset)
    if args.encoding is not None:
        check_encoding(args.encoding)


def run_evaluate(args: argparse.Namespace) -> int:
    check_evaluation_arguments(args)
    from textpipe.bundle import load_bundle
    from textpipe.evaluation import evaluate, format_report

    bundle = load_bundle(args.bundle)
    split = load_evaluation_split(args, bundle)
    result = evaluate(bundle, split)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_report(result))
    return 0


def load_evaluation_split(args: argparse.Namespace, bundle):
    """The labeled split `evaluate` and `report` name. Without --dataset: the data the bundle was trained on,
    with its subset, columns and encoding."""
    from textpipe.data import load_split

    trained_on = bundle.config if args.dataset is None else None
    return load_split(
        args.dataset if trained_on is None else trained_on.dataset,
        args.split,
        args.subset or (trained_on.subset if trained_on else None),
        class_names=bundle.class_names,
        text_column=args.text_column or (trained_on.text_column if trained_on else None),
        label_column=args.label_column or (trained_on.label_column if trained_on else None),
        label_ids=bundle.label_ids,
        encoding=args.encoding or (trained_on.encoding if trained_on else None),
    )


def describe_evaluation_source(args: argparse.Namespace, bundle) -> str:
    """Where load_evaluation_split reads from, in words."""
    dataset = args.dataset if args.dataset is not None else bundle.config.dataset
    subset = args.subset or (bundle.config.subset if args.dataset is None else None)
    name = "the built-in sample dataset" if dataset is None else str(dataset)
    name += f" (subset {subset})" if subset else ""
    return name + (", the data the bundle was trained on" if args.dataset is None else "")


def run_report(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from textpipe.errors import ConfigError, PathError
    from textpipe.paths import check_output_file

    check_evaluation_arguments(args)
    if args.output == "-":
        raise PathError("the report is an HTML file with its images inside: name it, e.g. --output report.html")
    # Never into the bundle or over the data it reads (named, or the bundle's own when not).
    data = [args.dataset] if args.dataset is not None else _trained_on(args.bundle)
    check_output_file(args.output, data, what="report", bundle=args.bundle)
    if args.mistakes < 0:
        raise ConfigError(f"--mistakes must be 0 or more, got {args.mistakes}")
    from textpipe.bundle import load_bundle
    from textpipe.report import write_report

    bundle = load_bundle(args.bundle)
    split = load_evaluation_split(args, bundle)
    with tqdm(desc="report", unit=" steps", file=sys.stderr, disable=None, dynamic_ncols=True) as bar:

        def show(done: int, total: int, stage: str) -> None:
            bar.total = total
            bar.set_postfix_str(stage, refresh=False)
            bar.update(done - bar.n)

        summary = write_report(
            bundle, split, args.output, source_description=describe_evaluation_source(args, bundle),
            split_name=args.split, progress=show, mistakes=args.mistakes, bundle_path=Path(args.bundle).resolve(),
        )
    metrics = summary.metrics
    print(f"accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f} on {metrics['n']} rows of "
          f"{args.split}; expected calibration error {summary.expected_calibration_error:.4f}; "
          f"{summary.mistakes_shown} mistakes explained")
    print(f"report written to {summary.path}")
    return 0


def _trained_on(bundle: str) -> list[str]:
    """The local dataset path recorded in a bundle's bundle.json, if any (read without TensorFlow)."""
    from textpipe.bundle_files import META_FILE

    try:
        dataset = json.loads((Path(bundle) / META_FILE).read_text(encoding="utf-8"))["config"]["dataset"]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # load_bundle will say what is wrong with it
    return [dataset] if isinstance(dataset, str) and os.path.exists(dataset) else []


def run_explain(args: argparse.Namespace) -> int:
    from textpipe.bundle_files import check_bundle_folder
    from textpipe.errors import ConfigError

    check_bundle_folder(args.bundle)
    if args.top < 0:
        raise ConfigError(f"--top must be 0 (all words) or more, got {args.top}")
    from textpipe.bundle import load_bundle

    bundle = load_bundle(args.bundle)
    texts = [argument_text(number, argument) for number, argument in enumerate(args.texts, 1)]
    top = args.top or None
    for number, explanation in enumerate(bundle.explain(texts), 1):
        if not explanation.text.strip():  # as predict does: an empty text gets no label
            print(f"textpipe: text {number} is empty: no prediction", file=sys.stderr)
            print(json.dumps({"text": explanation.text, "predicted": None, "probability": None, "words": []})
                  if args.json else f"-\t-\t{explanation.text}")
        elif args.json:
            print(json.dumps(explanation.to_dict(top)))
        else:
            print(f"{explanation.predicted}\t{explanation.probability:.4f}\t{one_field(explanation.text)}")
            for word in explanation.words[:top]:
                print(f"  {word.contribution:+.4f}\t{word.word}")
    return 0


def argument_text(number: int, argument: str) -> str:
    """A text given on the command line. Python keeps undecodable argument bytes as lone surrogates, which no
    model input can hold: they are replaced (as score replaces undecodable bytes in a file), and said so."""
    text = argument.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if text != argument:
        print(f"textpipe: text {number}: undecodable bytes replaced with U+FFFD", file=sys.stderr)
    return text


def run_predict(args: argparse.Namespace) -> int:
    from textpipe.bundle_files import check_bundle_folder

    check_bundle_folder(args.bundle)
    from textpipe.bundle import load_bundle

    bundle = load_bundle(args.bundle)
    texts = [argument_text(number, argument) for number, argument in enumerate(args.texts, 1)]
    probabilities = bundle.predict_proba(texts)
    for number, (text, row) in enumerate(zip(texts, probabilities), 1):
        if not text.strip():  # as score does: an empty text gets no label
            print(f"textpipe: text {number} is empty: no prediction", file=sys.stderr)
            print(f"-\t-\t{one_field(text)}")
            continue
        best = int(row.argmax())
        print(f"{bundle.class_names[best]}\t{row[best]:.4f}\t{one_field(text)}")
    return 0


# Backslash, tab and every character str.splitlines() breaks a line at.
_FIELD_ESCAPES = str.maketrans({
    "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r",
    **{c: f"\\x{ord(c):02x}" for c in "\v\f\x1c\x1d\x1e\x85"}, "\u2028": "\\u2028", "\u2029": "\\u2029",
})


def one_field(text: str) -> str:
    r"""`text` as one tab-separated field on one line: backslashes, tabs and line breaks escaped (\\, \t, \n, \r,
    \x0b, \u2028, ...), so a text with a tab or a line break in it cannot add fields or lines to the output."""
    return text.translate(_FIELD_ESCAPES)


def run_score(args: argparse.Namespace) -> int:
    if args.runner is not None:
        return run_score_beam(args)
    from tqdm import tqdm

    from textpipe.bundle_files import check_bundle_folder
    from textpipe.inputs import SHARD_NEEDS_FILES, STDIN, parse_shard, resolve_inputs
    from textpipe.paths import check_output_file

    # Fail before loading the model, and before importing TensorFlow.
    check_bundle_folder(args.bundle)
    shard = parse_shard(args.shard) if args.shard is not None else None
    # A shard is counted by reading its inputs once before scoring them: standard input cannot be read twice.
    specs = resolve_inputs(args.inputs, args.input_format, args.text_column, args.id_column, args.encoding,
                           stdin_refused=SHARD_NEEDS_FILES if shard is not None else None)
    check_output_file(args.output, [spec.path for spec in specs if spec.path != STDIN], bundle=args.bundle)
    from textpipe.bundle import load_bundle
    from textpipe.scoring import score_files

    bundle = load_bundle(args.bundle)
    with tqdm(unit=" rows", file=sys.stderr, disable=None, dynamic_ncols=True) as bar:
        summary = score_files(bundle, args.inputs, args.output, progress=bar.update, shard=shard, **_scoring_options(args))
    print(f"textpipe: {summary.describe()}", file=sys.stderr)
    if args.output != "-":
        print(f"textpipe: predictions written to {args.output}", file=sys.stderr)
    return 0


def _scoring_options(args: argparse.Namespace) -> dict:
    """The `score` flags that the local and the Beam scorer share."""
    return dict(
        output_format=args.format,
        input_format=args.input_format,
        text_column=args.text_column,
        id_column=args.id_column,
        encoding=args.encoding,
        batch_size=args.batch_size,
        skip_empty=args.skip_empty,
    )


def run_score_beam(args: argparse.Namespace) -> int:
    from textpipe.errors import ConfigError

    if args.shard is not None:
        raise ConfigError("--shard splits a job by hand; with --runner the Beam runner splits it: leave --shard out")
    from textpipe.bundle_files import check_bundle_folder

    check_bundle_folder(args.bundle)
    from textpipe.beam import score_files_beam  # raises ConfigError when the [beam] extra is not installed

    pipeline_args = ["--runner", args.runner, *args.pipeline_args]
    summary = score_files_beam(args.bundle, args.inputs, args.output, pipeline_args, **_scoring_options(args))
    print(f"textpipe: {summary.describe()}", file=sys.stderr)
    written = f"{summary.files[0]} ... {summary.files[-1]}" if len(summary.files) > 1 else "".join(summary.files)
    print(f"textpipe: predictions written to {written or args.output + ' shards'}", file=sys.stderr)
    return 0


def run_neighbors(args: argparse.Namespace) -> int:
    from textpipe.bundle_files import check_bundle_folder

    check_bundle_folder(args.bundle)
    from textpipe.bundle import load_bundle

    for word, score in load_bundle(args.bundle).neighbors(args.word, args.k):
        print(f"{score:.4f}\t{word}")
    return 0


def run_similarity(args: argparse.Namespace) -> int:
    from textpipe.bundle_files import check_bundle_folder

    check_bundle_folder(args.bundle)
    from textpipe.bundle import load_bundle

    print(f"{load_bundle(args.bundle).similarity(args.word_a, args.word_b):.4f}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from textpipe.bundle_files import check_bundle_folder, check_export_target
    from textpipe.paths import check_output_dir

    check_bundle_folder(args.bundle)
    check_output_dir(args.output, what="export")
    check_export_target(args.output)
    from textpipe.bundle import load_bundle
    from textpipe.export import SIGNATURE, export_saved_model

    path = export_saved_model(load_bundle(args.bundle), args.output)
    print(f"SavedModel written to {path} (signature {SIGNATURE!r}: text -> probabilities, label)")
    return 0


def run_retrain(args: argparse.Namespace) -> int:
    """Retrain or roll back; prints the outcome, returns 0 promoted/rolled back (or would be, on a dry run),
    3 kept, 2 bad input, 1 other."""
    from textpipe.paths import check_output_dir, check_output_file
    from textpipe.production import ProductionLocked, default_report_path, new_run_id
    from textpipe.retrain import load_settings, retrain, rollback

    def fail(message: str, status: int) -> int:
        print(f"retrain: {message}", file=sys.stderr)
        return status

    if args.rollback and (args.dry_run or args.warm_start):
        return fail("error: --rollback cannot be combined with --dry-run or --warm-start", 2)
    try:
        settings = load_settings(args.config)
    except TextpipeError as e:
        return fail(f"error: {e}", 2)
    run_id = new_run_id()
    report_path = Path(args.report) if args.report else default_report_path(settings.production, run_id)
    try:  # before any work: a run must not promote a model and then fail on its report
        check_output_file(report_path, what="report")
        check_output_dir(settings.production, what="production")
    except TextpipeError as e:
        return fail(f"error: {e}", 2)
    try:
        if args.rollback:
            report = rollback(settings, run_id=run_id, report_path=report_path)
        else:
            report = retrain(settings, dry_run=args.dry_run, warm_start=args.warm_start, run_id=run_id,
                             report_path=report_path, verbose=1 if sys.stdout.isatty() else 2,
                             notify=lambda message: print(message, flush=True))
    except TextpipeError as e:
        status = fail(f"error: {e}", 2)
    except ProductionLocked as e:
        status = fail(f"refused: {e}", 1)
    except KeyboardInterrupt:
        status = fail("interrupted; run the same command again to resume from the last completed epoch", 130)
    except Exception as e:  # a bug, not bad input: still one line, but another status
        status = fail(f"unexpected error: {type(e).__name__}: {one_line(e, 1000)}", 1)
    else:
        if "candidate" in report:
            new, old, metric = report["candidate"]["metrics"], report["production"]["metrics"], settings.metric
            absent = "not comparable" if report["production"]["found"] else "none"
            print(f"{metric}: candidate {new[metric]:.4f}, production {f'{old[metric]:.4f}' if old else absent}")
        version = f" {'to' if args.rollback else 'as'} {report['version']}" if report.get("version") else ""
        decision = report["decision"]
        if decision == "dry run":
            decision += ", would promote" if report["would_promote"] else ", would keep production"
        print(f"{decision}{version}: {report['reason']}")
        # A dry run's status is the decision it would have made, so a script can act on it.
        status = 0 if report["decision"] in ("promoted", "rolled back") or report.get("would_promote") else 3
        if "report_error" in report:
            print(f"retrain: warning: {report['report_error']}", file=sys.stderr)
    if report_path.is_file():
        print(f"report: {report_path}")
    return status
