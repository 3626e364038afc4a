"""The one error type of the spec layer: it always names the file, the field path and the bad value."""

from __future__ import annotations

from typing import Any


class SpecError(ValueError):
    """A grid or cell that cannot run. The CLI maps it to exit code 2 (never retried).

    Args:
        path: dotted field path inside the document, e.g. ``defaults.train.warmup_ratio``.
        value: the offending value as written by the user.
        message: what is wrong and, where it helps, what is allowed.
        file: the file the document came from (filled in by the loader).
    """

    def __init__(self, path: str, value: Any, message: str, file: str | None = None) -> None:
        self.path = path
        self.value = value
        self.message = message
        self.file = file
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        field = self.path or "<root>"
        return f"{where}{field}: {self.message} (got {self.value!r})"

    def in_file(self, file: str) -> SpecError:
        self.file = file
        return self
