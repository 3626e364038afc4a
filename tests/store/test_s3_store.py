"""S3 specifics against a real S3 HTTP server (moto) behind a fault-injecting proxy: retries of transient 5xx,
checksums verified on read, tampering caught without a download, multipart, prefixes, and a cell-level race.

The generic store contract (round trips, put_if_absent races, unsafe keys, done rules) runs against S3 too, in
test_stores.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from peftsum.spec import parse_grid
from peftsum.store import StoreError, UnsafeKeyError, layout, open_store
from peftsum.store import s3 as s3mod

GRID, CID = "g", "0123456789ab"
FILES = {"result.json": b'{"bleu": 0.25}\n', "predictions.jsonl": b'{"id": 1}\n'}


def _commit(store, files=FILES, attempt="a1") -> dict:
    manifest = {}
    for name, data in files.items():
        rel = f"attempts/{attempt}/{name}"
        store.write_bytes(layout.cell_key(GRID, CID, rel), data)
        manifest[rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert layout.commit_success(store, GRID, CID, attempt, manifest)
    return manifest


def test_uri_parsing() -> None:
    assert s3mod.parse_uri("s3://bucket") == ("bucket", "")
    assert s3mod.parse_uri("s3://bucket/a/b/") == ("bucket", "a/b")
    for bad in ("s3://", "s3:///x", "http://bucket/x"):
        with pytest.raises(StoreError):
            s3mod.parse_uri(bad)
    with pytest.raises(UnsafeKeyError):
        s3mod.parse_uri("s3://bucket/a/../b")


@pytest.mark.parametrize("status", [500, 503])
def test_transient_errors_are_retried(s3, status: int) -> None:
    store = open_store(s3.uri)
    s3.faults.status, s3.faults.fail_next = status, 3
    store.write_bytes("g/x", b"payload")
    assert store.read_bytes("g/x") == b"payload"
    assert len(s3.faults.injected) == 3  # the proxy really answered 3 requests with the error
    assert {code for _, _, code in s3.faults.injected} == {status}


def test_a_conditional_put_retried_after_a_5xx_still_wins_once(s3) -> None:
    store = open_store(s3.uri)
    s3.faults.fail_next, s3.faults.when = 1, (lambda method, path: method == "PUT")
    assert store.put_if_absent("g/_SUCCESS", b"first") is True
    assert store.put_if_absent("g/_SUCCESS", b"second") is False
    assert store.read_bytes("g/_SUCCESS") == b"first"


def test_persistent_errors_become_store_errors(s3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEFTSUM_S3_ATTEMPTS", "2")
    store = open_store(s3.uri)
    s3.faults.fail_next = 1000
    with pytest.raises(StoreError, match="g/x"):
        store.write_bytes("g/x", b"payload")
    assert len(s3.faults.injected) == 2  # bounded: the configured attempts, then a clear error


def test_same_size_tampering_is_caught_without_rehash(s3) -> None:
    store = open_store(s3.uri)
    manifest = _commit(store)
    assert layout.done_manifest(store, GRID, CID) is not None
    key = f"peftsum/{GRID}/cells/{CID}/attempts/a1/result.json"
    tampered = b'{"bleu": 0.99}\n'
    assert len(tampered) == manifest["attempts/a1/result.json"]["bytes"]
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=tampered)  # behind peftsum's back, no checksum
    assert layout.done_manifest(store, GRID, CID) is None


def test_forged_checksum_is_caught_by_reading(s3, tmp_path: Path) -> None:
    """An object whose metadata claims the right sha256 over different bytes: reads refuse it, rehash says not
    done, and a download leaves nothing behind."""
    store = open_store(s3.uri)
    manifest = _commit(store)
    rel = "attempts/a1/result.json"
    s3.client.put_object(Bucket=s3.bucket, Key=f"peftsum/{GRID}/cells/{CID}/{rel}", Body=b'{"bleu": 0.99}\n',
                         Metadata={"sha256": manifest[rel]["sha256"]})
    assert layout.done_manifest(store, GRID, CID) is not None  # size and stored checksum look right...
    assert layout.done_manifest(store, GRID, CID, rehash=True) is None  # ...re-hashing the bytes does not
    with pytest.raises(StoreError, match="sha256"):
        store.read_bytes(layout.cell_key(GRID, CID, rel))
    with pytest.raises(StoreError, match="sha256"):
        store.download(layout.cell_key(GRID, CID, rel), tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []


def test_multipart_upload_round_trip(s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3mod, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)  # S3's minimum part size
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(12 * 1024 * 1024))
    store = open_store(s3.uri)
    store.upload("g/big.bin", src)
    head = s3.client.head_object(Bucket=s3.bucket, Key="peftsum/g/big.bin")
    assert "-" in head["ETag"]  # a multipart ETag ("<md5>-<parts>")
    assert head["Metadata"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    store.download("g/big.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()


def test_store_survives_pickling(s3) -> None:
    """Report workers receive the store pickled: the copy must work against the same bucket."""
    import pickle

    store = open_store(s3.uri)
    store.write_bytes("g/x", b"1")
    copy = pickle.loads(pickle.dumps(store))  # noqa: S301 (our own bytes)
    assert copy.uri == store.uri and copy.read_bytes("g/x") == b"1"


def test_prefixes_are_isolated(s3) -> None:
    a = open_store(f"s3://{s3.bucket}/team/a")
    ab = open_store(f"s3://{s3.bucket}/team/ab")
    a.write_bytes("g/x", b"1")
    ab.write_bytes("g/y", b"2")
    assert a.list("g") == ["g/x"]
    assert ab.list("g") == ["g/y"]
    a.delete_prefix("g")
    assert ab.read_bytes("g/y") == b"2"


def test_crash_before_the_manifest_leaves_the_cell_not_done(s3, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell whose process dies after uploading its files but before ``_SUCCESS``: not done, and the rerun
    completes it."""
    from peftsum.cell import run_cell
    from peftsum.exit_codes import EXIT_OK

    grid = parse_grid(_lead_grid())
    cell = grid.cells[0]
    store = open_store(s3.uri)
    real = layout.commit_success

    def crash(*args, **kwargs):
        raise SystemExit("killed before the manifest")

    monkeypatch.setattr(layout, "commit_success", crash)
    with pytest.raises(SystemExit):
        run_cell(store, grid.name, cell)
    assert layout.done_manifest(store, grid.name, cell.cell_id) is None
    assert store.list(layout.cell_key(grid.name, cell.cell_id, "attempts"))  # the files did land
    monkeypatch.setattr(layout, "commit_success", real)
    assert run_cell(store, grid.name, cell) == EXIT_OK
    assert layout.done_manifest(store, grid.name, cell.cell_id, rehash=True) is not None


def _lead_grid() -> str:
    return ("name: s3race\naxes: {model: [tiny-gpt2], method: [lead], dataset: [synthetic-dialogsum]}\n"
            "defaults: {eval: {limit: 40, bootstrap_samples: 100}}\n")


@pytest.mark.slow
def test_two_concurrent_writers_of_one_cell(s3, tmp_path: Path) -> None:
    """Two ``peftsum cell`` processes of the same cell at once: exactly one ``_SUCCESS``, both exit 0, and the
    manifest names one attempt whose files are all there."""
    grid = parse_grid(_lead_grid())
    cell = grid.cells[0]
    store = open_store(s3.uri)
    layout.write_json(store, layout.cell_key(grid.name, cell.cell_id, "spec.json"), cell.to_dict())
    cmd = [sys.executable, "-m", "peftsum.cli", "cell", "--store", s3.uri, "--grid", grid.name,
           "--cell", cell.cell_id]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    keys = store.list(layout.cell_key(grid.name, cell.cell_id))
    assert keys.count(layout.cell_key(grid.name, cell.cell_id, "_SUCCESS")) == 1
    manifest = layout.done_manifest(store, grid.name, cell.cell_id, rehash=True)
    assert manifest is not None
    attempts = {k.split("/")[4] for k in keys if "/attempts/" in k}
    assert manifest["attempt_id"] in attempts
    result = json.loads(store.read_bytes(layout.result_key(grid.name, cell.cell_id, manifest)))
    assert result["provenance"]["attempt"] == manifest["attempt_id"]


@pytest.mark.slow
def test_a_cell_succeeds_over_a_flaky_link(s3) -> None:
    """Every second request to S3 answered 503 (list, get, head, put, the conditional put of _SUCCESS alike): the
    retries carry the whole cell to a verified _SUCCESS."""
    grid = parse_grid(_lead_grid())
    cell = grid.cells[0]
    store = open_store(s3.uri)
    layout.write_json(store, layout.cell_key(grid.name, cell.cell_id, "spec.json"), cell.to_dict())
    s3.faults.every = 2
    proc = subprocess.run([sys.executable, "-m", "peftsum.cli", "cell", "--store", s3.uri, "--grid", grid.name,
                           "--cell", cell.cell_id], capture_output=True, text=True, timeout=300)
    s3.faults.every = 0
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(s3.faults.injected) >= 5  # the cell really met failures...
    assert {m for m, _, _ in s3.faults.injected} >= {"PUT", "GET"}
    assert layout.done_manifest(store, grid.name, cell.cell_id, rehash=True) is not None  # ...and got through
