import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_shared_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from accuracy_benchmark import (  # noqa: E402
    METHODS, UNLABELED_TEXT, Journal, join_seeds, run_accuracy, sentence_groups, summarize, whole_sentences,
)
from benchmark_report import (  # noqa: E402
    PLAIN_FIRST_EPOCH_SINCE, adversarial_chosen, before_adversarial_accurate, before_conv1d_accurate,
    before_plain_first_epoch, before_short_lstm_windows, earlier_runs, machines_note, rules_note, targets,
)
from textpipe.presets import MAX_AUTO_LENGTH  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@needs_shared_data
def test_quick_benchmark_writes_both_reports(tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", "--repeats", "1", "--output", str(report)],
        check=True, capture_output=True, timeout=1200,
    )
    results = json.loads(report.with_suffix(".json").read_text())
    throughput, scoring = results["throughput"], results["scoring"]
    rates = scoring["scoring"]["rows_per_s"]
    assert set(rates) == {"score", "score_narrow", "predict_proba", "keras_predict", "score_long"}
    assert min(rates.values()) > 0
    assert scoring["scoring"]["wide_vs_narrow"] == pytest.approx(rates["score"] / rates["score_narrow"])
    assert set(throughput["training"]) == {"SST-2", "emotion", "IMDB"}
    for training in throughput["training"].values():
        assert set(training["examples_per_s"]) == {"fixed", "numpy", "cut", "grouped"}
        # Padded steps per text: 64 when fixed, never more than that when cut, at least the real tokens.
        steps = training["steps_per_text"]
        assert steps["fixed"] == 64 and training["tokens_per_text"] <= steps["grouped"] <= steps["cut"] <= 64
    assert set(throughput["determinism"]) == {"SST-2", "emotion", "IMDB"}
    for models in throughput["determinism"].values():
        assert set(models) == {"lstm", "conv1d"}
        for m in models.values():
            assert min(m["examples_per_s"].values()) > 0 and len(m["runs_s"]["deterministic"]) == 1
            assert m["cost_ratio"] == pytest.approx(m["examples_per_s"]["default"] / m["examples_per_s"]["deterministic"])
    assert "the cost of deterministic kernels" in report.read_text()
    optimizer = results["optimizer"]["texts"]
    assert set(optimizer) == {"SST-2", "emotion", "IMDB"}
    for t in optimizer.values():
        assert t["vocab_size"] > 2 and t["sequence_length"] <= MAX_AUTO_LENGTH["lstm"]
        assert len(t["runs_s"]["rowwise"]) == len(t["runs_s"]["keras"]) == results["optimizer"]["epochs_per_fit"]
        assert t["speedup"] == pytest.approx(t["examples_per_s"]["rowwise"] / t["examples_per_s"]["keras"])
    assert "updating the word table in the rows a batch reads" in report.read_text()
    vectorizer = results["vectorizer"]["texts"]
    assert set(vectorizer) == {"SST-2", "emotion", "IMDB"}
    for v in vectorizer.values():
        assert v["texts"] == 2000 and min(r for way in v["texts_per_s"].values() for r in way.values()) > 0
        assert v["cost_ratio"]["vectorize"] == pytest.approx(
            v["runs_s"]["textpipe"]["vectorize"][0] / v["runs_s"]["builtin"]["vectorize"][0])
    assert "textpipe's standardization against Keras' built-in one" in report.read_text()
    assert len(scoring["scoring"]["peak_memory"]) == 2
    report_timing = results["report"]
    assert set(report_timing["seconds"]) == {"evaluate", "report"} and report_timing["rows"] == 2000
    assert 0 < report_timing["explain_50_words_s"] and report_timing["report_bytes"] > 10_000
    beam = scoring["beam"]  # the dev install includes apache-beam
    assert beam["rows"] == scoring["scoring"]["lines"] and beam["beam_2_rows_per_s"] > 0
    for model in ("lstm", "conv1d"):
        inference = throughput["inference"]["models"][model]
        assert inference["flops_per_text"] > 0 and 0 < inference["share_of_floor"]
    accuracy = results["accuracy"]["datasets"]
    assert list(accuracy) == ["sst2@600", "imdb@600", "emotion@600"]  # --quick caps each training pool
    for name, dataset in accuracy.items():
        # --unlabeled runs where the dataset has raw text to read here (SST-2: IMDB's reviews, labels unread).
        has_text = name.partition("@")[0] in UNLABELED_TEXT
        expected = {method for method in METHODS if has_text or not method.endswith("_unlabeled")}
        assert set(dataset["methods"]) == expected
        assert dataset["unlabeled_text"] == ({"source": "imdb", "texts": 300} if has_text else None)
        for method in expected:
            assert 0 <= dataset["methods"][method]["accuracy"]["mean"] <= 1
        chosen = dataset["methods"]["lstm_accurate"]["settings"][0]
        assert isinstance(chosen["vocab_size"], int) and isinstance(chosen["sequence_length"], int)
        assert dataset["methods"]["tfidf_lr_ngrams"]["C"][0] in (1.0, 4.0)
        # Run beside --preset accurate, the network alone is scored from that run's bundle: the same epochs.
        for model in ("lstm", "conv1d"):
            alone, mixed = dataset["methods"][f"{model}_accurate"], dataset["methods"][f"{model}_accurate_ngrams"]
            assert alone["network_of"] == f"{model}_accurate_ngrams" and "network_of" not in mixed
            assert alone["kept_epoch"] == mixed["kept_epoch"] and alone["settings"] == mixed["settings"]
            assert 0 < alone["runs"][0]["seconds"] < mixed["runs"][0]["seconds"]
            assert "network_weight" in mixed["runs"][0] and "network_weight" not in alone["runs"][0]
    # The restricted baseline really is restricted to the default vocabulary's budget.
    assert all(r["features"] <= 1022 for r in accuracy["imdb@600"]["methods"]["tfidf_lr_restricted"]["runs"])
    text = report.read_text()
    assert "textpipe score" in text and "TF-IDF + LR" in text and "### Targets" in text
    assert "| textpipe lstm, --preset accurate --no-ngrams (the network of the `--preset accurate` run) |" in text

    # A run of one section, on one dataset and some methods, keeps everything else's results.
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", "--sections", "accuracy",
         "--datasets", "sst2", "--methods", "tfidf_lr_restricted,lstm_default", "--output", str(report)],
        check=True, capture_output=True, text=True, timeout=1200,
    )
    # Its own lines only: TensorFlow's C++ and Python logs stay hidden, as on the command line.
    assert "lstm_default: accuracy" in run.stderr  # progress goes to standard error
    for chatter in ("oneDNN", "absl::InitializeLog", "cuda", "I0000", "E0000"):
        assert chatter not in run.stdout + run.stderr
    again = json.loads(report.with_suffix(".json").read_text())
    assert again["throughput"] == throughput and again["scoring"] == scoring and again["report"] == report_timing
    # ... and results at another size sit beside these.
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", "--sections", "accuracy",
         "--datasets", "sst2", "--max-train-rows", "300", "--methods", "tfidf_lr_restricted,lstm_accurate",
         "--output", str(report)],
        check=True, capture_output=True, timeout=1200,
    )
    again = json.loads(report.with_suffix(".json").read_text())
    assert list(again["accuracy"]["datasets"]) == ["sst2@600", "sst2@300", "imdb@600", "emotion@600"]
    assert "network_of" not in again["accuracy"]["datasets"]["sst2@300"]["methods"]["lstm_accurate"]  # run alone
    assert again["accuracy"]["datasets"]["imdb@600"] == accuracy["imdb@600"]
    assert "### SST-2, 300-row pool" in report.read_text()
    sst2 = again["accuracy"]["datasets"]["sst2@600"]
    assert "--datasets sst2" in sst2["command"] and "--methods" in sst2["methods"]["lstm_default"]["command"]
    assert sst2["methods"]["conv1d_accurate_vectors"] == {**accuracy["sst2@600"]["methods"]["conv1d_accurate_vectors"]}
    assert sst2["pretrained_vectors"] == accuracy["sst2@600"]["pretrained_vectors"]
    assert "kept from an earlier run" in report.read_text()
    assert sst2["held_out_by"] == "sentence" and accuracy["imdb@600"]["held_out_by"] == "row"


def test_sentence_groups_keep_each_phrase_with_its_sentence():
    from sklearn.model_selection import GroupShuffleSplit

    sentences = [f"s{i}q says the film w{i}q is {'good' if i % 2 else 'bad'} and k{i}q" for i in range(40)]
    phrases = [p for s in sentences for p in (s, s.split(" is ")[0], s.split(" the ")[1], s.split()[-1])]
    phrases += ["a row inside no other row"]
    groups = sentence_groups(phrases, rebuild_every=7)  # some found in the joined text, some among the newest
    assert groups.max() + 1 == len(sentences) + 1
    for i, sentence in enumerate(sentences):
        assert len(set(groups[4 * i:4 * i + 4])) == 1  # a sentence and its phrases share one group
    fit, held = next(GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=0).split(phrases, groups=groups))
    fitted = "\n".join(phrases[i] for i in fit)
    assert held.size and not any(phrases[i] in fitted for i in held)


def test_whole_sentences_keep_one_row_per_sentence_the_longest():
    import numpy as np

    sentences = [f"s{i}q says the film w{i}q is {'good' if i % 2 else 'bad'} and k{i}q" for i in range(12)]
    phrases = [p for s in sentences for p in (s.split(" is ")[0], s, s.split()[-1])]  # the sentence in the middle
    phrases += ["a row inside no other row"]
    kept = whole_sentences(np.array(phrases, dtype=object))
    assert [phrases[i] for i in kept] == sentences + ["a row inside no other row"]  # in their original order


@pytest.mark.slow
@needs_shared_data
def test_later_seeds_join_a_methods_earlier_runs(tmp_path):
    report = tmp_path / "BENCHMARKS.md"

    def run(*args):
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", "--sections", "accuracy",
             "--datasets", "emotion", "--output", str(report), *args],
            check=True, capture_output=True, timeout=600,
        )
        return json.loads(report.with_suffix(".json").read_text())["accuracy"]["datasets"]["emotion@600"]

    first = run("--methods", "tfidf_lr_restricted,tfidf_lr_ngrams")
    later = run("--methods", "tfidf_lr_restricted", "--first-seed", "1")
    assert later["seeds"] == [0, 1]
    joined = later["methods"]["tfidf_lr_restricted"]
    assert [r["seed"] for r in joined["runs"]] == [0, 1]
    assert joined["runs"][0] == {**first["methods"]["tfidf_lr_restricted"]["runs"][0], "command": joined["runs"][0]["command"],
                                 "date": joined["runs"][0]["date"]}
    assert "--first-seed" not in joined["runs"][0]["command"] and "--first-seed 1" in joined["runs"][1]["command"]
    accuracies = [r["accuracy"] for r in joined["runs"]]
    assert joined["accuracy"]["mean"] == pytest.approx(sum(accuracies) / 2)
    assert later["methods"]["tfidf_lr_ngrams"] == first["methods"]["tfidf_lr_ngrams"]  # not run: kept as it was
    text = report.read_text()
    ngrams = first["methods"]["tfidf_lr_ngrams"]["accuracy"]["mean"] * 100
    # A row without every seed says which it holds, and shows no spread for one seed.
    assert f"| TF-IDF + LR, word 1-2-grams (C of 1, 4) (seed 0) [1] | {ngrams:.1f} |" in text
    # Seed 0 of each comes from the first run, the one note the section has; seed 1 is this run's own.
    assert "| TF-IDF + LR, 1,022 words [1] |" in text and "\n[1] kept from an earlier run: " in text
    assert "[2]" not in text
    # Without --first-seed, a method's row is replaced whole, as before.
    again = run("--methods", "tfidf_lr_restricted")
    assert [r["seed"] for r in again["methods"]["tfidf_lr_restricted"]["runs"]] == [0]


@needs_shared_data
def test_an_accuracy_run_stopped_part_way_goes_on_from_its_last_finished_fit(tmp_path):
    methods = ("tfidf_lr_restricted", "tfidf_lr_ngrams")
    run = dict(datasets=["emotion"], seeds=[0, 1], max_train_rows=600, epochs=1, workdir=tmp_path, quick=True,
               only=methods)
    whole = run_accuracy(log=lambda message: None, **run)

    class Stopped(Exception):
        pass

    logged = []

    def stopped_on_the_third_fit(message):
        logged.append(message)
        if len(logged) == 3:
            raise Stopped  # as a kill would, before the fit is in the journal

    identity = {"code": "this run's"}
    path = tmp_path / "BENCHMARKS.partial.json"
    with pytest.raises(Stopped):
        run_accuracy(log=stopped_on_the_third_fit, journal=Journal(path, identity, "machine A"), **run)
    assert sorted(Journal(path, identity, "machine B").fits) == [f"emotion@600 seed 0 {method}"
                                                                 for method in sorted(methods)]
    assert Journal(path, {"code": "changed"}, "machine A").fits == {}  # another run's journal is not read

    logged.clear()
    journal = Journal(path, identity, "machine B")  # going on elsewhere
    resumed = run_accuracy(log=logged.append, journal=journal, **run)
    assert [message.split(":")[0] for message in logged] == [f"emotion seed 1 {method}" for method in methods]
    for summary in resumed["datasets"]["emotion@600"]["methods"].values():
        assert [r.get("machine") for r in summary["runs"]] == ["machine A", None]  # the caller stamps its own

    def scores(results):
        return {method: [(r["seed"], r["accuracy"], r["macro_f1"]) for r in summary["runs"]]
                for method, summary in results["datasets"]["emotion@600"]["methods"].items()}

    assert scores(resumed) == scores(whole) and len(scores(whole)["tfidf_lr_ngrams"]) == 2
    journal.close()
    assert not path.exists()


def test_a_run_resumed_on_another_machine_says_how_many_fits_ran_on_each():
    def data(*machines):
        runs = [{"command": "c", "date": "d", "machine": machine} for machine in machines]
        earlier = [{"command": "c", "date": "an earlier day", "machine": "C"}]  # its own run, in its own note
        return {"command": "c", "date": "d", "methods": {"m": {"runs": runs}, "k": {"runs": earlier}}}

    assert machines_note(data("A", "A")) == ""
    assert machines_note(data("B", "A", "B")) == " (resumed on another machine; fits per machine: A 1, B 2)"


def test_join_seeds_replaces_the_seeds_run_again():
    runs = [{"seed": seed, "accuracy": acc, "macro_f1": acc, "seconds": 1.0} for seed, acc in ((0, 0.5), (1, 0.6))]
    earlier, later = summarize(runs), summarize([{"seed": 1, "accuracy": 0.8, "macro_f1": 0.8, "seconds": 2.0}])
    joined = join_seeds(earlier, later)
    assert [r["seed"] for r in joined["runs"]] == [0, 1] and joined["runs"][1]["accuracy"] == 0.8
    assert joined["accuracy"]["mean"] == pytest.approx(0.65) and joined["seconds"]["max"] == 2.0


def test_report_only_rewrites_the_markdown_and_every_kept_row_names_its_run(tmp_path):
    import re
    import shutil

    report = tmp_path / "BENCHMARKS.md"
    shutil.copy(ROOT / "BENCHMARKS.json", report.with_suffix(".json"))
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--report-only", "--output", str(report)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    assert done.stdout == f"wrote {report} from {report.with_suffix('.json')}\n"
    text = report.read_text()
    assert text == (ROOT / "BENCHMARKS.md").read_text()  # the committed report is the JSON's, rendered
    sections = text.split("\n### ")
    kept_rows = 0
    for section in sections:
        notes = set(re.findall(r"^\[(\d+)\] kept from an earlier run: ", section, flags=re.MULTILINE))
        marks = {n for row in re.findall(r"^\|[^|]*? ((?:\[\d+\])+) \|", section, flags=re.MULTILINE)
                 for n in re.findall(r"\d+", row)}
        assert marks == notes  # every mark has its note, and every note a row
        assert sorted(map(int, notes)) == list(range(1, len(notes) + 1))
        kept_rows += len(marks)
    assert kept_rows > 0


def test_a_row_from_the_same_command_on_another_day_is_an_earlier_run():
    section = {"command": "benchmark.py --methods lstm_default", "date": "2026-12-06"}
    runs = [{"seed": 0, "accuracy": 0.8}]
    assert earlier_runs({"runs": runs}, section) == set()  # this run's own row
    assert earlier_runs({"runs": runs, "command": section["command"], "date": section["date"]}, section) == set()
    kept = {"runs": runs, "command": section["command"], "date": "2026-12-05"}  # the same command, a day before
    assert earlier_runs(kept, section) == {(section["command"], "2026-12-05", "?", "3 or earlier", "row")}
    other = {"runs": runs, "command": "benchmark.py --methods lstm_frequent", "date": section["date"]}
    assert {run[0] for run in earlier_runs(other, section)} == {other["command"]}


def test_accurate_rows_say_whether_they_trained_adversarially():
    chosen = [{"vocab_size": 3000, "sequence_length": 24, "adversarial": 0.1}] * 3
    earlier = [{"vocab_size": 3000, "sequence_length": 24}] * 3
    # Runs since the preset trained adversarially record the fraction it chose; the header gives it.
    assert adversarial_chosen(chosen) == ", adversarial 0.1"
    assert adversarial_chosen([{**chosen[0], "adversarial": 0.0}, chosen[0]]) == ", adversarial off or 0.1"
    assert adversarial_chosen(earlier) == ""
    # Earlier runs of the preset (either model) on sentence-length texts are labelled; not on IMDB, where "auto"
    # leaves it off, and not other methods.
    assert before_adversarial_accurate("sst2", "lstm_accurate_ngrams", {"settings": earlier})
    assert before_adversarial_accurate("emotion", "lstm_accurate_unlabeled", {"settings": earlier})
    assert not before_adversarial_accurate("sst2", "lstm_accurate_ngrams", {"settings": chosen})
    assert not before_adversarial_accurate("imdb", "lstm_accurate", {"settings": earlier})
    assert before_adversarial_accurate("sst2", "conv1d_accurate", {"settings": earlier})
    assert not before_adversarial_accurate("sst2_sentences", "conv1d_accurate_ngrams", {"settings": chosen})
    assert not before_adversarial_accurate("imdb", "conv1d_accurate_ngrams", {"settings": earlier})
    assert not before_adversarial_accurate("sst2", "lstm_default", {"settings": earlier})
    # The label is one of the rules a row's label and its Targets rows carry.
    assert rules_note("sst2", "lstm_accurate_ngrams", {"settings": earlier}) == " (before the preset trained adversarially)"
    since = {"date": PLAIN_FIRST_EPOCH_SINCE, "runs": [{"seed": 0}]}
    assert rules_note("sst2", "lstm_accurate_ngrams", {"settings": chosen, **since}) == ""
    methods = {"tfidf_lr_ngrams": {"accuracy": {"mean": 0.80, "std": 0.0}},
               "lstm_accurate_ngrams": {"accuracy": {"mean": 0.82, "std": 0.01}, "settings": earlier}}
    assert all("(before the preset trained adversarially)" in row for row in targets("SST-2", methods, "sst2"))


def test_conv1d_accurate_rows_say_whether_they_ran_before_its_own_rules():
    since = [{"vocab_size": 1151, "sequence_length": 48, "batch_size": 16, "average_weights": True}] * 3
    earlier = [{"vocab_size": 3624, "sequence_length": 24}] * 3
    for method in ("conv1d_accurate", "conv1d_accurate_ngrams", "conv1d_accurate_vectors"):
        assert before_conv1d_accurate(method, {"settings": earlier})
        assert not before_conv1d_accurate(method, {"settings": since})
    assert before_conv1d_accurate("conv1d_accurate", {"settings": [since[0], earlier[0]]})  # one seed from before
    assert not before_conv1d_accurate("lstm_accurate", {"settings": earlier})  # the lstm's rules did not change
    assert not before_conv1d_accurate("conv1d_default", {"settings": earlier})


def test_lstm_accurate_rows_say_whether_they_read_longer_windows_than_it_now_does():
    reviews = {"settings": [{"vocab_size": 20000, "sequence_length": 256}] * 3}
    capped = {"settings": [{"vocab_size": 20000, "sequence_length": MAX_AUTO_LENGTH["lstm"]}] * 3}
    sentences = {"settings": [{"vocab_size": 3600, "sequence_length": 24}] * 3}
    for method in ("lstm_accurate", "lstm_accurate_ngrams"):
        assert before_short_lstm_windows(method, reviews)
        assert not before_short_lstm_windows(method, capped)
        assert not before_short_lstm_windows(method, sentences)
    assert rules_note("imdb", "lstm_accurate", reviews) == (
        f" (256-token windows, before the preset capped the lstm's at {MAX_AUTO_LENGTH['lstm']})")
    assert rules_note("imdb", "lstm_accurate", capped) == ""
    assert not before_short_lstm_windows("conv1d_accurate", {"settings": [{"vocab_size": 9, "sequence_length": 512}]})
    assert not before_short_lstm_windows("lstm_default", reviews)


def test_adversarial_lstm_rows_say_whether_they_ran_before_the_plain_first_epoch():
    def method(dates, adversarial=0.1, recorded=True):
        settings = {"vocab_size": 1024, "sequence_length": 64, **({"adversarial": adversarial} if recorded else {})}
        return {"date": dates[-1], "runs": [{"seed": i, "date": d} for i, d in enumerate(dates)],
                "settings": [settings] * len(dates)}

    before, since = "2026-12-06", PLAIN_FIRST_EPOCH_SINCE
    assert before_plain_first_epoch("sst2", "lstm_default", method([before] * 3))
    assert before_plain_first_epoch("sst2", "lstm_accurate_ngrams", method([since, since, before]))  # one seed
    assert not before_plain_first_epoch("sst2", "lstm_default", method([since] * 3))
    # Runs that pushed nothing, or whose Embedding started from skip-gram vectors, or a conv1d model: unchanged.
    assert not before_plain_first_epoch("imdb", "lstm_default", method([before] * 3, adversarial=0.0))
    assert not before_plain_first_epoch("sst2", "lstm_accurate_unlabeled", method([before] * 3))
    assert not before_plain_first_epoch("sst2", "conv1d_default", method([before] * 3))
    # Rows from before the fraction was recorded: on where forced or where "auto" turned it on.
    assert before_plain_first_epoch("imdb", "lstm_adversarial", method([before] * 3, recorded=False))
    assert before_plain_first_epoch("emotion", "lstm_frequent", method([before] * 3, recorded=False))
    assert not before_plain_first_epoch("imdb", "lstm_frequent", method([before] * 3, recorded=False))
    assert not before_plain_first_epoch("sst2", "lstm_no_adversarial", method([before] * 3, recorded=False))
