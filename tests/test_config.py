import pytest

from textpipe.config import Config, load_config
from textpipe.errors import ConfigError


def test_defaults_are_the_reference_models():
    c = Config()
    assert (c.vocab_size, c.sequence_length, c.embedding_dim, c.lstm_units) == (1024, 64, 256, 128)
    assert (c.dropout, c.batch_size, c.epochs, c.model) == (0.5, 16, 10, "lstm")
    assert c.lstm_pooling == "last"
    # The one change to the reference's preprocessing: which 1,022 words fill the vocabulary.
    assert c.vocabulary == "informative" and Config(preset="accurate").vocabulary == "frequent"


def test_precedence_defaults_then_toml_then_overrides(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('vocab_size = 4096\nepochs = 3\ndataset = "imdb"\n')
    c = load_config(path, {"epochs": 5, "seed": None})
    assert c.vocab_size == 4096  # from the file
    assert c.epochs == 5  # the override wins
    assert c.seed == Config().seed  # None means "not given"
    assert c.dataset == "imdb"


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("vocab_sise = 10\n")
    with pytest.raises(ConfigError, match="unknown setting 'vocab_sise'"):
        load_config(path)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"epochs": "ten"}, "'epochs' must be int"),
        ({"epochs": True}, "'epochs' must be int"),
        ({"dropout": "0.1"}, "'dropout' must be float"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"vocab_size": 2}, "vocab_size must be at least 3"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"model": "gpt"}, "model must be one of"),
        ({"lstm_pooling": "mean"}, "lstm_pooling must be one of last, max, got 'mean'"),
        ({"vocabulary": "rare"}, "vocabulary must be one of frequent, informative, got 'rare'"),
        ({"validation_fraction": 0}, "validation_fraction"),
        ({"seed": 2**32}, r"seed must be in \[0, 2\*\*32\)"),
        ({"word_vectors": "glove.txt", "unlabeled": "raw.txt"}, "give one of the two"),
        ({"adversarial": -0.1}, "adversarial must be 0 .off., a positive fraction or 'auto', got -0.1"),
        ({"adversarial": float("nan")}, "adversarial must be 0 .off., a positive fraction or 'auto', got nan"),
        ({"adversarial": "0.1"}, "adversarial must be a number or 'auto', got '0.1'"),
    ],
)
def test_bad_values_are_rejected_with_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        Config(**values)


def test_round_trip_through_dict():
    c = Config(epochs=3, patience=2, dataset="x")
    assert Config.from_dict(c.to_dict()) == c


def test_bad_toml_is_a_config_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("epochs = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
