"""Models and datasets kept in a store (``s3://bucket/path``), downloaded once per machine into the cache.

Clusters often have no internet: ``launcher stage`` copies hub models and datasets into the store once, and the
grid then names them by URI (``models: {gpt2: {hub_id: s3://…/models/gpt2}}``, ``datasets: {x: {source: local,
id: s3://…/datasets/x}}``). ``materialize`` turns such a URI into a local folder (or file) that the ordinary
from_pretrained / local-file loaders read, so a staged model takes the same code path as any other.

A finished download is marked by a ``.peftsum-complete`` file written last; a download cut short is redone. Two
processes on one node (two pods sharing a cache volume) serialise on a lock file instead of racing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from peftsum.store import open_store
from peftsum.store.base import StoreError, safe_join

MARKER = ".peftsum-complete"


def cache_root() -> Path:
    """peftsum's cache on this machine (``$PEFTSUM_CACHE``, default ~/.cache/peftsum): built tiny models under
    ``models/``, store copies under ``store/``."""
    return Path(os.environ.get("PEFTSUM_CACHE", Path.home() / ".cache" / "peftsum"))


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/name`` → (store URI ``s3://bucket/a/b``, key ``name``): the last path part is the key."""
    head, sep, name = uri.rstrip("/").rpartition("/")
    if not sep or not name or head.endswith(":/") or head.endswith("://"):
        raise StoreError(f"{uri!r}: expected <store URI>/<name>, e.g. s3://bucket/models/gpt2")
    return head, name


def materialize(uri: str) -> Path:
    """A local copy of the folder (every object under the prefix) or single object at ``uri``."""
    store_uri, name = split_uri(uri)
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    dest = cache_root() / "store" / f"{name}-{digest}"
    marker = dest / MARKER
    if marker.exists():
        return _target(dest, marker)
    dest.mkdir(parents=True, exist_ok=True)
    with (dest.parent / f".{dest.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if marker.exists():  # another process finished it while we waited
            return _target(dest, marker)
        store = open_store(store_uri)
        keys = store.list(name)
        if keys:
            for key in keys:
                path = safe_join(dest, key)  # refuses keys that would escape the cache folder
                path.parent.mkdir(parents=True, exist_ok=True)
                store.download(key, path)
            marker.write_text(name)
        elif store.size(name) is not None:
            store.download(name, safe_join(dest, name))
            marker.write_text(f"file:{name}")
        else:
            raise StoreError(f"{uri}: nothing there (no object and no objects under it)")
    return _target(dest, marker)


def _target(dest: Path, marker: Path) -> Path:
    """The folder, or for a single staged file, the file itself."""
    text = marker.read_text()
    return dest / text.removeprefix("file:") if text.startswith("file:") else dest / text
