"""Where a dataset comes from: a local file or folder, or a dataset on the Hugging Face Hub.

`resolve_source` tells the two apart, and refuses a local path that is not there, without importing `datasets`
(which takes seconds): the command line checks a dataset argument with it before any slow import.
`load_hub_dataset` loads a Hub id with `datasets.load_dataset`, and fails within seconds, with one clear message,
when the Hub cannot be reached.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from textpipe.errors import DataError, one_line

if TYPE_CHECKING:
    import datasets

# The small review set shipped with textpipe: what `textpipe train` uses when no dataset is named.
SAMPLE_DATASET = Path(__file__).resolve().parent / "sample_data"

# File suffix -> (datasets builder, extra builder arguments).
FILE_FORMATS = {
    ".parquet": ("parquet", {}),
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"delimiter": "\t"}),
    ".jsonl": ("json", {}),
    ".json": ("json", {}),
}

# Seconds the Hub has to answer one request before a Hub id is looked for in the local cache only. Without the
# question, huggingface_hub retries every request five times when there is no network (half a minute, a warning
# per try) before `datasets` falls back to its cache.
HUB_ANSWER_TIMEOUT = 3.0


def resolve_source(source: str | Path | None, base: Path = Path()) -> Path | str:
    """The local file or folder `source` names (None: the shipped sample), or `source` as a Hub id (a str).

    A relative path is read from the folder `base` (default: the working directory). A source that reads as a
    path (starting with `.`, `/` or `~`, ending in a data file suffix, or under a folder that exists in `base`)
    must exist: it is never sent to the Hub. Raises DataError otherwise.
    """
    path = SAMPLE_DATASET if source is None else base / Path(source).expanduser()
    if path.exists():
        return path
    missing = f"no such file or folder: {source}" if base == Path() else (
        f"no such file or folder: {path} (relative sources are read from {base})")
    if str(source).startswith((".", "/", "~")) or Path(str(source)).suffix.lower() in FILE_FORMATS:
        raise DataError(missing)
    parts = Path(str(source)).parts
    if len(parts) > 1 and (base / parts[0]).is_dir():  # data/nope: meant as a local path, not a Hub owner/name
        raise DataError(f"{missing} ({parts[0]}/ is a local folder, so this is not taken for a Hub id)")
    return str(source)


def load_hub_dataset(source: str, subset: str | None = None) -> datasets.DatasetDict:
    """`datasets.load_dataset(source, subset)` as named splits, with its failures as one-line DataErrors.

    When the Hub does not answer within HUB_ANSWER_TIMEOUT seconds, the dataset is loaded from the local cache
    (datasets' offline mode, HF_HUB_OFFLINE), where an earlier download left it, or not at all.
    """
    import datasets  # here: importing it takes seconds, and resolve_source does without it

    offline = datasets.config.HF_HUB_OFFLINE or not hub_answers(datasets.config.HF_ENDPOINT)
    try:
        with _hub_offline(datasets, offline):
            loaded = datasets.load_dataset(source, subset)
    except datasets.exceptions.DatasetNotFoundError:
        raise DataError(
            f"dataset '{source}' was not found on the Hugging Face Hub; check the id, or pass a local "
            "folder or file (Parquet, CSV, TSV, JSON Lines) instead"
        ) from None
    except ConnectionError:
        raise DataError(
            f"could not reach the Hugging Face Hub to load '{source}' (no network?); download it "
            "beforehand or pass a local folder or file (Parquet, CSV, TSV, JSON Lines) instead"
        ) from None
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        # ValueError: a missing or unknown config name (the message lists the valid ones);
        # FileNotFoundError: a path-like id with no files; RuntimeError: script-based datasets.
        raise DataError(f"could not load '{source}': {one_line(e)}") from None
    if not isinstance(loaded, datasets.DatasetDict):
        raise DataError(f"'{source}' did not load as named splits")
    return loaded


def hub_answers(endpoint: str, timeout: float = HUB_ANSWER_TIMEOUT) -> bool:
    """Whether the Hub at `endpoint` answers one request (with anything but a server error) within `timeout` s.

    Asked through huggingface_hub's own HTTP session, so proxies and certificates are the ones `datasets` uses.
    The request runs in a thread that is not waited for past `timeout`: resolving a host name has no timeout
    of its own.
    """
    from huggingface_hub import get_session

    answered = threading.Event()

    def ask() -> None:
        try:
            if get_session().head(endpoint, timeout=timeout).status_code < 500:
                answered.set()
        except Exception:  # no route, unknown host, refused, TLS failure...: no answer
            pass

    thread = threading.Thread(target=ask, name="textpipe-hub-check", daemon=True)
    thread.start()
    thread.join(timeout)
    return answered.is_set()


@contextlib.contextmanager
def _hub_offline(datasets, offline: bool) -> Iterator[None]:
    """datasets' and huggingface_hub's offline mode for the calls inside, when `offline`.

    Both read HF_HUB_OFFLINE from the environment once, when imported, and look at their copy of it on every
    request; the copies are set here and put back after.
    """
    if not offline:
        yield
        return
    from huggingface_hub import constants as hub

    saved = datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE = saved
