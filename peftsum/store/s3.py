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

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from peftsum.store.base import (
    CorruptObject,
    MissingObject,
    ObjectInfo,
    StoreDenied,
    StoreError,
    StoreUnavailable,
    check_key,
    sha256_file,
    short,
)

MULTIPART_THRESHOLD = 64 * 1024 * 1024
META_SHA = "sha256"


def parse_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (bucket, "some/prefix"). The prefix may be empty."""
    if not uri.startswith("s3://"):
        raise StoreDenied(f"not an s3:// URI: {short(uri)}")
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not bucket:
        raise StoreDenied(f"{short(uri)}: no bucket name")
    prefix = prefix.strip("/")
    if prefix:
        check_key(prefix)
    return bucket, prefix


_MISSING = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"NoSuchBucket", "AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "AllAccessDisabled", "AccountProblem", "InvalidBucketName", "ExpiredToken", "InvalidToken",
           "PermanentRedirect", "AuthorizationHeaderMalformed"}


def _client() -> tuple[Any, str]:
    """A boto3 S3 client, and where its credentials come from (named in access errors)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard",
                                    "total_max_attempts": int(os.environ.get("PEFTSUM_S3_ATTEMPTS", "8"))},
                    request_checksum_calculation="when_required", response_checksum_validation="when_required",
                    connect_timeout=10, read_timeout=60)
    session = boto3.session.Session()
    try:
        creds = session.get_credentials()
        source = f"credentials from {creds.method}" if creds is not None else "no credentials found"
    except Exception as err:  # a broken credentials file: boto3 will fail the same way on the first request
        source = f"credentials unreadable ({type(err).__name__})"
    return session.client("s3", config=config), source


def _code(err: BaseException) -> str | None:
    """The S3 error code of a ClientError, or of the ClientError behind boto3's transfer errors."""
    while err is not None:
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {})
                       .get("HTTPStatusCode"))
        err = err.__cause__ or err.__context__
    return None


class S3Store:
    def __init__(self, uri: str, client: Any = None) -> None:
        self.bucket, self.prefix = parse_uri(uri)
        self.uri = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.client, self.credentials = (client, "credentials given") if client is not None else _client()

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (worker pools): the boto3 client is not, so a copy makes its own from the environment."""
        return {"bucket": self.bucket, "prefix": self.prefix, "uri": self.uri}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.client, self.credentials = _client()

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, key: str, err: BaseException) -> StoreError:
        """What a botocore/boto3 failure means: missing, denied (a person must fix the bucket or credentials),
        or unavailable (retries were spent on connection errors, timeouts, 5xx or throttling)."""
        from botocore.exceptions import NoCredentialsError, PartialCredentialsError

        code = _code(err)
        where = f"{self.uri}/{key}"
        if code in _MISSING:
            return MissingObject(f"{where} does not exist")
        if code in _DENIED or isinstance(err, (NoCredentialsError, PartialCredentialsError)):
            endpoint = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
            return StoreDenied(f"{where}: {code or type(err).__name__} — bucket {self.bucket!r} at {endpoint}, "
                               f"{self.credentials}; check the bucket exists and the credentials may use it ({err})")
        return StoreUnavailable(f"{where}: {err}")

    @contextlib.contextmanager
    def _io(self, key: str) -> Iterator[None]:
        """Every boto3 call runs in here: its failures come out as classified StoreErrors."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (ClientError, BotoCoreError, Boto3Error) as err:
            raise self._error(key, err) from None

    def read_bytes(self, key: str) -> bytes:
        with self._io(key):
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            data = obj["Body"].read()
        expected = obj.get("Metadata", {}).get(META_SHA)
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise CorruptObject(f"{self.uri}/{key}: content does not match its stored sha256 (corrupt or tampered)")
        return data

    def _put(self, key: str, data: bytes, **extra: Any) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                               Metadata={META_SHA: hashlib.sha256(data).hexdigest()}, **extra)

    def write_bytes(self, key: str, data: bytes) -> None:
        with self._io(key):
            self._put(key, data)  # a PUT replaces the object atomically

    def put_if_absent(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        with self._io(key):
            try:
                self._put(key, data, IfNoneMatch="*")
                return True
            except ClientError as err:
                if _code(err) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                    return False  # another writer got there first
                raise

    def upload(self, key: str, path: Path) -> None:
        from boto3.s3.transfer import TransferConfig

        with self._io(key):
            self.client.upload_file(str(path), self.bucket, self._key(key),
                                    ExtraArgs={"Metadata": {META_SHA: sha256_file(path)}},
                                    Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD))

    def download(self, key: str, path: Path) -> None:
        """Download to ``path`` through a temporary name, verified against the stored sha256 before it lands."""
        from boto3.s3.transfer import TransferConfig

        info = self.stat(key)
        if info is None:
            raise MissingObject(f"{self.uri}/{key} does not exist")
        tmp = path.with_name(f".{path.name}.part")
        try:
            with self._io(key):
                self.client.download_file(self.bucket, self._key(key), str(tmp),
                                          Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD))
            if info.sha256 and sha256_file(tmp) != info.sha256:
                raise CorruptObject(f"{self.uri}/{key}: downloaded content does not match its stored sha256")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def stat(self, key: str) -> ObjectInfo | None:
        """Size and stored sha256 ("" for an object peftsum did not write: no checksum to trust)."""
        try:
            with self._io(key):
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except MissingObject:
            return None
        return ObjectInfo(int(head["ContentLength"]), head.get("Metadata", {}).get(META_SHA, ""))

    def size(self, key: str) -> int | None:
        info = self.stat(key)
        return None if info is None else info.bytes

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix).rstrip("/") + "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys = []
        with self._io(prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                keys += [obj["Key"][strip:] for obj in page.get("Contents", [])]
        return sorted(keys)

    def delete(self, key: str) -> None:
        with self._io(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> None:
        keys = self.list(prefix)
        with self._io(prefix):
            for start in range(0, len(keys), 1000):
                batch = [{"Key": self._key(k)} for k in keys[start:start + 1000]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
