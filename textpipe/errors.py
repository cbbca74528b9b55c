"""Exceptions textpipe raises for problems a user can fix.

Every message is one line that says what is wrong and, where it helps, what to do instead.
The CLI prints it and exits with status 2; anything else escaping the library is a bug (status 1).
"""


class TextpipeError(Exception):
    """Base class: bad input, bad settings, or a missing resource the user can correct."""


class ConfigError(TextpipeError):
    """A setting is unknown, of the wrong type, or out of range."""


class DataError(TextpipeError):
    """A dataset cannot be loaded or is unusable (columns, labels, empty splits, bad text)."""


class PathError(TextpipeError):
    """A path to read or write cannot be used: a special file, a file where a folder must be, an input as output."""


class BundleError(TextpipeError):
    """A saved model bundle is missing, incomplete or unreadable."""


def one_line(error: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, cut to `limit` characters, for wrapping third-party errors."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
