"""The local-folder store (``./runs``, ``/abs/path`` or ``file:///abs/path``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from peftsum.store.base import ObjectInfo, StoreError, check_key, safe_join


class LocalStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.uri = str(self.root)
        self._resolved = self.root.resolve()  # once: resolving it per call was half of a 1,000-cell collect

    def _path(self, key: str) -> Path:
        return safe_join(self.root, key, self._resolved)

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{self.uri}/{key} does not exist") from None

    def _temp_for(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.close(fd)
        return Path(tmp)

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = self._temp_for(path)
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        tmp = self._temp_for(path)
        try:
            tmp.write_bytes(data)
            os.link(tmp, path)  # atomic, fails if the name exists: the first writer wins
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def upload(self, key: str, path: Path) -> None:
        dest = self._path(key)
        tmp = self._temp_for(dest)
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)

    def download(self, key: str, path: Path) -> None:
        try:
            shutil.copyfile(self._path(key), path)
        except FileNotFoundError:
            raise StoreError(f"{self.uri}/{key} does not exist") from None

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def stat(self, key: str) -> ObjectInfo | None:
        size = self.size(key)
        return None if size is None else ObjectInfo(size, None)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root).as_posix()) for p in base.rglob("*")
                      if p.is_file() and not p.name.endswith(".tmp"))

    def delete_prefix(self, prefix: str) -> None:
        check_key(prefix)
        shutil.rmtree(self._path(prefix), ignore_errors=True)
