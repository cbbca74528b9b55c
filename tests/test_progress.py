"""Training says what each phase is, in order: vocabulary, word vectors (each skip-gram epoch, or reading the
file), where the vectors came from, then the classifier; and every phase's progress adds up to its total."""

import contextlib
import dataclasses

import numpy as np

from conftest import TINY_SETTINGS
from textpipe.cli import main
from textpipe.config import Config
from textpipe.embeddings import read_word_vectors
from textpipe.progress import Progress
from textpipe.training import train


class Recorder(Progress):
    def __init__(self):
        self.events = []  # ("phase", name, total, done) when a phase ends, ("word vectors", report), ...

    @contextlib.contextmanager
    def phase(self, name, total=None, unit="it"):
        done = []
        yield done.append
        self.events.append(("phase", name, total, sum(done)))

    def word_vectors(self, report):
        self.events.append(("word vectors", report["source"]))

    def classifier(self, config, plain_epochs=0):
        assert config.adversarial != "auto"  # the settings it trains with, those left to the data settled
        self.events.append(("classifier", config.epochs))


def test_conv1d_training_reports_its_phases_in_order(tiny_data):
    config = Config(**{**TINY_SETTINGS, "model": "conv1d", "sequence_length": 24, "word_vector_dim": 8,
                       "skipgram_epochs": 2, "epochs": 1})
    data = dataclasses.replace(tiny_data, train=tiny_data.validation)  # 100 rows: the phases, not the accuracy
    recorder = Recorder()
    train(config, data, progress=recorder)
    names = [event[1] if event[0] == "phase" else event[0] for event in recorder.events]
    assert names == ["vocabulary", "word vectors: skip-gram epoch 1/2", "word vectors: skip-gram epoch 2/2",
                     "word vectors", "classifier"]
    vocabulary, *epochs = [event for event in recorder.events if event[0] == "phase"]
    assert vocabulary[2:] == (100, 100)  # every text counted once
    for _, _, total, done in epochs:
        assert total >= 1 and done == total  # every batch of every epoch
    assert recorder.events[-1] == ("classifier", 1)


def test_an_informative_vocabulary_reports_its_second_pass(tiny_data):
    # 12 words for 25: the texts are read again to count what each word tells of the label.
    config = Config(**{**TINY_SETTINGS, "vocab_size": 14, "epochs": 1})
    data = dataclasses.replace(tiny_data, train=tiny_data.validation)
    recorder = Recorder()
    train(config, data, progress=recorder)
    phases = [event[1:] for event in recorder.events if event[0] == "phase"]
    assert phases == [("vocabulary", 100, 100), ("vocabulary: what each word tells of the label", 100, 100)]


def test_reading_a_word_vector_file_counts_its_bytes(tmp_path):
    lines = "".join(f"word{i} {i} {i + 1}.5 -{i}\n" for i in range(5000))
    path = tmp_path / "vectors.txt"
    path.write_text("the 1 2 3\n" + lines, encoding="utf-8")
    recorder = Recorder()
    vectors = read_word_vectors(path, ["", "[UNK]", "the", "word7"], progress=recorder)
    assert vectors.found == 2
    np.testing.assert_array_equal(vectors.table[3], [7, 8.5, -7])
    assert recorder.events == [("phase", "word vectors: reading vectors.txt", path.stat().st_size, path.stat().st_size)]


def test_train_prints_the_word_vector_report_before_the_classifier_trains(tmp_path, capsys):
    status = main(["train", "--model", "conv1d", "--epochs", "1", "--skipgram-epochs", "1", "--vocab-size", "64",
                   "--sequence-length", "24", "--word-vector-dim", "8", "--output", str(tmp_path / "m")])
    out, err = capsys.readouterr()
    assert status == 0, err
    lines = out.splitlines()
    order = [next(i for i, line in enumerate(lines) if line.startswith(start))
             for start in ("data: ", "word vectors: learned by skip-gram on the training texts in", "classifier: conv1d, at most 1 epoch",
                           "kept epoch 1 of 1")]
    assert order == sorted(order)
    assert err == ""  # not a terminal: no bars
