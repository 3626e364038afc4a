"""The store interface every backend implements, and the key rules they share.

Keys are '/'-separated paths relative to the store root, built only from validated parts. Any key with '..', an
absolute path, a backslash or a control character is refused on write and on download.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import NamedTuple, Protocol

_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


class StoreError(OSError):
    """A store operation failed (missing object, refused key, I/O)."""


class UnsafeKeyError(StoreError):
    """A key that could escape the store root or a download folder."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise UnsafeKeyError."""
    if not isinstance(key, str) or not key:
        raise UnsafeKeyError(f"empty or non-string store key {key!r}")
    parts = key.split("/")
    if key.startswith("/") or _BAD_CHARS.search(key) or any(p in ("", ".", "..") for p in parts):
        raise UnsafeKeyError(f"refusing unsafe store key {key!r}")
    return key


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (adapters and checkpoints can be GBs)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_join(root: Path, key: str, resolved_root: Path | None = None) -> Path:
    """``root / key`` for a checked key, verified to stay inside ``root`` (download targets too).

    ``resolved_root`` is ``root.resolve()`` when the caller already has it (a store resolves its root once).
    """
    path = (root / check_key(key)).resolve()
    if not path.is_relative_to(resolved_root or root.resolve()):
        raise UnsafeKeyError(f"key {key!r} escapes {root}")
    return path


class ObjectInfo(NamedTuple):
    bytes: int
    sha256: str | None  # the checksum the store keeps (hex); None where the backend keeps none (local folders)


class Store(Protocol):
    """Object storage as peftsum needs it: whole-object reads and writes, listing, and one conditional put."""

    uri: str

    def read_bytes(self, key: str) -> bytes:
        """The object's bytes; StoreError if missing."""

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write (replace) an object atomically: readers see the old or the new bytes, never a mix."""

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object only if it does not exist. True if this call created it (first writer wins)."""

    def upload(self, key: str, path: Path) -> None:
        """Copy a local file to ``key``."""

    def download(self, key: str, path: Path) -> None:
        """Copy ``key`` to a local file."""

    def size(self, key: str) -> int | None:
        """Size in bytes, or None if the object does not exist."""

    def stat(self, key: str) -> ObjectInfo | None:
        """Size and stored checksum in one request, or None if the object does not exist."""

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (recursive, sorted)."""

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under ``prefix``."""
