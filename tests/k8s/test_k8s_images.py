"""images/: both Dockerfiles pass hadolint, run as the uid the Jobs require, and provide the command the Job
templates call (ENTRYPOINT peftsum, a console script of this package, with the subcommands and options used)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.k8s import render

REPO = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).with_name("hadolint")
DOCKERFILES = [REPO / "images" / "Dockerfile.cuda", REPO / "images" / "Dockerfile.cpu"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(dockerfile: Path) -> None:
    proc = subprocess.run([str(HADOLINT), "--failure-threshold", "info", str(dockerfile)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get install curl\n")
    assert subprocess.run([str(HADOLINT), str(bad)], capture_output=True, check=False).returncode != 0


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_matches_the_pod_contract(dockerfile: Path, paper) -> None:
    text = dockerfile.read_text()
    assert 'ENTRYPOINT ["peftsum"]' in text
    assert re.search(r"^USER 1000:1000$", text, re.M)  # runAsUser/runAsGroup of the Job's securityContext
    assert "HF_HOME=/cache/hf" in text and "PEFTSUM_CACHE=/cache/peftsum" in text
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(":" in f and not f.endswith(":latest") for f in froms)  # pinned base
    job = render.cell_job(paper, paper.cells[0], paper.cluster)
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 1000 and pod["securityContext"]["runAsGroup"] == 1000


def test_cuda_image_is_cuda() -> None:
    text = DOCKERFILES[0].read_text()
    assert re.search(r"^FROM nvidia/cuda:[0-9.]+-cudnn-runtime-", text, re.M)
    assert "download.pytorch.org/whl/cu" in text


def test_peftsum_is_a_console_script_of_the_package() -> None:
    scripts = (REPO / "pyproject.toml").read_text().split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^peftsum = "peftsum\.cli:main"$', scripts, re.M)


def test_templates_call_commands_the_image_provides(paper) -> None:
    jobs = [render.cell_job(paper, paper.cells[0], paper.cluster), render.aggregate_job(paper, paper.cluster)]
    for job in jobs:
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        proc = subprocess.run([sys.executable, "-m", "peftsum.cli", args[0], "--help"], capture_output=True,
                              text=True, cwd=REPO, check=False)
        assert proc.returncode == 0, proc.stderr
        for option in (a for a in args if a.startswith("--")):
            assert re.search(rf"(^|\s){re.escape(option)}\b", proc.stdout), f"peftsum {args[0]} has no {option}"
