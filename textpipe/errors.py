"""Exceptions textpipe raises for problems a user can fix.

Every message is one line that says what is wrong and, where it helps, what to do instead.
The CLI prints it and exits with status 2; anything else escaping the library is a bug (status 1).
"""

import re

# Control characters and line breaks, which a message may quote from a file (a column name, a path).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class TextpipeError(Exception):
    """Base class: bad input, bad settings, or a missing resource the user can correct. A message's control
    characters and line breaks are kept as escapes (\\x00, \\n), never raw: it stays one printable line."""

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (_UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], args[0]),)
        super().__init__(*args)


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
