"""What a long run reports while it works. The library calls these hooks and never prints; the default shows
nothing, and the command line shows each phase as a tqdm bar on a terminal (see commands.py)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    from textpipe.config import Config


class Progress:
    """Hooks for the phases of training: learning the vocabulary, reading or learning word vectors."""

    @contextlib.contextmanager
    def phase(self, name: str, total: int | None = None, unit: str = "it") -> Iterator[Callable[[int], None]]:
        """A phase called `name`, of `total` units if known: the block calls the function it gets with the
        number of units just done."""
        yield _ignore

    def word_vectors(self, report: dict[str, Any]) -> None:
        """The conv1d model's word vectors are ready (before the classifier trains): where they came from."""

    def classifier(self, config: Config, plain_epochs: int = 0) -> None:
        """The classifier starts training with `config`'s settings, those left to the data settled (at most
        config.epochs epochs); with adversarial training, its first `plain_epochs` epochs train unpushed."""

    def ngrams(self, epochs: int) -> None:
        """With config.ngrams, after the network: the n-gram model starts training, for at most `epochs` epochs."""


def _ignore(done: int) -> None:
    pass


SILENT = Progress()
