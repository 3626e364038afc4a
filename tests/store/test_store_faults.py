"""Store faults a hostile user found (issue 15, items 1, 2, 3, 5, 6, 8, 9 and 16): each test names its
reproduction. Model-free `lead` cells keep them fast; the S3 ones use the moto server of tests/conftest.py."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peftsum.checkpoint import Checkpointer
from peftsum.spec import parse_grid
from peftsum.store import (
    CorruptObject,
    LocalStore,
    StoreDenied,
    StoreUnavailable,
    UnsafeKeyError,
    layout,
    open_store,
)
from peftsum.store.local import classify

REPO = Path(__file__).resolve().parents[2]
LEAD = """name: lead
axes: {model: [tiny-gpt2], method: [lead], dataset: [synthetic-dialogsum]}
methods: {lead: {type: lead, k: 2}}
defaults: {eval: {limit: 8}}
"""


def _cli(module: str, *args: str, cwd: Path, env: dict | None = None, timeout: int = 180
         ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250", **(env or {})})


@pytest.fixture
def lead_store(tmp_path: Path) -> tuple[Path, Path, str]:
    """(grid file, store folder, cell id) of a done lead cell."""
    grid = tmp_path / "grid.yaml"
    grid.write_text(LEAD)
    out = _cli("launcher.cli", "run", str(grid), "--store", str(tmp_path / "store"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return grid, tmp_path / "store", parse_grid(LEAD).cells[0].cell_id


# --- item 1: symbolic links ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_planted_log_link_is_never_written_through(lead_store, tmp_path: Path) -> None:
    """Repro: remove a cell's _SUCCESS, `ln -s <victim> <store>/<grid>/logs/<cell>.log`, `launcher run`: the victim
    was overwritten (the log was opened with open("w")). Now the store refuses the link: the cell fails naming it,
    the victim keeps its bytes."""
    grid, store, cid = lead_store
    (store / "lead" / "cells" / cid / "_SUCCESS").unlink()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    log = store / "lead" / "logs" / f"{cid}.log"
    log.unlink()
    log.symlink_to(victim)
    out = _cli("launcher.cli", "run", str(grid), "--store", str(store), cwd=tmp_path)
    assert victim.read_text() == "precious\n"
    assert out.returncode == 1 and "symbolic link" in out.stderr, out.stderr


def test_symlinked_folder_or_file_in_the_store_is_refused(tmp_path: Path) -> None:
    """A symlinked ``logs/`` folder, or a result.json linked outside the store, is neither written nor read."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "result.json").write_text("{}")
    store = LocalStore(tmp_path / "store")
    store.write_bytes("g/cells/x/keep", b"1")
    (tmp_path / "store" / "g" / "logs").symlink_to(outside)
    (tmp_path / "store" / "g" / "cells" / "x" / "result.json").symlink_to(outside / "result.json")
    with pytest.raises(UnsafeKeyError):
        store.write_bytes("g/logs/a.log", b"x")
    with pytest.raises(UnsafeKeyError):
        store.read_bytes("g/cells/x/result.json")
    with pytest.raises(UnsafeKeyError):
        store.stat("g/cells/x/result.json")
    assert sorted(p.name for p in outside.iterdir()) == ["result.json"]
    assert store.list("g") == ["g/cells/x/keep"]  # links are not listed as objects


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    """Item 8: half-written ``.tmp`` files were left behind (``.status.json.*.tmp``, ``report/.results.csv.*.tmp``,
    a partial ``training.pt``). A write that fails removes its temporary file; old bytes stay."""
    store = LocalStore(tmp_path)
    store.write_bytes("a/b.json", b"old")
    with pytest.raises(OSError):
        store.upload("a/b.json", tmp_path / "no-such-source")
    assert store.read_bytes("a/b.json") == b"old"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.json"]
    stale = tmp_path / "a" / ".c.json.x1.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert store.remove_stale_temp("a") == 1 and not stale.exists()


def test_os_errors_are_classified() -> None:
    """Item 8: a read-only local store is a person's problem (exit 2), a full one retryable (exit 3)."""
    from peftsum.cell import exit_code

    assert isinstance(classify("x", OSError(errno.EROFS, "Read-only file system")), StoreDenied)
    assert isinstance(classify("x", OSError(errno.ENOSPC, "No space left on device")), StoreUnavailable)
    assert exit_code(classify("x", OSError(errno.EACCES, "Permission denied"))) == 2
    assert exit_code(classify("x", OSError(errno.ENOSPC, "No space left on device"))) == 3


# --- items 5 and 6: manifests that fail verification --------------------------------------------------------------

def _manifest_path(store: Path, cid: str) -> Path:
    return store / "lead" / "cells" / cid / "_SUCCESS"


BAD_MANIFESTS = {
    "files-not-a-mapping": lambda m: {**m, "files": ["result.json"]},
    "files-empty": lambda m: {**m, "files": {}},
    "attempt-not-a-string": lambda m: {**m, "attempt_id": 7},
    "attempt-missing": lambda m: {k: v for k, v in m.items() if k != "attempt_id"},
    "not-an-object": lambda m: [m],
    "size-as-string": lambda m: {**m, "files": {k: {**v, "bytes": str(v["bytes"])} for k, v in m["files"].items()}},
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", sorted(BAD_MANIFESTS))
def test_malformed_manifest_is_not_done_with_a_reason(lead_store, damage: str) -> None:
    """Item 6: a `_SUCCESS` whose `files` is not a mapping, `attempt_id` not a string or missing, or `files: {}`
    crashed run/report/verify (or, for `{}`, passed verify). Now: not done, with the reason."""
    _, store, cid = lead_store
    path = _manifest_path(store, cid)
    path.write_text(json.dumps(BAD_MANIFESTS[damage](json.loads(path.read_text()))))
    manifest, problem = layout.check_done(open_store(str(store)), "lead", cid)
    assert manifest is None and problem and "_SUCCESS" in problem


@pytest.mark.slow
def test_manifest_folder_and_corrupt_file_are_repaired_by_run(lead_store, tmp_path: Path) -> None:
    """Item 5: a done cell with a truncated file was retrained on every run and never repaired (the retrain lost
    the first-writer race to the stale manifest; the launcher said "failed … exit code 0" while status.json said
    "done"; orphaned attempts piled up). Item 6: `_SUCCESS` a folder crashed the run. Now `verify` says corrupt
    (exit 1), `launcher run` moves the manifest aside and the new attempt commits; no orphan attempt is left."""
    grid, store, cid = lead_store
    cell = store / "lead" / "cells" / cid
    (result,) = cell.glob("attempts/*/result.json")
    result.write_text(result.read_text()[:50])
    out = _cli("launcher.cli", "verify", str(grid), "--store", str(store), cwd=tmp_path)
    assert out.returncode == 1 and "corrupt" in out.stdout and "result.json" in out.stdout, out.stdout
    out = _cli("launcher.cli", "run", str(grid), "--store", str(store), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert list(cell.glob("_SUCCESS.corrupt-*.why"))
    manifest = layout.done_manifest(open_store(str(store)), "lead", cid, rehash=True)
    assert manifest is not None
    assert layout.read_status(open_store(str(store)), "lead", cid)["attempt"] == manifest["attempt_id"]

    _manifest_path(store, cid).unlink()
    _manifest_path(store, cid).mkdir()
    out = _cli("launcher.cli", "verify", str(grid), "--store", str(store), cwd=tmp_path)
    assert out.returncode == 1 and "folder" in out.stdout, out.stdout
    out = _cli("launcher.cli", "run", str(grid), "--store", str(store), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert _manifest_path(store, cid).is_file()
    attempts = {p.name for p in (cell / "attempts").iterdir()}
    assert layout.read_manifest(open_store(str(store)), "lead", cid)["attempt_id"] in attempts


# --- items 2, 3 and 8: S3 errors -----------------------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_store_is_retryable_and_a_missing_bucket_is_not(s3, tmp_path: Path) -> None:
    """Item 2: `peftsum cell` with an unreachable endpoint (or a missing bucket) exited 2, and the Job's
    podFailurePolicy failed the Job on it without retry. Now unreachable → 3; a missing bucket → 2 naming the bucket
    and where the credentials came from."""
    cid = parse_grid(LEAD).cells[0].cell_id
    down = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}", "PEFTSUM_S3_ATTEMPTS": "2"}
    out = _cli("peftsum.cli", "cell", "--store", s3.uri, "--grid", "lead", "--cell", cid, cwd=tmp_path, env=down)
    assert out.returncode == 3, out.stderr
    assert "Traceback" not in out.stderr
    out = _cli("peftsum.cli", "cell", "--store", "s3://no-such-bucket-here/p", "--grid", "lead", "--cell", cid,
               cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "no-such-bucket-here" in out.stderr and "credentials from env" in out.stderr


def test_verify_and_pull_fail_when_nothing_can_be_read(s3, tmp_path: Path) -> None:
    """Item 3: `launcher verify` and `launcher pull` exited 0 when nothing could be read ("0 verified, 3 not done",
    "pulled 0 files") — a missing bucket, wrong credentials. A read error is an error now, its cause named."""
    grid = tmp_path / "grid.yaml"
    grid.write_text(LEAD)
    for command in (["verify"], ["pull", "--to", str(tmp_path / "out")]):
        out = _cli("launcher.cli", command[0], str(grid), "--store", "s3://no-such-bucket-here/p", *command[1:],
                   cwd=tmp_path)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert "no-such-bucket-here" in out.stderr and "Traceback" not in out.stderr
    down = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}", "PEFTSUM_S3_ATTEMPTS": "1"}
    out = _cli("launcher.cli", "verify", str(grid), "--store", s3.uri, cwd=tmp_path, env=down)
    assert out.returncode == 1 and "127.0.0.1" in out.stderr, out.stderr


def test_upload_to_a_deleted_bucket_and_persistent_503_are_classified(s3, tmp_path: Path) -> None:
    """Item 8: boto3's S3UploadFailedError escaped as a traceback (bucket deleted mid-run) and a persistent 503 on
    upload exited 1. Now: StoreDenied (exit 2) and StoreUnavailable (exit 3)."""
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 1000)
    store = open_store(s3.uri)
    s3.faults.status, s3.faults.fail_next = 503, 1000
    os.environ["PEFTSUM_S3_ATTEMPTS"] = "2"
    try:
        flaky = open_store(s3.uri)
        with pytest.raises(StoreUnavailable):
            flaky.upload("g/f.bin", src)
    finally:
        os.environ.pop("PEFTSUM_S3_ATTEMPTS")
        s3.faults.fail_next = 0
    s3.client.delete_bucket(Bucket=s3.bucket)
    with pytest.raises(StoreDenied, match=s3.bucket):
        store.upload("g/f.bin", src)


# --- item 9: checkpoints -------------------------------------------------------------------------------------------

def _save(ck: Checkpointer, step: int) -> None:
    import torch

    ck.save(step, {"w": torch.full((4,), float(step))}, {"rng_cpu": torch.get_rng_state()}, {"step": step})


@pytest.mark.parametrize("damage", ["garbage-weights", "truncated-training", "bad-state", "marker-only"])
def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path: Path, damage: str) -> None:
    """Item 9: a garbage/truncated weights.safetensors, training.pt or state.json failed the cell with exit 1 on
    every rerun, and a COMPLETE marker without its files gave exit 3 forever. Now the newest usable checkpoint is
    loaded (COMPLETE carries each file's sha256) and the damaged one deleted."""
    store = LocalStore(tmp_path / "store")
    ck = Checkpointer(store, "g", "0123456789ab", workdir=tmp_path)
    _save(ck, 4)
    _save(ck, 8)
    newest = tmp_path / "store" / "g" / "cells" / "0123456789ab" / "checkpoints" / "000000008"
    if damage == "garbage-weights":
        (newest / "weights.safetensors").write_bytes(b"garbage")
    elif damage == "truncated-training":
        data = (newest / "training.pt").read_bytes()
        (newest / "training.pt").write_bytes(data[: len(data) // 2])
    elif damage == "bad-state":
        (newest / "state.json").write_text("{not json")
    else:
        for f in ("weights.safetensors", "training.pt", "state.json"):
            (newest / f).unlink()
    weights, _, state, _ = ck.load_latest()
    assert state["step"] == 4 and float(weights["w"][0]) == 4.0
    assert ck.complete_steps() == [4]


# --- item 16: leftovers, concurrent runs, signals --------------------------------------------------------------

def test_done_cell_clears_checkpoints_left_by_a_kill(tmp_path: Path) -> None:
    """Item 16: checkpoints survived a kill right after `_SUCCESS` even with `keep_checkpoints: false`. The next
    run of the done cell deletes them."""
    from peftsum.cell import run_cell

    grid = parse_grid(LEAD)
    cell = grid.cells[0]
    store = LocalStore(tmp_path / "store")
    assert run_cell(store, "lead", cell) == 0
    _save(Checkpointer(store, "lead", cell.cell_id, workdir=tmp_path), 3)
    assert run_cell(store, "lead", cell) == 0
    assert store.list(layout.cell_key("lead", cell.cell_id, "checkpoints")) == []


@pytest.mark.slow
def test_a_cell_leased_by_another_run_is_skipped(tmp_path: Path) -> None:
    """Item 16: two concurrent `launcher run`s of one grid trained every cell twice and the loser overwrote the
    winner's log. A cell now runs under a lease in the store: the second run skips it; an expired lease (its run
    was killed) is taken over."""
    store = LocalStore(tmp_path / "store")
    cid = parse_grid(LEAD).cells[0].cell_id
    assert layout.take_lease(store, "lead", cid, "run-a") is None
    assert layout.take_lease(store, "lead", cid, "run-b") == "run-a"
    grid = tmp_path / "grid.yaml"
    grid.write_text(LEAD)
    out = _cli("launcher.cli", "run", str(grid), "--store", str(store.root), cwd=tmp_path)
    assert out.returncode == 1 and "another run holds its lease (run-a)" in out.stderr, out.stderr
    assert layout.done_manifest(store, "lead", cid) is None
    layout.renew_lease(store, "lead", cid, "run-a", seconds=-1)  # run-a died: its lease expired
    out = _cli("launcher.cli", "run", str(grid), "--store", str(store.root), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert layout.done_manifest(store, "lead", cid) is not None
    assert store.stat(layout.cell_key("lead", cid, "lease.json")) is None  # released


@pytest.mark.slow
def test_sigterm_to_launcher_run_reaches_the_running_cell(tmp_path: Path) -> None:
    """Item 16: SIGTERM to `launcher run` orphaned the running cell (it trained on). Now it is forwarded: the cell
    checkpoints and exits 3 (status pending), launcher run exits 3, and no cell process is left."""
    grid = tmp_path / "grid.yaml"
    grid.write_text("""name: stop
axes: {model: [tiny-gpt2], method: [full], dataset: [synthetic-dialogsum]}
defaults:
  train: {epochs: 3, batch_tokens: 512, checkpoint_every_steps: 1000, checkpoint_every_seconds: null}
  eval: {limit: 8, max_new_tokens: 8}
  data: {train_limit: 300}
""")
    proc = subprocess.Popen([sys.executable, "-m", "launcher.cli", "run", str(grid), "--store", "store"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    store = LocalStore(tmp_path / "store")
    cid = parse_grid(grid.read_text()).cells[0].cell_id
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (layout.read_status(store, "stop", cid) or {}).get("step"):
        assert proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert "interrupted" in err
    status = layout.read_status(store, "stop", cid)
    assert status["state"] == "pending" and status["exit_code"] == 3
    ps = subprocess.run(["pgrep", "-f", f"--cell {cid}"], capture_output=True, text=True)
    assert ps.stdout.strip() == "", "the cell process outlived launcher run"


def test_corrupt_object_is_its_own_error() -> None:
    """The classes callers branch on are distinct (verify: corrupt; run: repair; cell: exit code)."""
    from peftsum.cell import exit_code

    assert exit_code(CorruptObject("x")) == 3 and exit_code(StoreDenied("x")) == 2
