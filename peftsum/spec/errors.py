"""The one error type of the spec layer: it always names the file, the field path and the bad value."""

from __future__ import annotations

import reprlib
from typing import Any

# How much of a bad value (and of a field path) an error message shows. A value can be anything YAML built: a huge
# string, an integer of thousands of digits, or a list whose items are the same nested list thousands of times (an
# alias bomb that is cheap in memory but explodes when printed); its repr in a message is always bounded.
VALUE_REPR_MAX = 200
PATH_MAX = 300

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = _REPR.maxarray = 12
_REPR.maxdict = 12
_REPR.maxstring = _REPR.maxother = VALUE_REPR_MAX
_REPR.maxlong = 60


def bounded_repr(value: Any, limit: int = VALUE_REPR_MAX) -> str:
    """``repr(value)`` cut to at most ``limit`` characters, in work bounded whatever the value: nested containers
    show their first items and levels only, long strings their two ends, huge integers their digit count."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>"  # repr would be long/refused
    try:
        text = _REPR.repr(value)
    except Exception:  # a message must never fail, whatever an odd object's own repr does
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SpecError(ValueError):
    """A grid or cell that cannot run. The CLI maps it to exit code 2 (never retried).

    Args:
        path: dotted field path inside the document, e.g. ``defaults.train.warmup_ratio``.
        value: the offending value as written by the user.
        message: what is wrong and, where it helps, what is allowed.
        file: the file the document came from (filled in by the loader).

    The message shows the value through :func:`bounded_repr` and the path cut to ``PATH_MAX`` characters: an
    unbounded value never reaches a message.
    """

    def __init__(self, path: str, value: Any, message: str, file: str | None = None) -> None:
        self.path = path
        self.value = value
        self.message = message
        self.file = file
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        field = _cut(self.path, PATH_MAX) if self.path else "<root>"
        return f"{where}{field}: {self.message} (got {bounded_repr(self.value)})"

    def in_file(self, file: str) -> SpecError:
        self.file = file
        return self
