"""Raw, unlabeled text for the word vectors (`--unlabeled`): the conv1d model's table, the lstm's starting
Embedding.

Word vectors learned on a few thousand labeled sentences know little; the same skip-gram run on more text of
the same kind (a domain's reviews, the IMDB Hub dataset's "unsupervised" split) gives vectors that carry
meaning the labeled rows alone cannot. Labels, where the source has them, are not read. The text is read as
UTF-8 whatever --encoding says of the labeled data (undecodable bytes are replaced, as `score` does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from textpipe.errors import DataError

# A dataset's split read when none is named: the Hub's names for unlabeled text (IMDB has "unsupervised"),
# else "train".
UNLABELED_SPLITS = ("unsupervised", "unlabeled", "train")
# Files read one text per line, or by their text column, like `textpipe score`'s inputs.
TEXT_FILE_SUFFIXES = (".txt", ".text", ".csv", ".tsv", ".jsonl", ".json", ".ndjson")


def reads_as_files(source: str) -> bool:
    """Whether `source` names text files (a file, a file name with a text suffix, or a glob pattern) rather
    than a dataset (a local folder or Parquet file, or a Hub id)."""
    from textpipe.inputs import GLOB_CHARACTERS

    path = Path(source).expanduser()
    if path.is_file():
        return path.suffix.lower() != ".parquet"
    return not path.exists() and (any(c in source for c in GLOB_CHARACTERS) or path.suffix.lower() in TEXT_FILE_SUFFIXES)


def check_unlabeled_source(source: str) -> None:
    """Raise DataError now, before any slow work, when `source` names local files or a folder that are not there."""
    from textpipe.sources import resolve_source

    if reads_as_files(source):
        _text_files(source)
    else:
        resolve_source(source)


def _text_files(source: str) -> list[str]:
    """The files a text-file `source` names (a glob expanded), each checked to be there."""
    from textpipe.inputs import expand_patterns

    paths = expand_patterns([str(Path(source).expanduser())])
    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"unlabeled text file not found: {path}")
    return paths


def load_unlabeled_texts(source: str, split: str | None = None, *, text_column: str | None = None) -> np.ndarray:
    """The non-empty texts of `source`, in order, as an object array of str.

    Text files (see `reads_as_files`) are read like `textpipe score`'s inputs: one text per line of a text
    file, the text column of a CSV/TSV/JSON Lines file. Anything else (a local dataset folder or Parquet
    file, a Hub id) is loaded as a dataset, and its `split` read (default: the first of UNLABELED_SPLITS it
    has). `text_column` is the labeled data's: used where the source has it, else the text column is found as
    for any dataset. Raises DataError saying why when there is no text.
    """
    if reads_as_files(source):
        if split is not None:
            raise DataError(f"--unlabeled-split is for datasets; {source} is read as a file of texts: leave it out")
        texts = _file_texts(source, text_column)
    else:
        texts = _dataset_texts(source, split, text_column)
    if not texts:
        raise DataError(f"the unlabeled source {source} has no text")
    return np.array(texts, dtype=object)


def _file_texts(source: str, text_column: str | None) -> list[str]:
    from textpipe.inputs import read_rows, resolve_inputs

    paths = _text_files(source)
    for path in paths:
        if Path(path).suffix.lower() not in TEXT_FILE_SUFFIXES + ("",):
            raise DataError(f"{path} is not a text, CSV, TSV or JSON Lines file; give a dataset folder or a "
                            f"Parquet file on its own")
    try:
        specs = resolve_inputs(paths, text_column=text_column)
    except DataError:
        if text_column is None:
            raise
        specs = resolve_inputs(paths)  # the labeled data's column is not here: find this file's own
    return [row.text for spec in specs for row in read_rows(spec) if not row.empty]


def _dataset_texts(source: str, split: str | None, text_column: str | None) -> list[str]:
    from textpipe.columns import find_column
    from textpipe.data import describe_source, load_raw

    raw = load_raw(source)
    name = describe_source(source)
    if split is None:
        split = next((s for s in UNLABELED_SPLITS if s in raw), None)
        if split is None:
            raise DataError(f"{name} has none of the splits {', '.join(UNLABELED_SPLITS)}; name one with "
                            f"--unlabeled-split (splits: {', '.join(raw)})")
    elif split not in raw:
        raise DataError(f"{name} has no split {split!r} (splits: {', '.join(raw)})")
    ds = raw[split]
    given = text_column if text_column in ds.column_names else None
    column = find_column(ds.column_names, given, "text", name)
    return [text for text in ds[column] if isinstance(text, str) and text.strip()]
