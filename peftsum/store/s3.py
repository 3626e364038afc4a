"""The S3 store (``s3://bucket/prefix``): AWS S3 and the S3-compatible stores clusters run (MinIO, Ceph, R2).

- Endpoint from ``AWS_ENDPOINT_URL`` (boto3 reads it itself), credentials from the usual ``AWS_*`` variables.
- Retries in botocore's ``standard`` mode: transient 5xx, throttling and connection errors are retried with
  backoff, so one flaky request does not fail a cell.
- Large files go multipart (boto3's transfer manager above ``multipart_threshold``).
- Every object carries its SHA-256 in the ``x-amz-meta-sha256`` user metadata — a header every S3-compatible
  store keeps, unlike the newer flexible-checksum headers, which botocore is told to send only when an operation
  requires them (``when_required``) because MinIO/Ceph versions differ in what they accept. Reads re-hash and
  compare; ``stat()`` lets ``done_manifest`` compare without downloading.
- ``put_if_absent`` is a conditional put (``If-None-Match: *``): the first writer of ``_SUCCESS`` wins, S3 answers
  412 to the second.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from peftsum.store.base import ObjectInfo, StoreError, check_key, sha256_file

MULTIPART_THRESHOLD = 64 * 1024 * 1024
META_SHA = "sha256"


def parse_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (bucket, "some/prefix"). The prefix may be empty."""
    if not uri.startswith("s3://"):
        raise StoreError(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not bucket:
        raise StoreError(f"{uri!r}: no bucket name")
    prefix = prefix.strip("/")
    if prefix:
        check_key(prefix)
    return bucket, prefix


def _client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard",
                                    "total_max_attempts": int(os.environ.get("PEFTSUM_S3_ATTEMPTS", "8"))},
                    request_checksum_calculation="when_required", response_checksum_validation="when_required",
                    connect_timeout=10, read_timeout=60)
    return boto3.client("s3", config=config)


class S3Store:
    def __init__(self, uri: str, client: Any = None) -> None:
        self.bucket, self.prefix = parse_uri(uri)
        self.uri = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.client = client if client is not None else _client()

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (worker pools): the boto3 client is not, so a copy makes its own from the environment."""
        return {"bucket": self.bucket, "prefix": self.prefix, "uri": self.uri}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.client = _client()

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, key: str, err: Exception) -> StoreError:
        return StoreError(f"{self.uri}/{key}: {err}")

    @staticmethod
    def _missing(err: Exception) -> bool:
        code = getattr(err, "response", {}).get("Error", {}).get("Code")
        return code in ("NoSuchKey", "404", "NotFound")

    def read_bytes(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            data = obj["Body"].read()
        except ClientError as err:
            if self._missing(err):
                raise StoreError(f"{self.uri}/{key} does not exist") from None
            raise self._error(key, err) from None
        except BotoCoreError as err:
            raise self._error(key, err) from None
        expected = obj.get("Metadata", {}).get(META_SHA)
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise StoreError(f"{self.uri}/{key}: content does not match its stored sha256 (corrupt or tampered)")
        return data

    def _put(self, key: str, data: bytes, **extra: Any) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                               Metadata={META_SHA: hashlib.sha256(data).hexdigest()}, **extra)

    def write_bytes(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._put(key, data)  # a PUT replaces the object atomically
        except (ClientError, BotoCoreError) as err:
            raise self._error(key, err) from None

    def put_if_absent(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._put(key, data, IfNoneMatch="*")
            return True
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                return False  # another writer got there first
            raise self._error(key, err) from None
        except BotoCoreError as err:
            raise self._error(key, err) from None

    def upload(self, key: str, path: Path) -> None:
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_file(str(path), self.bucket, self._key(key),
                                    ExtraArgs={"Metadata": {META_SHA: sha256_file(path)}},
                                    Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD))
        except (ClientError, BotoCoreError) as err:
            raise self._error(key, err) from None

    def download(self, key: str, path: Path) -> None:
        """Download to ``path`` through a temporary name, verified against the stored sha256 before it lands."""
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        info = self.stat(key)
        if info is None:
            raise StoreError(f"{self.uri}/{key} does not exist")
        expected = info.sha256
        tmp = path.with_name(f".{path.name}.part")
        try:
            self.client.download_file(self.bucket, self._key(key), str(tmp),
                                      Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD))
            if expected and sha256_file(tmp) != expected:
                raise StoreError(f"{self.uri}/{key}: downloaded content does not match its stored sha256")
            os.replace(tmp, path)
        except (ClientError, BotoCoreError) as err:
            raise self._error(key, err) from None
        finally:
            tmp.unlink(missing_ok=True)

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as err:
            if self._missing(err):
                return None
            raise self._error(key, err) from None
        except BotoCoreError as err:
            raise self._error(key, err) from None

    def stat(self, key: str) -> ObjectInfo | None:
        """Size and stored sha256 ("" for an object peftsum did not write: no checksum to trust)."""
        head = self._head(key)
        if head is None:
            return None
        return ObjectInfo(int(head["ContentLength"]), head.get("Metadata", {}).get(META_SHA, ""))

    def size(self, key: str) -> int | None:
        info = self.stat(key)
        return None if info is None else info.bytes

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix).rstrip("/") + "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        from botocore.exceptions import BotoCoreError, ClientError

        keys = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                keys += [obj["Key"][strip:] for obj in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as err:
            raise self._error(prefix, err) from None
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> None:
        keys = self.list(prefix)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(k)} for k in keys[start:start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
