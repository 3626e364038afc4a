"""Where cells put their artifacts: one interface, a local-folder backend now, S3 later. Pure of ML."""

from peftsum.store.base import Store, StoreError, UnsafeKeyError, check_key
from peftsum.store.local import LocalStore


def open_store(uri: str) -> Store:
    """The store for a URI: a local path or file:// URI. s3:// is recognised and refused until its backend lands."""
    if uri.startswith("s3://"):
        raise StoreError(f"{uri}: the s3:// store backend is not available yet; use a local path")
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    return LocalStore(uri)


__all__ = ["LocalStore", "Store", "StoreError", "UnsafeKeyError", "check_key", "open_store"]
