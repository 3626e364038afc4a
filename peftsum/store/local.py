"""The local-folder store (``./runs``, ``/abs/path`` or ``file:///abs/path``).

Every path goes through ``safe_join`` (no key outside the root, no symbolic link followed) and every write goes to
a fresh temporary file in the target's folder that is renamed over the target: a write never truncates an existing
file, so a planted link is replaced, never written through, and a failed write leaves the old bytes and no
temporary file behind. OS errors come out classified (base.py): a read-only or forbidden folder is ``StoreDenied``,
a full disk ``StoreUnavailable``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from peftsum.store.base import (
    CorruptObject,
    MissingObject,
    ObjectInfo,
    StoreDenied,
    StoreError,
    StoreUnavailable,
    check_key,
    safe_join,
)

_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
_FULL = {errno.ENOSPC, errno.EDQUOT}
STALE_TEMP_SECONDS = 3600  # a temporary file this old belongs to a killed writer


def classify(where: str, err: OSError) -> StoreError:
    """The StoreError an OSError at ``where`` means (StoreErrors pass through)."""
    if isinstance(err, StoreError):
        return err
    if isinstance(err, FileNotFoundError):
        return MissingObject(f"{where} does not exist")
    if isinstance(err, IsADirectoryError):
        return CorruptObject(f"{where} is a folder, not a file")
    if err.errno in _DENIED:
        return StoreDenied(f"{where}: {err.strerror} (the store folder must be writable by this user)")
    if err.errno in _FULL:
        return StoreUnavailable(f"{where}: {err.strerror} (free space on the store's disk, then rerun)")
    return StoreError(f"{where}: {err}")


def _fresh(path: Path) -> tuple[int, Path]:
    """An open, new, uniquely named file beside ``path`` (O_EXCL: never an existing file or a link)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)  # mkstemp creates 0600; results are meant to be shared
    return fd, Path(name)


class LocalStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.uri = str(self.root)
        self._resolved = self.root.resolve()  # once: resolving it per call was half of a 1,000-cell collect

    def _path(self, key: str) -> Path:
        return safe_join(self.root, key, self._resolved)

    @contextlib.contextmanager
    def _io(self, key: str) -> Iterator[None]:
        try:
            yield
        except OSError as err:
            raise classify(f"{self.uri}/{key}", err) from None

    @contextlib.contextmanager
    def _replacing(self, key: str) -> Iterator[Path]:
        """A temporary file beside ``key``'s path, renamed over it when the block succeeds, removed if it fails."""
        with self._io(key):
            path = self._path(key)
            fd, tmp = _fresh(path)
            os.close(fd)
            try:
                yield tmp
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)

    def read_bytes(self, key: str) -> bytes:
        with self._io(key):
            return self._path(key).read_bytes()

    def write_bytes(self, key: str, data: bytes) -> None:
        with self._replacing(key) as tmp:
            tmp.write_bytes(data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._io(key):
            path = self._path(key)
            fd, tmp = _fresh(path)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.link(tmp, path)  # atomic, fails if the name exists: the first writer wins
                return True
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)

    def upload(self, key: str, path: Path) -> None:
        with self._replacing(key) as tmp:
            shutil.copyfile(path, tmp)

    def download(self, key: str, path: Path) -> None:
        with self._io(key):
            shutil.copyfile(self._path(key), path)

    @contextlib.contextmanager
    def open_for_append(self, key: str) -> Iterator[IO[bytes]]:
        """A new, empty file at ``key`` to write as it runs (a cell's log, followed with ``tail -f``). Created under
        a fresh name and renamed into place before the first byte, so it replaces whatever was there — a planted
        link included — without writing through it."""
        with self._io(key):
            path = self._path(key)
            fd, tmp = _fresh(path)
            os.replace(tmp, path)
        with os.fdopen(fd, "wb") as f:
            yield f

    def size(self, key: str) -> int | None:
        info = self.stat(key)
        return None if info is None else info.bytes

    def stat(self, key: str) -> ObjectInfo | None:
        with self._io(key):
            path = self._path(key)
            try:
                st = path.stat()
            except FileNotFoundError:
                return None
            if path.is_dir():
                raise CorruptObject(f"{self.uri}/{key} is a folder, not a file")
            return ObjectInfo(st.st_size, None)

    def list(self, prefix: str) -> list[str]:
        with self._io(prefix):
            base = self._path(prefix)
            if not base.is_dir():
                return []
            return sorted(str(p.relative_to(self._resolved).as_posix()) for p in base.rglob("*")
                          if p.is_file() and not p.is_symlink() and not p.name.endswith(".tmp"))

    def delete(self, key: str) -> None:
        with self._io(key):
            path = self._path(key)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        check_key(prefix)
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def remove_stale_temp(self, prefix: str, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Delete the temporary files killed writers left under ``prefix`` (older than ``older_than`` seconds, so
        a live writer's are kept); returns how many."""
        base = self._path(prefix)
        cutoff, removed = time.time() - older_than, 0
        if base.is_dir():
            for p in base.rglob(".*.tmp"):
                with contextlib.suppress(OSError):
                    if not p.is_symlink() and p.is_file() and p.stat().st_mtime < cutoff:
                        p.unlink()
                        removed += 1
        return removed
