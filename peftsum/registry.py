"""Typed registries with lazy ``"module:attr"`` entries (as lm-evaluation-harness maps its models).

A registry maps lowercase names to objects that are imported only when looked up, so the CLI can list and validate
names without importing the ML stack.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class Registry(Generic[T]):
    """Names → lazily imported objects of one kind (methods, models, dataset loaders, metrics)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, str | T] = {}

    def register(self, name: str, target: str | T) -> None:
        """Register ``target`` (an object or a ``"module:attr"`` string) under a unique lowercase name."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"{self.kind} name {name!r} must be lowercase letters, digits, '-' or '_'")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = target

    def get(self, name: str) -> T:
        """The registered object, importing it on first use. KeyError names the known entries."""
        try:
            entry = self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
