"""--unlabeled: raw text that the skip-gram word vectors (conv1d table, lstm starting Embedding) also learn from."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from textpipe.config import Config
from textpipe.data import LabeledData, Split
from textpipe.embeddings import cosine_similarity
from textpipe.errors import ConfigError, DataError
from textpipe.unlabeled import load_unlabeled_texts

from test_embeddings import ANIMALS, VEHICLES


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_text_file_gives_its_non_blank_lines_in_order(tmp_path):
    path = write_lines(tmp_path / "raw.txt", ["first text", "", "  ", "second, with a comma", "third"])
    assert list(load_unlabeled_texts(str(path))) == ["first text", "second, with a comma", "third"]


def test_a_csv_file_gives_its_text_column_and_ignores_labels(tmp_path):
    path = tmp_path / "raw.csv"
    pd.DataFrame({"id": [1, 2, 3], "review": ["good one", "bad one", ""], "label": [1, 0, 1]}).to_csv(path, index=False)
    assert list(load_unlabeled_texts(str(path), text_column="review")) == ["good one", "bad one"]


def test_the_labeled_datas_text_column_is_used_only_where_the_source_has_it(tmp_path):
    path = tmp_path / "raw.csv"
    pd.DataFrame({"text": ["from text"], "body": ["from body"]}).to_csv(path, index=False)
    assert list(load_unlabeled_texts(str(path), text_column="body")) == ["from body"]
    assert list(load_unlabeled_texts(str(path), text_column="sentence")) == ["from text"]
    lines = tmp_path / "raw.jsonl"
    lines.write_text('\n{"text": "from text", "body": "from body"}\n{"text": "more text", "body": "more body"}\n')
    assert list(load_unlabeled_texts(str(lines), text_column="body")) == ["from body", "more body"]
    assert list(load_unlabeled_texts(str(lines), text_column="sentence")) == ["from text", "more text"]
    (tmp_path / "dataset").mkdir()
    pd.DataFrame({"text": ["raw a"]}).to_parquet(tmp_path / "dataset" / "train.parquet")
    assert list(load_unlabeled_texts(str(tmp_path / "dataset"), text_column="sentence")) == ["raw a"]


def test_a_missing_text_file_is_not_looked_up_on_the_hub(tmp_path):
    from textpipe.unlabeled import check_unlabeled_source

    with pytest.raises(DataError, match="unlabeled text file not found"):
        check_unlabeled_source(str(tmp_path / "raw.txt"))
    with pytest.raises(DataError, match="no input files match"):
        check_unlabeled_source(str(tmp_path / "raw-*.txt"))


def test_a_glob_over_parquet_files_is_refused(tmp_path):
    pd.DataFrame({"text": ["a"]}).to_parquet(tmp_path / "part-1.parquet")
    with pytest.raises(DataError, match="not a text, CSV, TSV or JSON Lines file"):
        load_unlabeled_texts(str(tmp_path / "*.parquet"))


def test_a_glob_pattern_reads_every_file_it_matches(tmp_path):
    write_lines(tmp_path / "a.txt", ["one", "two"])
    write_lines(tmp_path / "b.txt", ["three"])
    assert list(load_unlabeled_texts(str(tmp_path / "*.txt"))) == ["one", "two", "three"]


def test_a_dataset_folder_gives_its_unsupervised_split_by_default(tmp_path):
    pd.DataFrame({"text": ["labeled a", "labeled b"], "label": [0, 1]}).to_parquet(tmp_path / "train.parquet")
    pd.DataFrame({"text": ["raw a", "raw b", "raw c"], "label": [-1, -1, -1]}).to_parquet(tmp_path / "unsupervised.parquet")
    assert list(load_unlabeled_texts(str(tmp_path))) == ["raw a", "raw b", "raw c"]
    assert list(load_unlabeled_texts(str(tmp_path), "train")) == ["labeled a", "labeled b"]
    with pytest.raises(DataError, match="no split 'test'.*splits: train, unsupervised|no split 'test'.*unsupervised, train"):
        load_unlabeled_texts(str(tmp_path), "test")


def test_a_dataset_without_such_a_split_names_its_splits(tmp_path):
    pd.DataFrame({"text": ["a"], "label": [0]}).to_parquet(tmp_path / "validation.parquet")
    with pytest.raises(DataError, match="--unlabeled-split.*splits: validation"):
        load_unlabeled_texts(str(tmp_path))


def test_bad_sources_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="has no text"):
        load_unlabeled_texts(str(write_lines(tmp_path / "blank.txt", ["", " "])))
    with pytest.raises(DataError, match="--unlabeled-split is for datasets"):
        load_unlabeled_texts(str(write_lines(tmp_path / "raw.txt", ["a"])), "train")
    with pytest.raises(DataError, match="no input files match"):
        load_unlabeled_texts(str(tmp_path / "nothing-*.txt"))


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(model="conv1d", unlabeled="raw.txt", word_vectors="glove.txt"), "give one of the two"),
        (dict(model="lstm", unlabeled="raw.txt", word_vectors="glove.txt"), "give one of the two"),
        (dict(model="conv1d", unlabeled_split="unsupervised"), "give --unlabeled too"),
    ],
)
def test_settings_that_cannot_go_together(settings, message):
    with pytest.raises(ConfigError, match=message):
        Config(**settings)


ANIMAL_CONTEXT = ["eats", "food", "feed", "pet", "sleeps", "fur", "tail", "barn"]
VEHICLE_CONTEXT = ["drive", "road", "fuel", "park", "wheels", "engine", "garage", "fast"]


def animal_and_vehicle_texts(n: int, seed: int, horse: bool = True) -> list[str]:
    """Texts that each mix an animal with animal words or a vehicle with vehicle words, among 400 fillers."""
    rng = np.random.default_rng(seed)
    texts = []
    for i in range(n):
        names, context = (ANIMALS, ANIMAL_CONTEXT) if i % 2 else (VEHICLES, VEHICLE_CONTEXT)
        name = names[rng.integers(len(names))]
        words = [name if horse or name != "horse" else "cat", *rng.choice(context, 2, replace=False)]
        words += [f"w{k}" for k in rng.integers(400, size=3)]
        rng.shuffle(words)
        texts.append(" ".join(words))
    return texts


def animal_and_vehicle_gap(table, vocabulary, word):
    animals = np.mean([cosine_similarity(table, vocabulary, word, other) for other in ANIMALS if other != word])
    vehicles = np.mean([cosine_similarity(table, vocabulary, word, other) for other in VEHICLES if other != word])
    return animals - vehicles


def test_unlabeled_text_teaches_the_vectors_what_the_labeled_rows_cannot(tmp_path):
    """"horse" is in one labeled text only; the unlabeled texts use it like the other animals. Only with them
    does skip-gram put it nearer the animals than the vehicles."""
    import keras

    from textpipe.training import word_vector_table

    labeled = np.array(animal_and_vehicle_texts(600, seed=3, horse=False) + ["a horse"], dtype=object)
    path = write_lines(tmp_path / "raw.txt", animal_and_vehicle_texts(10_000, seed=4))
    vectorizer = keras.layers.TextVectorization(max_tokens=512)
    vectorizer.adapt(labeled)
    vocabulary = vectorizer.get_vocabulary()
    assert "horse" in vocabulary
    config = Config(model="conv1d", sequence_length=32, word_vector_dim=16, skipgram_epochs=10, seed=0)
    without, report = word_vector_table(config, vectorizer, labeled)
    assert "unlabeled" not in report
    with_text, report = word_vector_table(dataclasses.replace(config, unlabeled=str(path)), vectorizer, labeled)
    assert report["unlabeled_texts"] == 10_000 and report["unlabeled"] == str(path)
    # Measured over seeds 0-2: without 0.00-0.04, with 0.64-0.85.
    assert animal_and_vehicle_gap(without, vocabulary, "horse") < 0.2
    assert animal_and_vehicle_gap(with_text, vocabulary, "horse") > 0.4


def test_long_unlabeled_texts_are_read_in_windows():
    import keras

    from textpipe.training import unlabeled_windows

    vectorizer = keras.layers.TextVectorization()
    vectorizer.adapt(["w0 w1 w2 w3 w4 w5 w6 w7 w8 w9"])
    texts = np.array(["w0 w1 w2 w3 w4 w5 w6 w7 w8 w9", "w3", "zzz"], dtype=object)  # "zzz" is [UNK]: a token
    rows = unlabeled_windows(vectorizer, texts, 4)
    assert rows.shape == (5, 4)  # 10 tokens in windows of 4, one, one; no all-padding rows
    assert (rows != 0).sum() == 12


def test_train_command_learns_from_unlabeled_text_and_says_so(tmp_path, capsys):
    from textpipe.bundle import load_bundle
    from textpipe.cli import main
    from conftest import make_sentences

    texts, labels = make_sentences(200, seed=5)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "train.csv", index=False)
    raw = write_lines(tmp_path / "raw.txt", make_sentences(300, seed=6)[0])
    args = ["train", "--dataset", str(tmp_path / "train.csv"), "--model", "conv1d", "--sequence-length", "24",
            "--epochs", "1", "--skipgram-epochs", "1", "--unlabeled", str(raw), "--output", str(tmp_path / "model")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"word vectors: learned by skip-gram on the training texts and 300 unlabeled texts from {raw}" in out
    bundle = load_bundle(tmp_path / "model")
    assert bundle.config.unlabeled == str(raw)
    assert bundle.word_vectors["unlabeled_texts"] == 300


def test_a_warm_start_keeps_the_starting_models_vectors_and_reads_no_unlabeled_text(tmp_path):
    from textpipe.training import train
    from conftest import make_sentences

    texts, labels = make_sentences(120, seed=8)
    split = Split(np.array(texts, dtype=object), np.array(labels, dtype=np.int64))
    data = LabeledData(split, split, None, ("negative", "positive"), "text", "label", False)
    raw = write_lines(tmp_path / "raw.txt", make_sentences(200, seed=10)[0])
    config = Config(model="lstm", vocab_size=64, sequence_length=24, epochs=1, skipgram_epochs=1,
                    word_vector_dim=8, lstm_units=8, unlabeled=str(raw))
    start = train(config, data)
    raw.unlink()  # not read again: the vectors come with the starting model
    again = train(config, data, warm_start=start)
    assert again.word_vectors["unlabeled_texts"] == 200 and again.config.embedding_dim == 8


def test_the_lstm_embedding_starts_from_the_word_vectors():
    from textpipe.models import build_model

    table = np.random.default_rng(0).normal(size=(40, 12)).astype(np.float32)
    config = Config(model="lstm", vocab_size=40, sequence_length=16, embedding_dim=12, lstm_units=8)
    model = build_model(config, 2, word_vectors=table)
    embedding = next(layer for layer in model.layers if layer.__class__.__name__ == "Embedding")
    np.testing.assert_array_equal(embedding.get_weights()[0], table)


def test_an_lstm_learns_with_unlabeled_text_and_reloads(tiny_data, tmp_path):
    from textpipe.bundle import load_bundle, save_bundle
    from textpipe.training import train
    from conftest import TINY_SETTINGS, make_sentences

    raw = write_lines(tmp_path / "raw.txt", make_sentences(500, seed=9)[0])
    config = Config(**{**TINY_SETTINGS, "unlabeled": str(raw), "word_vector_dim": 24, "skipgram_epochs": 2})
    bundle = train(config, tiny_data)
    assert bundle.config.embedding_dim == 24  # the Embedding is as wide as the vectors it starts from
    assert bundle.word_vectors["unlabeled_texts"] == 500 and bundle.word_vectors["fine_tuned"]
    predicted = bundle.predict_proba(tiny_data.test.texts)[:, 1] > 0.5
    assert (predicted == tiny_data.test.labels).mean() > 0.7
    again = load_bundle(save_bundle(bundle, tmp_path / "model"))
    np.testing.assert_allclose(again.predict_proba(tiny_data.test.texts), bundle.predict_proba(tiny_data.test.texts), atol=1e-6)


def test_retrain_reads_a_relative_unlabeled_file_beside_its_config(tmp_path):
    from textpipe.retrain import load_settings

    (tmp_path / "jobs").mkdir()
    write_lines(tmp_path / "jobs" / "raw.txt", ["some text"])
    toml = tmp_path / "jobs" / "retrain.toml"
    toml.write_text('[data]\nsources = ["imdb"]\n[model]\nmodel = "conv1d"\nunlabeled = "raw.txt"\n'
                    '[promotion]\nproduction = "prod"\n', encoding="utf-8")
    assert load_settings(toml).config.unlabeled == str(tmp_path / "jobs" / "raw.txt")
    toml.write_text(toml.read_text().replace('"raw.txt"', '"raw/*.txt"'), encoding="utf-8")
    assert load_settings(toml).config.unlabeled == str(tmp_path / "jobs" / "raw" / "*.txt")  # a glob, beside too
    toml.write_text(toml.read_text().replace('"raw/*.txt"', '"imdb"'), encoding="utf-8")
    assert load_settings(toml).config.unlabeled == "imdb"  # not a file there: a Hub id


def test_training_starts_the_lstm_from_the_learned_vectors(tiny_data, tmp_path):
    from textpipe.training import train, word_vector_table
    from conftest import TINY_SETTINGS, make_sentences

    raw = write_lines(tmp_path / "raw.txt", make_sentences(300, seed=11)[0])
    config = Config(**{**TINY_SETTINGS, "unlabeled": str(raw), "word_vector_dim": 8, "skipgram_epochs": 1,
                       "epochs": 1, "learning_rate": 1e-12})  # too small a step to move the Embedding from its start
    bundle = train(config, tiny_data)
    table, _ = word_vector_table(bundle.config, bundle.vectorizer, tiny_data.train.texts)
    np.testing.assert_allclose(bundle.word_vector_table(), table[: bundle.vocabulary_size], atol=1e-5)
