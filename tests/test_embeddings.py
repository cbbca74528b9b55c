import numpy as np
import pytest

from textpipe.embeddings import (
    WORD_VECTOR_DIM,
    WordVectors,
    _subsample,
    cosine_similarity,
    nearest_neighbors,
    read_word_vectors,
    skipgram_pairs,
    train_word_vectors,
)
from textpipe.errors import ConfigError, DataError

ANIMALS = ["cat", "dog", "horse"]
VEHICLES = ["car", "bus", "train"]
# Each group has its own contexts, so skip-gram has to put a group's words close together.
ANIMAL_TEMPLATES = ["the {} eats food", "feed a {}", "pet the {}", "my {} sleeps all day"]
VEHICLE_TEMPLATES = ["drive the {} on the road", "the {} needs fuel", "park a {}", "a fast {} arrived"]


def group_corpus(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    texts = []
    for i in range(n):
        words, templates = (ANIMALS, ANIMAL_TEMPLATES) if i % 2 else (VEHICLES, VEHICLE_TEMPLATES)
        texts.append(templates[rng.integers(len(templates))].format(words[rng.integers(len(words))]))
    return texts


@pytest.fixture(scope="module")
def corpus_ids():
    """Ids from a real TextVectorization layer, so row i of the table must line up with its vocabulary."""
    import keras

    vectorizer = keras.layers.TextVectorization(max_tokens=64, output_sequence_length=12)
    texts = group_corpus(3000, seed=0)
    vectorizer.adapt(texts)
    return np.asarray(vectorizer(texts)), vectorizer.get_vocabulary()


def train_small(ids, vocabulary, seed=1):
    # No subsampling: in a 25-word corpus every word is "frequent" and would mostly be dropped.
    return train_word_vectors(ids, len(vocabulary), dim=16, epochs=3, learning_rate=0.01, subsample=0.0, seed=seed)


@pytest.fixture(scope="module")
def learned(corpus_ids):
    ids, vocabulary = corpus_ids
    return train_small(ids, vocabulary), vocabulary


def mean_cosine(table, vocabulary, pairs):
    return np.mean([cosine_similarity(table, vocabulary, a, b) for a, b in pairs])


def test_skipgram_puts_words_of_a_group_together(learned):
    table, vocabulary = learned
    within = [(a, b) for group in (ANIMALS, VEHICLES) for a in group for b in group if a < b]
    across = [(a, b) for a in ANIMALS for b in VEHICLES]
    assert mean_cosine(table, vocabulary, within) > mean_cosine(table, vocabulary, across) + 0.3
    neighbours = [word for word, _ in nearest_neighbors(table, vocabulary, "cat", k=2)]
    assert sorted(neighbours) == ["dog", "horse"]


def test_skipgram_table_shape_padding_row_and_determinism(corpus_ids, learned):
    ids, vocabulary = corpus_ids
    table, _ = learned
    assert table.shape == (len(vocabulary), 16) and table.dtype == np.float32
    assert np.isfinite(table).all()
    assert not table[0].any()  # padding never trained and zeroed
    np.testing.assert_array_equal(train_small(ids, vocabulary, seed=1), table)
    assert not np.array_equal(train_small(ids, vocabulary, seed=2), table)


def test_skipgram_default_dim_and_subsampling_run():
    ids = np.random.default_rng(0).integers(0, 50, size=(200, 10))
    table = train_word_vectors(ids, 50, epochs=1)
    assert WORD_VECTOR_DIM == 100
    assert table.shape == (50, WORD_VECTOR_DIM) and np.isfinite(table).all() and not table[0].any()


def test_pairs_skip_padding_and_unknown_and_respect_the_window():
    ids = np.array([[5, 6, 1, 7, 8, 0, 0], [9, 0, 0, 0, 0, 0, 0]])
    pairs = {tuple(p) for p in skipgram_pairs(ids, window=2)}
    assert pairs == {(5, 6), (6, 5), (7, 8), (8, 7), (6, 7), (7, 6)}  # [UNK] holds its place between 6 and 7
    assert skipgram_pairs(ids, window=2).dtype == np.int32
    big = np.random.default_rng(0).integers(0, 30, size=(500, 16))
    all_pairs = skipgram_pairs(big, window=3)
    assert all_pairs.min() >= 2
    assert len(all_pairs) == 2 * sum(
        ((big[:, :-d] > 1) & (big[:, d:] > 1)).sum() for d in (1, 2, 3)
    )


def test_subsampling_drops_frequent_words_and_keeps_text_left_aligned():
    rng = np.random.default_rng(0)
    ids = np.where(rng.random((2000, 20)) < 0.5, 2, rng.integers(3, 1000, size=(2000, 20)))
    ids[:, 15:] = 0
    ids[:, 3] = 1
    counts = np.bincount(ids.ravel(), minlength=1000).astype(float)
    counts[:2] = 0
    kept = _subsample(ids, counts, 1e-3, np.random.default_rng(0))
    assert (kept == 2).sum() < 0.2 * (ids == 2).sum()  # the word making up half the text mostly goes
    assert (kept > 2).sum() > 0.9 * (ids > 2).sum()  # rare words stay
    assert (kept == 1).sum() == (ids == 1).sum()  # [UNK] is never dropped
    nonzero = kept > 0
    assert (nonzero[:, :-1] >= nonzero[:, 1:]).all()  # no gaps: padding only at the end


def test_bad_token_ids_raise_data_error():
    with pytest.raises(DataError, match=r"\[0, 10\)"):
        train_word_vectors(np.array([[2, 3, 12]]), 10)
    with pytest.raises(DataError, match="no word pairs"):
        train_word_vectors(np.array([[2, 0, 0], [1, 3, 0]]), 10)


VOCAB = ["", "[UNK]", "the", "cat", "dog", "horse", "zebra", "yak"]


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def glove_file(tmp_path, header=""):
    return write(
        tmp_path / "glove.txt",
        header
        + "the 0.5 0.25 -1\n"
        + "Dog 9 9 9\n"  # an exact match "dog" follows and must win over this one
        + "cat 1 2 3\n"
        + "dog -0.5 0.125 4\n"
        + "Horse 7 8 9\n"  # only a lower-case match exists for horse
        + "unicorn 1 1 1\n"
        + "\n",
    )


def test_read_glove_puts_each_vector_at_its_vocabulary_row(tmp_path):
    vectors = read_word_vectors(glove_file(tmp_path), VOCAB)
    assert isinstance(vectors, WordVectors)
    table = vectors.table
    assert table.shape == (len(VOCAB), 3) and table.dtype == np.float32
    np.testing.assert_array_equal(table[VOCAB.index("the")], [0.5, 0.25, -1])
    np.testing.assert_array_equal(table[VOCAB.index("cat")], [1, 2, 3])
    np.testing.assert_array_equal(table[VOCAB.index("dog")], [-0.5, 0.125, 4])
    np.testing.assert_array_equal(table[VOCAB.index("horse")], [7, 8, 9])
    assert not table[0].any()
    assert (vectors.found, vectors.missing) == (4, 2)
    assert vectors.found_share == pytest.approx(4 / 6)


def test_missing_words_are_filled_from_fill_or_seeded_random(tmp_path):
    path = glove_file(tmp_path)
    fill = np.arange(len(VOCAB) * 3, dtype=np.float32).reshape(len(VOCAB), 3) + 100
    filled = read_word_vectors(path, VOCAB, fill=fill).table
    for word in ("zebra", "yak", "[UNK]"):
        np.testing.assert_array_equal(filled[VOCAB.index(word)], fill[VOCAB.index(word)])
    np.testing.assert_array_equal(filled[VOCAB.index("cat")], [1, 2, 3])
    assert not filled[0].any()
    assert fill[0].all()  # the caller's array is not modified

    random = read_word_vectors(path, VOCAB, seed=3).table
    yak = random[VOCAB.index("yak")]
    assert np.isfinite(yak).all() and 0 < np.abs(yak).max() < 1
    np.testing.assert_array_equal(read_word_vectors(path, VOCAB, seed=3).table, random)
    assert not np.array_equal(read_word_vectors(path, VOCAB, seed=4).table[VOCAB.index("yak")], yak)

    with pytest.raises(DataError, match=r"3-dim vectors.*\(8, 3\)"):
        read_word_vectors(path, VOCAB, fill=np.zeros((len(VOCAB), 100), dtype=np.float32))


def test_read_word2vec_text_format_with_header(tmp_path):
    vectors = read_word_vectors(glove_file(tmp_path, header="6 3\n"), VOCAB)
    np.testing.assert_array_equal(vectors.table[VOCAB.index("cat")], [1, 2, 3])
    assert (vectors.found, vectors.missing) == (4, 2)


def test_malformed_lines_name_file_and_line(tmp_path):
    short = write(tmp_path / "short.txt", "the 1 2 3\ncat 1 2 3\nunicorn 1 2\n")
    with pytest.raises(DataError, match=r"short\.txt line 3: expected 3 values, got 2"):
        read_word_vectors(short, VOCAB)
    with pytest.raises(DataError, match=r"line 2: expected 3 values, got 4"):  # the header's width is not the vectors'
        read_word_vectors(write(tmp_path / "long.txt", "4 3\ncat 1 2 3 4\ndog 1 2 3 4\n"), VOCAB)
    text = write(tmp_path / "text.txt", "the 1 2 3\n\ncat 1 two 3\n")
    with pytest.raises(DataError, match=r"text\.txt line 3: value 'two' is not a number"):
        read_word_vectors(text, VOCAB)
    with pytest.raises(DataError, match="holds no vectors"):
        read_word_vectors(write(tmp_path / "empty.txt", ""), VOCAB)


def test_words_with_spaces_are_skipped(tmp_path):
    # GloVe's 840B file holds a few "words" with spaces in them (". . ."), which no vocabulary word has.
    path = write(tmp_path / "spaces.txt", "cat 1 2 3\n. . . 4 5 6\nat name@domain.com 7 8 9\ndog 3 2 1\n")
    vectors = read_word_vectors(path, VOCAB)
    np.testing.assert_array_equal(vectors.table[VOCAB.index("dog")], [3, 2, 1])
    assert vectors.found == 2


def test_a_file_of_another_width_is_refused_at_its_first_vector(tmp_path):
    # Line 3 is malformed: the width is refused before the reader gets there.
    path = write(tmp_path / "glove.3d.txt", "\nthe 1 2 3\ncat 1 two 3\n")
    with pytest.raises(ConfigError, match=r"glove\.3d\.txt holds 3-dim vectors but word_vector_dim is 100; "
                                          r"pass --word-vector-dim 3"):
        read_word_vectors(path, VOCAB, dim=100)
    with pytest.raises(ConfigError, match="holds 3-dim vectors"):
        read_word_vectors(write(tmp_path / "w2v.txt", "6 3\ncat 1 two 3\n"), VOCAB, dim=100)
    np.testing.assert_array_equal(read_word_vectors(path, ["", "[UNK]", "the"], dim=3).table[2], [1, 2, 3])
    # A header after a blank line or a byte-order mark is still a header, not a 1-dim vector.
    w2v = write(tmp_path / "bom.txt", "\ufeff\n2 3\ncat 1 2 3\n")
    np.testing.assert_array_equal(read_word_vectors(w2v, VOCAB, dim=3).table[VOCAB.index("cat")], [1, 2, 3])


def test_missing_file_and_undecodable_bytes(tmp_path):
    with pytest.raises(DataError, match="nope.txt does not exist"):
        read_word_vectors(tmp_path / "nope.txt", VOCAB)
    path = tmp_path / "bytes.txt"
    path.write_bytes(b"caf\xff 1 2\ncat 3 4\n")
    vectors = read_word_vectors(path, VOCAB)
    np.testing.assert_array_equal(vectors.table[VOCAB.index("cat")], [3, 4])
    assert vectors.found == 1


NN_VOCAB = ["", "[UNK]", "a", "b", "c", "d", "z"]
NN_TABLE = np.array([[0, 0], [5, 0], [1, 0], [0.9, 0.1], [0, 1], [-1, 0], [0, 0]], dtype=np.float32)


def test_cosine_similarity_matches_numpy():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(len(NN_VOCAB), 5)).astype(np.float32)
    a, b = table[2], table[4]
    expected = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    assert cosine_similarity(table, NN_VOCAB, "a", "c") == pytest.approx(expected, rel=1e-6)
    assert cosine_similarity(table, NN_VOCAB, "a", "a") == pytest.approx(1.0)


def test_nearest_neighbors_order_and_exclusions():
    result = nearest_neighbors(NN_TABLE, NN_VOCAB, "a", k=10)
    # [UNK] points the same way as "a" but is never a neighbour; c and z tie at 0, vocabulary order breaks it.
    assert [word for word, _ in result] == ["b", "c", "z", "d"]
    assert result[0][1] == pytest.approx(0.9 / np.hypot(0.9, 0.1))
    assert result[-1][1] == pytest.approx(-1.0)
    assert [word for word, _ in nearest_neighbors(NN_TABLE, NN_VOCAB, "a", k=2)] == ["b", "c"]


def test_zero_vectors_give_zero_not_nan():
    assert cosine_similarity(NN_TABLE, NN_VOCAB, "a", "z") == 0.0
    result = nearest_neighbors(NN_TABLE, NN_VOCAB, "z", k=3)
    assert result == [("a", 0.0), ("b", 0.0), ("c", 0.0)]  # all tied at 0: vocabulary order


def test_unknown_words_raise_data_error():
    vocabulary = ["", "[UNK]", "apple", "pear"]
    table = np.eye(4, dtype=np.float32)
    with pytest.raises(DataError, match="'Apple' is not in the model's vocabulary.*lower-cased, try 'apple'"):
        nearest_neighbors(table, vocabulary, "Apple")
    with pytest.raises(DataError, match="'kiwi' is not in the model's vocabulary"):
        cosine_similarity(table, vocabulary, "apple", "kiwi")
    with pytest.raises(DataError, match="unknown-word token"):
        nearest_neighbors(table, vocabulary, "[UNK]")
