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
    """A store operation failed (missing object, refused key, I/O). The subclasses say what can be done about it;
    a plain StoreError is an I/O failure worth retrying."""


class UnsafeKeyError(StoreError):
    """A key that could escape the store root or a download folder (also: a symbolic link inside a local store)."""


class MissingObject(StoreError):
    """The object does not exist."""


class CorruptObject(StoreError):
    """The object exists but its content is not what it should be (checksum mismatch, malformed manifest, a folder
    where a file should be)."""


class StoreUnavailable(StoreError):
    """The store could not be reached or answered with a transient error (connection refused, timeout, 5xx,
    throttling, a full disk): retrying later can succeed."""


class StoreDenied(StoreError):
    """The store refused for a reason only a person can fix: missing bucket, access denied, bad or missing
    credentials, a read-only folder. Retrying cannot succeed."""


def short(value: object, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters: error messages never carry an unbounded value."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 25] + f"... ({len(text):,} characters)"


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise UnsafeKeyError."""
    if not isinstance(key, str) or not key:
        raise UnsafeKeyError(f"empty or non-string store key {short(key)}")
    parts = key.split("/")
    if key.startswith("/") or _BAD_CHARS.search(key) or any(p in ("", ".", "..") for p in parts):
        raise UnsafeKeyError(f"refusing unsafe store key {short(key)}")
    return key


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (adapters and checkpoints can be GBs)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_join(root: Path, key: str, resolved_root: Path | None = None) -> Path:
    """``root / key`` for a checked key, with no symbolic link below ``root`` on the way (download targets too).

    A link could point anywhere — outside the root, or at another cell's files — so neither reads nor writes follow
    one: ``open("w")`` through a planted ``logs/<cell>.log`` link would truncate its target. ``resolved_root`` is
    ``root.resolve()`` when the caller already has it (a store resolves its root once; the root itself may be a
    link).
    """
    path = resolved_root or root.resolve()
    for part in check_key(key).split("/"):
        path = path / part
        if path.is_symlink():
            raise UnsafeKeyError(f"{root}/{key}: {path} is a symbolic link; the store never follows links")
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

    def delete(self, key: str) -> None:
        """Delete one object (nothing if it does not exist)."""

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under ``prefix``."""
