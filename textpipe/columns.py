"""Which column of a table holds the text, and which the label: given by name, or found by the usual names."""

from __future__ import annotations

from typing import Sequence

from textpipe.errors import DataError

TEXT_COLUMNS = ("text", "sentence", "review", "content", "document")
LABEL_COLUMNS = ("label", "labels", "sentiment", "target")


def find_column(
    columns: Sequence[str], given: str | None, kind: str, name: str, candidates: Sequence[str] = TEXT_COLUMNS
) -> str:
    """`given` if `columns` has it, else the one column whose name is among `candidates`.

    `kind` ("text", "label") names the column and its flag in messages; `name` says where the columns are.
    """
    if given is not None:
        if given not in columns:
            raise DataError(f"{name} has no column {given!r} (columns: {', '.join(columns)})")
        return given
    found = [c for c in columns if c.lower() in candidates]
    if len(found) == 1:
        return found[0]
    flag = f"--{kind}-column"
    if not found:
        raise DataError(
            f"no {kind} column found in {name} (columns: {', '.join(columns)}); name it with {flag}"
        )
    raise DataError(f"ambiguous {kind} column in {name}: {', '.join(found)} all qualify; pick one with {flag}")
