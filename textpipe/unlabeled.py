"""Raw, unlabeled text for the conv1d model's word vectors (`--unlabeled`).

Word vectors learned on a few thousand labeled sentences know little; the same skip-gram run on more text of
the same kind (a domain's reviews, the IMDB Hub dataset's "unsupervised" split) gives vectors that carry
meaning the labeled rows alone cannot. Labels, where the source has them, are not read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from textpipe.errors import DataError

# A dataset's split read when none is named: the Hub's name for unlabeled text (IMDB has one), else "train".
UNLABELED_SPLITS = ("unsupervised", "unlabeled", "train")


def load_unlabeled_texts(
    source: str, split: str | None = None, *, text_column: str | None = None, encoding: str | None = None
) -> np.ndarray:
    """The non-empty texts of `source`, in order, as an object array of str.

    `source` is read like `textpipe score`'s inputs when it is a local text, CSV, TSV or JSON Lines file (or
    a glob pattern over such files): one text per line of a text file, the text column of the others.
    Anything else (a local dataset folder or Parquet file, a Hub id) is loaded as a dataset, and its `split`
    read (default: the first of UNLABELED_SPLITS it has). Raises DataError saying why when there is no text.
    """
    from textpipe.inputs import expand_patterns, read_rows, resolve_inputs

    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() != ".parquet" or not path.exists() and any(c in source for c in "*?["):
        if split is not None:
            raise DataError(f"--unlabeled-split is for datasets; {source} is read as a file of texts: leave it out")
        specs = resolve_inputs(expand_patterns([str(path) if path.exists() else source]),
                               text_column=text_column, encoding=encoding)
        texts = [row.text for spec in specs for row in read_rows(spec) if not row.empty]
    else:
        texts = _dataset_texts(source, split, text_column, encoding)
    if not texts:
        raise DataError(f"the unlabeled source {source} has no text")
    return np.array(texts, dtype=object)


def _dataset_texts(source: str, split: str | None, text_column: str | None, encoding: str | None) -> list[str]:
    from textpipe.columns import find_column
    from textpipe.data import _describe, _load_raw

    raw = _load_raw(source, None, encoding)
    name = _describe(source, None)
    if split is None:
        split = next((s for s in UNLABELED_SPLITS if s in raw), None)
        if split is None:
            raise DataError(f"{name} has none of the splits {', '.join(UNLABELED_SPLITS)}; name one with "
                            f"--unlabeled-split (splits: {', '.join(raw)})")
    elif split not in raw:
        raise DataError(f"{name} has no split {split!r} (splits: {', '.join(raw)})")
    ds = raw[split]
    column = find_column(ds.column_names, text_column, "text", name)
    return [text for text in ds[column] if isinstance(text, str) and text.strip()]
