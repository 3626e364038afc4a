"""Where cells put their artifacts: one interface, a local-folder and an S3 backend. Pure of ML."""

from peftsum.store.base import (
    CorruptObject,
    MissingObject,
    ObjectInfo,
    Store,
    StoreDenied,
    StoreError,
    StoreUnavailable,
    UnsafeKeyError,
    check_key,
)
from peftsum.store.local import LocalStore


def open_store(uri: str) -> Store:
    """The store for a URI: ``s3://bucket/prefix``, a local path, or a file:// URI."""
    if uri.startswith("s3://"):
        from peftsum.store.s3 import S3Store

        return S3Store(uri)
    if "://" in uri and not uri.startswith("file://"):
        raise StoreDenied(f"{uri}: unsupported store URI scheme (use s3://bucket/prefix or a local path)")
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    return LocalStore(uri)


__all__ = ["CorruptObject", "LocalStore", "MissingObject", "ObjectInfo", "Store", "StoreDenied", "StoreError",
           "StoreUnavailable", "UnsafeKeyError", "check_key", "open_store"]
