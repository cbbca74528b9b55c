"""One frozen settings object, built from defaults, then a TOML file, then explicit overrides.

The defaults are the reference model's numbers (see presets.py for the one addition); every one of them can be
overridden. A preset (presets.py) fills the settings that neither the file nor the overrides give.
"""

from __future__ import annotations

import codecs
import dataclasses
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Mapping

from textpipe.errors import ConfigError
from textpipe.presets import AUTO, CONV1D_MIN_LENGTH, PRESETS, preset_settings

MODELS = ("lstm", "conv1d")
STRATEGIES = ("auto", "default", "mirrored", "multiworker")
LONG_TEXTS = ("windows", "truncate")
LSTM_POOLING = ("last", "max")
VOCABULARY = ("frequent", "informative")


@dataclasses.dataclass(frozen=True)
class Config:
    # Data. `dataset=None` means the small review set shipped with textpipe.
    dataset: str | None = None
    subset: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    validation_fraction: float = 0.1
    # The split to train on when the dataset has none named "train" (e.g. only validation and test).
    train_split: str | None = None
    # Names for integer labels, in order of the label ids (the i-th name for the i-th smallest id).
    label_names: tuple[str, ...] | None = None
    # Text encoding of local CSV/TSV/JSON Lines files (default UTF-8).
    encoding: str | None = None

    # A named set of settings under the file's and the flags' (see presets.py): "seed" or "accurate".
    preset: str = "seed"

    # Settings left at None take the preset's value (the reference model's under "seed", see presets.py) when
    # the Config is built: dataclasses.replace(config, preset=...) or (model=...) keeps the values already
    # filled in, including those a preset gives per model.
    # Preprocessing. "auto": chosen from the training texts when training starts.
    vocab_size: int | str | None = None  # seed: 1024, including the padding token "" and "[UNK]"
    # Which words fill it: "frequent", the training texts' most frequent words; "informative", half of them and
    # half the words whose presence in a text tells most about its label (preprocess.informative_vocabulary).
    vocabulary: str | None = None  # seed: "informative"
    sequence_length: int | str | None = None  # seed: 64
    # A text longer than sequence_length: "windows" reads all of it, sequence_length tokens at a time, and
    # averages the windows' predictions; "truncate" reads its first sequence_length tokens only (the reference
    # model's reading).
    long_texts: str = "windows"

    # Model.
    model: str = "lstm"
    embedding_dim: int = 256
    lstm_units: int = 128
    # What the lstm passes to its output layer: "last", its output after a window's last token (seed), or
    # "max", each unit's largest output over the window's tokens.
    lstm_pooling: str | None = None
    dropout: float = 0.5
    # conv1d: sequences of word vectors from a (vocab_size, word_vector_dim) table, learned by skip-gram
    # on the training texts, or read from a GloVe/word2vec text file. The lstm's Embedding starts from such a
    # table (and is word_vector_dim wide) when either word_vectors or unlabeled is given.
    word_vectors: str | None = None
    # Raw text the skip-gram also learns from (not with word_vectors): a file of texts, a dataset folder or a
    # Hub id, and the split of a dataset to read (default: see unlabeled.UNLABELED_SPLITS).
    unlabeled: str | None = None
    unlabeled_split: str | None = None
    word_vector_dim: int = 100
    skipgram_epochs: int = 5
    # Train the table with the rest of the model (it starts from the learned or read vectors); False keeps it
    # frozen, as the reference model did.
    fine_tune_word_vectors: bool = True  # the lstm's Embedding is always trained

    # Training.
    epochs: int | None = None  # seed: 10, a maximum (see patience)
    batch_size: int | None = None  # seed: 16
    learning_rate: float = 0.001  # RMSprop's own default
    # Validate, keep and save a moving average of the weights over the last training steps (Polyak averaging;
    # see models.AVERAGE_STEPS) instead of the weights after the last step.
    average_weights: bool | None = None  # seed: the conv1d model's, not the lstm's
    # Also train a linear model on each window's words and word pairs (models.build_ngrams), with its own early
    # stopping, and mix its probabilities with the network's by the weight that scores best on validation.
    ngrams: bool | None = None  # seed: False
    # Adversarial training on the word vectors (models.AdversarialClassifier): each step also fits the batch
    # with the vectors it reads pushed, by this fraction of their length, in the direction that raises its
    # loss most. 0: off; "auto": chosen from the training texts (presets.ADVERSARIAL_FRACTION).
    adversarial: float | str | None = None  # seed: "auto"
    # `epochs` is a maximum: training stops after `patience` epochs without a better validation macro F1
    # (0 or None: it runs every epoch), and ends with the weights of its best epoch by that score
    # (keep_best_epoch=False: the last epoch's, as the reference model did).
    patience: int | None = 3
    keep_best_epoch: bool = True
    seed: int = 42
    # tf.distribute strategy: "auto" mirrors over all GPUs when there are several, else runs as "default".
    # batch_size is per replica; the global batch is batch_size times the number of replicas.
    strategy: str = "auto"
    mixed_precision: bool = False  # float16 compute, float32 weights and output layer (for GPUs)
    # Fault tolerance: back up the training state here after every epoch, so a restarted run (or worker)
    # resumes from its last finished epoch. Deleted when training ends.
    backup_dir: str | None = None

    # Output.
    output: str = "textpipe-model"
    log_dir: str | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.model not in MODELS:  # first: a preset may give a setting per model
            raise ConfigError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        for name, value in preset_settings(self.preset).items():
            if getattr(self, name) is None:
                value = value[self.model] if isinstance(value, dict) else value
                object.__setattr__(self, name, value)  # frozen: this is construction, not a change
        for field in dataclasses.fields(self):
            _check_type(field.name, getattr(self, field.name), _HINTS[field.name])
        if self.label_names is not None:  # a list from TOML, bundle.json or the command line
            object.__setattr__(self, "label_names", check_label_names(self.label_names))
        if self.encoding is not None:
            object.__setattr__(self, "encoding", check_encoding(self.encoding))
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.long_texts not in LONG_TEXTS:
            raise ConfigError(f"long_texts must be one of {', '.join(LONG_TEXTS)}, got {self.long_texts!r}")
        if self.vocabulary not in VOCABULARY:
            raise ConfigError(f"vocabulary must be one of {', '.join(VOCABULARY)}, got {self.vocabulary!r}")
        if self.lstm_pooling not in LSTM_POOLING:
            raise ConfigError(f"lstm_pooling must be one of {', '.join(LSTM_POOLING)}, got {self.lstm_pooling!r}")
        for name, low in (("vocab_size", 3), ("sequence_length", 1)):
            value = getattr(self, name)
            if isinstance(value, str) and value != AUTO:
                raise ConfigError(f"{name} must be a number or {AUTO!r}, got {value!r}")
            if not isinstance(value, str):
                _check_at_least(name, value, low)
        _check_at_least("embedding_dim", self.embedding_dim, 1)
        _check_at_least("lstm_units", self.lstm_units, 1)
        _check_at_least("word_vector_dim", self.word_vector_dim, 1)
        _check_at_least("skipgram_epochs", self.skipgram_epochs, 1)
        _check_at_least("epochs", self.epochs, 1)
        _check_at_least("batch_size", self.batch_size, 1)
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in [0, 2**32), got {self.seed}")
        if self.patience is not None:
            _check_at_least("patience", self.patience, 0)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.word_vectors is not None and self.unlabeled is not None:
            raise ConfigError("word_vectors reads finished vectors and unlabeled learns them: give one of the two")
        if self.unlabeled_split is not None and self.unlabeled is None:
            raise ConfigError("unlabeled_split names a split of the unlabeled source; give --unlabeled too")
        if self.model == "conv1d" and self.sequence_length != AUTO and self.sequence_length < CONV1D_MIN_LENGTH:
            raise ConfigError(
                f"the conv1d model needs sequence_length >= {CONV1D_MIN_LENGTH} for its convolutions and pooling, "
                f"got {self.sequence_length}"
            )
        if isinstance(self.adversarial, str):
            if self.adversarial != AUTO:
                raise ConfigError(f"adversarial must be a number or {AUTO!r}, got {self.adversarial!r}")
        elif not (math.isfinite(self.adversarial) and self.adversarial >= 0):
            raise ConfigError(f"adversarial must be 0 (off), a positive fraction or {AUTO!r}, got {self.adversarial}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")

    @property
    def uses_word_vectors(self) -> bool:
        """Whether the model starts from a word-vector table: the conv1d model always, the lstm with a file or
        unlabeled text to learn it from."""
        return self.model == "conv1d" or self.word_vectors is not None or self.unlabeled is not None

    @property
    def trains_word_vectors(self) -> bool:
        """Whether training changes the word vectors: the lstm's Embedding always, the conv1d's table unless
        frozen."""
        return self.fine_tune_word_vectors or self.model == "lstm"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, origin: str = "settings") -> Config:
        """Build a Config from a mapping, naming any unknown key (and where it came from)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown setting {unknown[0]!r} in {origin}; known settings: {', '.join(sorted(known))}"
            )
        return cls(**values)


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the TOML file at `path` (if any), then `overrides` (e.g. command-line flags).

    Override values of None mean "not given" and do not replace anything.
    """
    values: dict[str, Any] = {}
    origin = "settings"
    if path is not None:
        values.update(read_toml(path))
        origin = str(path)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    values.update(given)
    return Config.from_dict(values, origin=origin)


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


_HINTS = typing.get_type_hints(Config)


def check_encoding(name: str | None) -> str | None:
    """`name` if Python knows the text encoding (latin-1, cp1252, utf-16, ...), None for UTF-8 however it is
    spelled (the default: one spelling, one code path), else a ConfigError."""
    if name is None:
        return None
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise ConfigError(f"unknown text encoding {name!r}; use a name Python knows, e.g. utf-8, latin-1, cp1252, utf-16") from None
    return None if codec.name == "utf-8" else name


def check_label_names(names: typing.Iterable[str]) -> tuple[str, ...]:
    """Class names given for integer labels: at least two, non-empty, distinct after stripping whitespace."""
    names = tuple(str(n).strip() for n in names)
    if len(names) < 2:
        raise ConfigError(f"label_names needs a name for each of two or more classes, got {len(names)}")
    if not all(names):
        raise ConfigError("label_names has an empty name")
    repeated = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if repeated is not None:
        raise ConfigError(f"label_names names two classes {repeated!r}")
    return names


def _check_type(name: str, value: Any, hint: Any) -> None:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in allowed:
        if kind is type(None) and value is None:
            return
        if kind is bool and isinstance(value, bool):
            return
        # bool is an int subclass in Python, but `epochs = true` is a mistake, not a number.
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return
        if kind is str and isinstance(value, str):
            return
        if typing.get_origin(kind) is tuple and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return
    expected = " or ".join(_kind_name(k) for k in allowed)
    raise ConfigError(f"setting {name!r} must be {expected}, got {type(value).__name__} {value!r}")


def _kind_name(kind: Any) -> str:
    if kind is type(None):
        return "none"
    return "a list of strings" if typing.get_origin(kind) is tuple else kind.__name__


def _check_at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"{name} must be at least {low}, got {value}")
