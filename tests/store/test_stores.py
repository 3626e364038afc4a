"""The store contract, run against both backends (a local folder and a real S3 server), and the cell layout:
atomic writes, first-writer-wins, unsafe keys, and when a cell counts as done. Backend specifics at the end."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from peftsum.store import LocalStore, StoreError, UnsafeKeyError, check_key, layout, open_store

GRID = "g"
CID = "0123456789ab"

UNSAFE_KEYS = [
    "..",
    "../outside",
    "a/../../outside",
    "a/..",
    "/etc/passwd",
    "a\\b",
    "..\\outside",
    "a/b\x00c",
    "a/b\nc",
    "a/\x1fb",
    "a/\x7fb",
    "a//b",
    "a/b/",
    "/",
    "",
    "./a",
    "a/./b",
]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        return LocalStore(tmp_path / "root")
    return open_store(request.getfixturevalue("s3").uri)


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "root")


def test_round_trip(store: LocalStore) -> None:
    store.write_bytes("g/cells/x/spec.json", b'{"a": 1}')
    assert store.read_bytes("g/cells/x/spec.json") == b'{"a": 1}'
    assert store.size("g/cells/x/spec.json") == 8
    store.write_bytes("g/cells/x/spec.json", b"second")  # write replaces
    assert store.read_bytes("g/cells/x/spec.json") == b"second"
    assert store.size("g/cells/x/spec.json") == 6


def test_binary_and_empty_objects(store: LocalStore) -> None:
    data = bytes(range(256)) * 3
    store.write_bytes("bin/blob", data)
    store.write_bytes("bin/empty", b"")
    assert store.read_bytes("bin/blob") == data
    assert store.read_bytes("bin/empty") == b""
    assert store.size("bin/empty") == 0


def test_missing_object(store: LocalStore) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        store.read_bytes("no/such/key")
    assert store.size("no/such/key") is None
    assert store.list("no") == []


def test_list_is_recursive_and_sorted(store: LocalStore) -> None:
    for key in ("g/b/2", "g/a", "g/b/1", "h/x", "gg/y"):
        store.write_bytes(key, key.encode())
    assert store.list("g") == ["g/a", "g/b/1", "g/b/2"]  # "gg/y" shares the string prefix, not the folder


def test_local_list_skips_temp_files(local_store: LocalStore) -> None:
    store = local_store
    for key in ("g/b/2", "g/a", "h/x"):
        store.write_bytes(key, key.encode())
    (store.root / "g" / ".a.123.tmp").write_bytes(b"partial")
    assert store.list("g") == ["g/a", "g/b/2"]
    assert not any(p.name.endswith(".tmp") for p in (store.root / "h").iterdir())  # writes leave no temp files


def test_upload_download(store: LocalStore, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload" * 100)
    store.upload("g/up/file.bin", src)
    assert store.read_bytes("g/up/file.bin") == src.read_bytes()
    dest = tmp_path / "dest.bin"
    store.download("g/up/file.bin", dest)
    assert dest.read_bytes() == src.read_bytes()
    with pytest.raises(StoreError):
        store.download("g/up/missing", tmp_path / "x")


def test_delete_prefix(store: LocalStore) -> None:
    store.write_bytes("g/cells/a/1", b"1")
    store.write_bytes("g/cells/a/2", b"2")
    store.write_bytes("g/cells/b/1", b"3")
    store.delete_prefix("g/cells/a")
    assert store.list("g") == ["g/cells/b/1"]
    with pytest.raises(UnsafeKeyError):
        store.delete_prefix("..")
    with pytest.raises(UnsafeKeyError):
        store.delete_prefix("")
    assert store.list("g") == ["g/cells/b/1"]


def test_put_if_absent_repeated(store: LocalStore) -> None:
    assert store.put_if_absent("g/lock", b"first") is True
    assert store.put_if_absent("g/lock", b"second") is False
    assert store.put_if_absent("g/lock", b"third") is False
    assert store.read_bytes("g/lock") == b"first"
    assert store.list("g") == ["g/lock"]  # no temp objects left behind


def test_put_if_absent_does_not_replace_write_bytes(store: LocalStore) -> None:
    store.write_bytes("g/k", b"existing")
    assert store.put_if_absent("g/k", b"new") is False
    assert store.read_bytes("g/k") == b"existing"


def test_put_if_absent_threads_exactly_one_winner(store: LocalStore) -> None:
    n = 16
    barrier = threading.Barrier(n)
    results: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        barrier.wait()
        won = store.put_if_absent("g/race", f"writer-{i}".encode())
        with lock:
            results.append((i, won))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == n
    winners = [i for i, won in results if won]
    assert len(winners) == 1
    assert store.read_bytes("g/race") == f"writer-{winners[0]}".encode()


@pytest.mark.parametrize("key", UNSAFE_KEYS, ids=[repr(k) for k in UNSAFE_KEYS])
def test_unsafe_keys_refused(store: LocalStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(UnsafeKeyError):
        check_key(key)
    with pytest.raises(UnsafeKeyError):
        store.write_bytes(key, b"x")
    with pytest.raises(UnsafeKeyError):
        store.put_if_absent(key, b"x")
    with pytest.raises(UnsafeKeyError):
        store.read_bytes(key)
    with pytest.raises(UnsafeKeyError):
        store.download(key, tmp_path / "dl")
    src = tmp_path / "src"
    src.write_bytes(b"x")
    with pytest.raises(UnsafeKeyError):
        store.upload(key, src)
    with pytest.raises(UnsafeKeyError):
        store.size(key)
    assert not (tmp_path / "outside").exists()
    assert not (tmp_path / "dl").exists()


def test_unsafe_key_is_a_store_error() -> None:
    assert issubclass(UnsafeKeyError, StoreError)
    with pytest.raises(StoreError):
        check_key("../x")


def test_non_string_key_refused() -> None:
    with pytest.raises(UnsafeKeyError):
        check_key(None)  # type: ignore[arg-type]


def test_safe_keys_accepted() -> None:
    for key in ("a", "g/cells/0123456789ab/_SUCCESS", "a.b/c-d_e/f..g", "...x"):
        assert check_key(key) == key


def test_local_symlink_escape_refused(local_store: LocalStore, tmp_path: Path) -> None:
    store = local_store
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir(parents=True, exist_ok=True)
    (store.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeKeyError):
        store.write_bytes("link/escaped", b"x")
    assert not (outside / "escaped").exists()


def test_open_store(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    s = open_store(f"file://{tmp_path}/x")
    assert isinstance(s, LocalStore)
    assert s.root == tmp_path / "x"
    with pytest.raises(StoreError, match="unsupported store URI"):
        open_store("gs://bucket/prefix")


# --- the cell layout ---------------------------------------------------------------------------------------------


def test_cell_key_validates_components() -> None:
    assert layout.cell_key(GRID, CID, "status.json") == f"{GRID}/cells/{CID}/status.json"
    for bad in ("0123456789AB", "0123456789a", "../../../etc", "0123456789abc", ""):
        with pytest.raises(StoreError):
            layout.cell_key(GRID, bad, "status.json")
    with pytest.raises(UnsafeKeyError):
        layout.cell_key(GRID, CID, "../other")
    with pytest.raises(UnsafeKeyError):
        layout.grid_key("..", "grid.json")


def test_status_round_trip(store: LocalStore) -> None:
    assert layout.read_status(store, GRID, CID) is None
    written = layout.write_status(store, GRID, CID, "running", attempt="a1", progress=0.25)
    read = layout.read_status(store, GRID, CID)
    assert read == written
    assert read["state"] == "running"
    assert read["attempt"] == "a1"
    assert read["progress"] == 0.25
    assert read["reason"] is None
    assert read["exit_code"] is None
    assert read["heartbeat_at"]
    layout.write_status(store, GRID, CID, "failed", reason="CUDA OOM", exit_code=3)
    read = layout.read_status(store, GRID, CID)
    assert read["state"] == "failed"
    assert read["reason"] == "CUDA OOM"
    assert read["exit_code"] == 3
    assert read["attempt"] is None  # status.json is replaced, not merged


def test_write_status_rejects_unknown_state(store: LocalStore) -> None:
    with pytest.raises(ValueError, match="unknown state"):
        layout.write_status(store, GRID, CID, "exploded")
    assert layout.read_status(store, GRID, CID) is None


def test_read_status_of_corrupt_file_is_none(store: LocalStore) -> None:
    store.write_bytes(layout.cell_key(GRID, CID, "status.json"), b"{not json")
    assert layout.read_status(store, GRID, CID) is None


def _write_attempt(store: LocalStore, attempt: str, files: dict[str, bytes]) -> dict[str, dict]:
    manifest = {}
    for name, data in files.items():
        rel = f"attempts/{attempt}/{name}"
        store.write_bytes(layout.cell_key(GRID, CID, rel), data)
        manifest[rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return manifest


FILES = {"result.json": b'{"bleu": 0.25}\n', "predictions.jsonl": b'{"id": 1}\n{"id": 2}\n',
         "adapter/adapter_model.safetensors": b"\x00\x01" * 64}


def test_not_done_without_success(store: LocalStore) -> None:
    _write_attempt(store, "a1", FILES)
    assert layout.done_manifest(store, GRID, CID) is None
    assert layout.read_manifest(store, GRID, CID) is None


def test_done_with_success(store: LocalStore) -> None:
    files = _write_attempt(store, "a1", FILES)
    assert layout.commit_success(store, GRID, CID, "a1", files) is True
    manifest = layout.done_manifest(store, GRID, CID)
    assert manifest is not None
    assert manifest["attempt_id"] == "a1"
    assert manifest["files"] == files
    assert manifest["finished_at"]
    assert layout.done_manifest(store, GRID, CID, rehash=True) == manifest
    assert layout.result_key(GRID, CID, manifest) == f"{GRID}/cells/{CID}/attempts/a1/result.json"
    assert store.read_bytes(layout.result_key(GRID, CID, manifest)) == FILES["result.json"]


def test_local_missing_file_means_not_done(local_store: LocalStore) -> None:
    store = local_store
    files = _write_attempt(store, "a1", FILES)
    layout.commit_success(store, GRID, CID, "a1", files)
    (store.root / GRID / "cells" / CID / "attempts/a1/predictions.jsonl").unlink()
    assert layout.done_manifest(store, GRID, CID) is None
    assert layout.done_manifest(store, GRID, CID, rehash=True) is None


def test_size_change_means_not_done(store: LocalStore) -> None:
    files = _write_attempt(store, "a1", FILES)
    layout.commit_success(store, GRID, CID, "a1", files)
    store.write_bytes(layout.cell_key(GRID, CID, "attempts/a1/result.json"), b'{"bleu": 0.99999}\n')
    assert layout.done_manifest(store, GRID, CID) is None


def test_local_same_size_tampering_needs_rehash(local_store: LocalStore) -> None:
    store = local_store
    files = _write_attempt(store, "a1", FILES)
    layout.commit_success(store, GRID, CID, "a1", files)
    tampered = b'{"bleu": 0.99}\n'
    assert len(tampered) == len(FILES["result.json"])
    store.write_bytes(layout.cell_key(GRID, CID, "attempts/a1/result.json"), tampered)
    assert layout.done_manifest(store, GRID, CID) is not None  # sizes only: cheap check passes
    assert layout.done_manifest(store, GRID, CID, rehash=True) is None  # re-hashing catches it


def test_corrupt_manifest_means_not_done(store: LocalStore) -> None:
    key = layout.cell_key(GRID, CID, "_SUCCESS")
    for data in (b"", b"{broken", b"[]", b'{"attempt_id": "a1"}', b'{"attempt_id": "a1", "files": []}'):
        store.delete_prefix(f"{GRID}/cells/{CID}")
        store.write_bytes(key, data)
        assert layout.done_manifest(store, GRID, CID) is None, data


def test_manifest_entry_without_size_means_not_done(store: LocalStore) -> None:
    files = _write_attempt(store, "a1", FILES)
    del files["attempts/a1/result.json"]["bytes"]
    layout.commit_success(store, GRID, CID, "a1", files)
    assert layout.done_manifest(store, GRID, CID) is None


def test_commit_success_first_writer_wins(store: LocalStore) -> None:
    files1 = _write_attempt(store, "a1", FILES)
    files2 = _write_attempt(store, "a2", {"result.json": b'{"bleu": 0.5}\n'})
    assert layout.commit_success(store, GRID, CID, "a1", files1) is True
    assert layout.commit_success(store, GRID, CID, "a2", files2) is False
    manifest = layout.done_manifest(store, GRID, CID, rehash=True)
    assert manifest["attempt_id"] == "a1"
    assert store.read_bytes(layout.result_key(GRID, CID, manifest)) == FILES["result.json"]


def test_commit_success_race(store: LocalStore) -> None:
    attempts = [f"a{i}" for i in range(8)]
    manifests = {a: _write_attempt(store, a, {"result.json": a.encode()}) for a in attempts}
    barrier = threading.Barrier(len(attempts))
    won: dict[str, bool] = {}

    def commit(a: str) -> None:
        barrier.wait()
        won[a] = layout.commit_success(store, GRID, CID, a, manifests[a])

    threads = [threading.Thread(target=commit, args=(a,)) for a in attempts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    winners = [a for a, w in won.items() if w]
    assert len(winners) == 1
    assert layout.done_manifest(store, GRID, CID)["attempt_id"] == winners[0]


def test_new_attempt_ids_are_valid_key_parts() -> None:
    ids = {layout.new_attempt_id() for _ in range(50)}
    assert len(ids) > 1
    for a in ids:
        assert layout.cell_key(GRID, CID, "attempts", a, "result.json")


def test_local_manifest_with_unsafe_file_key_is_never_done(local_store: LocalStore, tmp_path: Path) -> None:
    """A _SUCCESS naming a file outside the cell folder must not make the cell done (refused or not done)."""
    store = local_store
    outside = store.root / GRID / "cells" / "escape.bin"
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_bytes(b"abc")
    files = {"../escape.bin": {"bytes": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}}
    assert layout.commit_success(store, GRID, CID, "a1", files) is True
    try:
        result = layout.done_manifest(store, GRID, CID)
    except UnsafeKeyError:
        result = None
    assert result is None
