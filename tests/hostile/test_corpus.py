"""The bad-input corpus: every folder here is one hostile input or fault a user really tried (issue 15), replayed
through the real command line. Each case's steps run in a temporary copy of its folder; every command must end
without a traceback, with the documented exit code, and name what was wrong (file, field, value).

Case format (``case.yaml``)::

    why: one line, the reproduction
    steps:
      - run: [launcher, validate, grid.yaml]   # launcher / peftsum → python -m launcher.cli / peftsum.cli
        exit: 2                                # default 0
        names: [grid.yaml, seed]               # must appear in stdout + stderr
        absent: [s3cret]                       # must not appear (a password, a victim's content)
        timeout: 60                            # seconds, default 120
        memory_mb: 1500                        # optional address-space limit for the child
        env: {AWS_ENDPOINT_URL: "http://127.0.0.1:9"}   # optional extra environment
      - python: |                              # prepare or damage a store between commands
          ...
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).parent
CASES = sorted(p.parent.name for p in HERE.glob("*/case.yaml"))
MODULES = {"launcher": "launcher.cli", "peftsum": "peftsum.cli"}


def _param(case: str) -> object:
    """A case as a test; slow (skipped by ``scripts/test.sh --fast``) when a step runs a grid's cells."""
    steps = yaml.safe_load((HERE / case / "case.yaml").read_text()).get("steps") or []
    runs_cells = any(step.get("run", [])[:2] == ["launcher", "run"] for step in steps if isinstance(step, dict))
    return pytest.param(case, marks=[pytest.mark.slow] if runs_cells else [])


def _limit(memory_mb: int | None):
    if memory_mb is None:
        return None

    def apply() -> None:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _run_step(step: dict, cwd: Path, case: str) -> None:
    argv = [str(a) for a in step["run"]]
    cmd = [sys.executable, "-m", MODULES[argv[0]], *argv[1:]] if argv[0] in MODULES else argv
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1]), "NO_COLOR": "1", "COLUMNS": "250",
           **{k: str(v) for k, v in step.get("env", {}).items()}}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors="replace", env=env,
                          timeout=step.get("timeout", 120), preexec_fn=_limit(step.get("memory_mb")), check=False)
    output = proc.stdout + proc.stderr
    where = f"{case}: {' '.join(argv)}"
    assert "Traceback" not in output, f"{where} printed a traceback:\n{output[-4000:]}"
    assert proc.returncode == step.get("exit", 0), f"{where} exited {proc.returncode}:\n{output[-4000:]}"
    for name in step.get("names", []):
        assert str(name) in output, f"{where}: output does not name {name!r}:\n{output[-4000:]}"
    for text in step.get("absent", []):
        assert str(text) not in output, f"{where}: output shows {text!r}:\n{output[-4000:]}"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case(case: str, tmp_path: Path) -> None:
    spec = yaml.safe_load((HERE / case / "case.yaml").read_text())
    assert spec.get("why") and spec.get("steps"), f"{case}/case.yaml needs 'why' and 'steps'"
    work = tmp_path / case
    shutil.copytree(HERE / case, work)
    for step in spec["steps"]:
        if "python" in step:
            subprocess.run([sys.executable, "-c", step["python"]], cwd=work, check=True, timeout=120)
        else:
            _run_step(step, work, case)


def test_corpus_covers_every_item() -> None:
    """Every high, medium and low item of issue 15 that a command line can reproduce has at least one case."""
    items = {int(c.split("-", 1)[0]) for c in CASES if c.split("-", 1)[0].isdigit()}
    missing = {1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16} - items
    assert not missing, f"no corpus case for items {sorted(missing)}"
