"""The `textpipe` command: parses arguments, runs the command (commands.py), sets the exit status.

Exit status: 0 success, 2 bad usage or bad input (one line on stderr), 1 anything else, 130 interrupted;
`retrain` also exits 3 when it keeps production. Nothing here imports TensorFlow or `datasets`: a mistake in
the arguments is reported at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Sequence

from textpipe import __version__
from textpipe.commands import (
    run_evaluate, run_explain, run_export, run_neighbors, run_predict, run_report, run_retrain, run_score,
    run_similarity, run_train,
)
from textpipe.errors import TextpipeError, one_line
from textpipe.quiet import quiet_libraries

# Flags that map one-to-one onto Config fields (dest == field name).
TRAIN_SETTINGS = [
    ("--dataset", str, "Hub id, local folder (one file per split) or file; default: the built-in sample"),
    ("--subset", str, "dataset configuration on the Hub, e.g. sst2 for glue"),
    ("--model", str, "lstm (token ids -> Embedding -> LSTM) or conv1d (word vectors -> Conv1D stack); default: lstm"),
    ("--output", str, "folder to write the model bundle to (default: textpipe-model)"),
    ("--epochs", int, "training epochs (default: 10)"),
    ("--batch-size", int, "examples per training step (default: 16)"),
    ("--preset", str, "seed (the reference model's numbers, plus --vocabulary informative, the conv1d model's "
                      "weights averaged and --adversarial auto) or accurate "
                      "(vocabulary and sequence length chosen from the training texts, up to 15 epochs, the lstm in "
                      "batches of 32 with --lstm-pooling max, --ngrams; --adversarial auto and the conv1d model's "
                      "batches and weight averaging as under seed); flags "
                      "and --config win over it (default: seed)"),
    ("--sequence-length", "auto_int", "tokens the model reads at a time (see --long-texts), or auto: enough for "
                                      "95%% of the training texts, up to 32 (conv1d: for all of them, up to 512) "
                                      "(default: 64)"),
    ("--long-texts", str, "windows: read a text longer than --sequence-length in windows of that many tokens and "
                          "average their predictions; truncate: read its first --sequence-length tokens only "
                          "(default: windows)"),
    ("--vocab-size", "auto_int", "vocabulary size including padding and [UNK], or auto: the training texts' words seen "
                                 "at least twice (five times for a conv1d model learning its word vectors from them) "
                                 "(default: 1024)"),
    ("--vocabulary", str, "which words fill the vocabulary: frequent (the training texts' most frequent) or "
                          "informative (half the most frequent, half those whose presence in a text tells most "
                          "about its label) (default: informative; under --preset accurate: frequent)"),
    ("--embedding-dim", int, "embedding width of the lstm model (default: 256; with --word-vectors or --unlabeled, "
                             "--word-vector-dim)"),
    ("--lstm-units", int, "LSTM units (default: 128)"),
    ("--lstm-pooling", str, "what the LSTM passes to the output layer: last (its output after a window's last "
                            "token) or max (each unit's largest output over the window's tokens) (default: last)"),
    ("--dropout", float, "dropout rate before the output layer (default: 0.5)"),
    ("--word-vectors", str, "GloVe/word2vec text file of word vectors: the conv1d's table (default: learned by "
                            "skip-gram), the lstm's starting Embedding"),
    ("--unlabeled", str, "raw text the skip-gram also learns word vectors from (for the lstm: its starting "
                         "Embedding): a text file (one text per line), CSV/TSV/JSON Lines file, dataset folder or "
                         "Hub id, e.g. imdb"),
    ("--unlabeled-split", str, "split of the --unlabeled dataset to read (default: unsupervised, else unlabeled, else train)"),
    ("--word-vector-dim", int, "word vector size (default: 100)"),
    ("--skipgram-epochs", int, "epochs of skip-gram training when no --word-vectors file (default: 5)"),
    ("--learning-rate", float, "RMSprop learning rate (default: 0.001)"),
    ("--adversarial", "auto_float", "adversarial training: also fit each batch with the word vectors it reads "
                                    "pushed, by this fraction of their length, in the direction that raises its "
                                    "loss most (up to twice the time per step); 0: off; auto: with 2,000 training "
                                    "texts or more, at least half of them within 64 words (sentences), 0.1 for "
                                    "the lstm and 0.025 for conv1d, else off (default: auto)"),
    ("--patience", "patience", "stop after N epochs without a better validation macro F1, or off to run every "
                               "epoch (default: 3)"),
    ("--validation-fraction", float, "share of train held out when there is no validation split (default: 0.1)"),
    ("--strategy", str, "tf.distribute strategy: auto (mirrored over several GPUs, else default), default, mirrored, "
                        "multiworker (MultiWorkerMirroredStrategy, configured by TF_CONFIG); --batch-size is per replica, "
                        "the global batch is --batch-size x replicas"),
    ("--backup-dir", str, "back up the training state here after every epoch; a restarted run resumes from it "
                          "(in a sub-folder: local, or worker-N for each worker of --strategy multiworker)"),
    ("--seed", int, "random seed; same seed, data and settings give the same model (default: 42)"),
    ("--text-column", str, "name of the text column (default: found by name)"),
    ("--label-column", str, "name of the label column (default: found by name)"),
    ("--label-names", "names", "names for integer labels, comma-separated, in order of the label ids, e.g. neg,pos "
                               "(default: the dataset's class names, else the ids)"),
    ("--train-split", str, "split to train on when the dataset has none named train, e.g. validation"),
    ("--encoding", str, "text encoding of local CSV/TSV/JSON files, e.g. latin-1, cp1252, utf-16 (default: utf-8)"),
    ("--log-dir", str, "write TensorBoard logs to this folder"),
]


def _number_or(number: type, meaning: int | str, *words: str):
    """An argparse type: a `number` (int or float), or one of `words` (any case), which stand for `meaning`."""

    def parse(value: str) -> int | float | str:
        if value.strip().lower() in words:
            return meaning
        try:
            return number(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or {words[0]}, got {value!r}") from None

    return parse


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",")]


# "off" is patience 0: no early stopping. "auto": chosen from the training texts.
PARSERS = {
    "patience": _number_or(int, 0, "off", "none"),
    "auto_int": _number_or(int, "auto", "auto"),
    "auto_float": _number_or(float, "auto", "auto"),
    "names": _names,
}
ENCODING_HELP = "text encoding of the input files, e.g. latin-1, cp1252, utf-16 (default: utf-8)"


VERBOSE_HELP = "show the logs of TensorFlow, CUDA and datasets, which are hidden by default"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textpipe", description="Text classification on raw strings.")
    parser.add_argument("--version", action="version", version=f"textpipe {__version__}")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    # --verbose is also taken after the command; SUPPRESS: not given there, it keeps the value given before.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model and save it as a bundle", parents=[common])
    train.add_argument("--config", metavar="FILE.toml", help="settings file; flags given here win over it")
    for flag, kind, text in TRAIN_SETTINGS:
        train.add_argument(flag, type=PARSERS.get(kind, kind), default=None, help=text)
    train.add_argument("--mixed-precision", action="store_const", const=True, default=None,
                       help="float16 compute with float32 weights and output layer (for GPUs)")
    train.add_argument("--freeze-word-vectors", dest="fine_tune_word_vectors", action="store_const", const=False,
                       default=None, help="conv1d: keep the word vectors as learned or read, instead of training them "
                                          "with the model")
    train.add_argument("--keep-last-epoch", dest="keep_best_epoch", action="store_const", const=False, default=None,
                       help="end with the last epoch's weights, not the best epoch's by validation macro F1")
    average = train.add_mutually_exclusive_group()
    average.add_argument("--average-weights", action="store_const", const=True, default=None,
                         help="validate, keep and save a moving average of the weights over the last 100 steps "
                              "(or one epoch's, if fewer), not the last step's (default: the conv1d model under "
                              "--preset seed)")
    average.add_argument("--no-average-weights", dest="average_weights", action="store_const", const=False,
                         default=None, help="the last step's weights, also for the conv1d model")
    ngrams = train.add_mutually_exclusive_group()
    ngrams.add_argument("--ngrams", action="store_const", const=True, default=None,
                        help="also train a linear model on word 1-2-grams and mix its predictions with the "
                             "network's by the weight that scores best on validation (default: with --preset "
                             "accurate)")
    ngrams.add_argument("--no-ngrams", dest="ngrams", action="store_const", const=False, default=None,
                        help="the network alone, also under --preset accurate")
    # The Config fields `train` takes from its flags: every flag above, by its dest.
    fields = [flag[2:].replace("-", "_") for flag, _, _ in TRAIN_SETTINGS]
    train.set_defaults(run=run_train, config_fields=fields + ["mixed_precision", "keep_best_epoch", "fine_tune_word_vectors", "average_weights",
                                                               "ngrams"])

    evaluate = commands.add_parser("evaluate", help="measure a bundle on a labeled split", parents=[common])
    evaluate.add_argument("bundle", help="model bundle folder")
    evaluate.add_argument("--dataset", help="Hub id, local folder or file (default: the data the bundle was trained on)")
    evaluate.add_argument("--subset", help="dataset configuration on the Hub")
    evaluate.add_argument("--split", default="test", help="split to evaluate on (default: test)")
    evaluate.add_argument("--text-column", help="name of the text column")
    evaluate.add_argument("--label-column", help="name of the label column")
    evaluate.add_argument("--encoding", help=ENCODING_HELP + "; without --dataset, the training data's")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    evaluate.set_defaults(run=run_evaluate)

    report = commands.add_parser(
        "report", help="write an HTML page of a bundle's results on a labeled split, with figures", parents=[common]
    )
    report.add_argument("bundle", help="model bundle folder")
    report.add_argument("--dataset", help="Hub id, local folder or file (default: the data the bundle was trained on)")
    report.add_argument("--subset", help="dataset configuration on the Hub")
    report.add_argument("--split", default="test", help="split to report on (default: test)")
    report.add_argument("--text-column", help="name of the text column")
    report.add_argument("--label-column", help="name of the label column")
    report.add_argument("--encoding", help=ENCODING_HELP + "; without --dataset, the training data's")
    report.add_argument("--mistakes", type=int, default=20,
                        help="how many of the most confident mistakes to show, explained word by word (default: 20)")
    report.add_argument("--output", "-o", required=True, metavar="FILE.html",
                        help="the HTML file to write (one self-contained page, written atomically)")
    report.set_defaults(run=run_report)

    explain = commands.add_parser(
        "explain", help="which words moved the prediction of each text, strongest first", parents=[common]
    )
    explain.add_argument("bundle", help="model bundle folder")
    explain.add_argument("texts", nargs="+", metavar="TEXT", help="texts to explain")
    explain.add_argument("--top", type=int, default=10, help="show the N strongest words of each text, 0 for all "
                                                             "(default: 10)")
    explain.add_argument("--json", action="store_true", help="print one JSON object per text, one per line")
    explain.set_defaults(run=run_explain)

    predict = commands.add_parser("predict", help="classify texts given on the command line", parents=[common])
    predict.add_argument("bundle", help="model bundle folder")
    predict.add_argument("texts", nargs="+", metavar="TEXT", help="texts to classify")
    predict.set_defaults(run=run_predict)

    score = commands.add_parser(
        "score", help="score text files, writing one prediction per input row", parents=[common]
    )
    score.add_argument("bundle", help="model bundle folder")
    score.add_argument("inputs", nargs="+", metavar="INPUT", help="text (one document per line), CSV/TSV or JSON Lines file; - for stdin")
    score.add_argument("--output", "-o", required=True, help="output file; - for stdout (written atomically)")
    score.add_argument("--format", choices=["jsonl", "csv"], help="output format (default: from --output's extension, else jsonl)")
    score.add_argument("--input-format", choices=["text", "csv", "tsv", "jsonl"], help="input format (default: from each file's extension; others are plain text)")
    score.add_argument("--text-column", help="text column of CSV/TSV/JSON Lines input (default: found by name)")
    score.add_argument("--id-column", help="column whose value identifies each row in the output")
    score.add_argument("--encoding", help=ENCODING_HELP)
    score.add_argument("--batch-size", type=int, default=512, help="texts per model call (default: 512)")
    score.add_argument("--skip-empty", action="store_true", help="leave empty rows out of the output (they are still counted)")
    score.add_argument("--shard", metavar="I/N", help="score only the I-th (1-based) of N contiguous parts of the rows; the N outputs concatenated in order are the whole output")
    score.add_argument("--runner", metavar="RUNNER",
                       help="score on Apache Beam instead of in this process (DirectRunner, DataflowRunner, FlinkRunner, "
                            "SparkRunner...), writing OUTPUT's shards (predictions-00000-of-0000N.jsonl); options textpipe "
                            "does not know go to Beam: put them after the inputs, e.g. --direct_num_workers 2 "
                            "--direct_running_mode multi_processing (needs pip install 'textpipe[beam]')")
    score.set_defaults(run=run_score)

    retrain = commands.add_parser(
        "retrain", help="train a candidate, compare it with production, promote it only if it is better",
        parents=[common],
    )
    add_retrain_arguments(retrain)
    retrain.set_defaults(run=run_retrain)

    neighbors = commands.add_parser(
        "neighbors", help="the words closest to WORD by cosine similarity", parents=[common]
    )
    neighbors.add_argument("bundle", help="model bundle folder")
    neighbors.add_argument("word")
    neighbors.add_argument("-k", type=int, default=10, help="how many neighbours (default: 10)")
    neighbors.set_defaults(run=run_neighbors)

    similarity = commands.add_parser("similarity", help="cosine similarity of two words' vectors", parents=[common])
    similarity.add_argument("bundle", help="model bundle folder")
    similarity.add_argument("word_a", metavar="WORD1")
    similarity.add_argument("word_b", metavar="WORD2")
    similarity.set_defaults(run=run_similarity)

    export = commands.add_parser(
        "export", help="write a bundle as a TensorFlow SavedModel for TensorFlow Serving", parents=[common]
    )
    export.add_argument("bundle", help="model bundle folder")
    export.add_argument("output", metavar="DIR",
                        help="folder to write the SavedModel to; TensorFlow Serving reads numbered versions: "
                             "serving/NAME/1")
    export.set_defaults(run=run_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Only `score --runner` takes options it does not know: they are the Beam runner's.
    args, pipeline_args = parser.parse_known_args(argv)
    if pipeline_args and getattr(args, "runner", None) is None:
        parser.error(f"unrecognized arguments: {' '.join(pipeline_args)}")
    args.pipeline_args = pipeline_args
    # TensorFlow's and datasets' logs hidden, unless asked for (see quiet.py).
    with contextlib.nullcontext() if args.verbose else quiet_libraries():
        try:
            return args.run(args)
        except TextpipeError as e:
            print(f"textpipe: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("textpipe: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            # The reader of our output went away (`textpipe score ... -o - | head`): not an error of ours.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except Exception as e:  # a bug, not bad input: still one line, but a different status
            print(f"textpipe: unexpected error: {type(e).__name__}: {one_line(e, 1000)}", file=sys.stderr)
            return 1


def add_retrain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE.toml",
                        help="[data], [model] and [promotion] settings; relative paths are read from its folder")
    parser.add_argument("--dry-run", action="store_true", help="train and judge, but never promote (exit 0 if it would promote, 3 if not)")
    parser.add_argument("--warm-start", action="store_true",
                        help="start from production's weights; falls back to a fresh start when they do not fit")
    parser.add_argument("--rollback", action="store_true", help="make the previous version production again")
    parser.add_argument("--report", metavar="FILE.json",
                        help="where to write the JSON report (default: PRODUCTION.versions/reports/RUN.json)")


if __name__ == "__main__":
    sys.exit(main())
