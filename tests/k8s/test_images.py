"""images/: both Dockerfiles pass hadolint, run as the uid the Jobs require, and provide the command the Job
templates call (ENTRYPOINT peftsum, a console script of this package, with the subcommands and options used). The
CUDA image installs exactly images/requirements-cuda.txt (scripts/lock-image.sh): the pod's packages (core + [gpu]),
torch's CUDA build, never the launcher's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.k8s import pod, render

REPO = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).with_name("hadolint")
DOCKERFILES = [REPO / "images" / "Dockerfile.cuda", REPO / "images" / "Dockerfile.cpu"]
CUDA_REQUIREMENTS = REPO / "images" / "requirements-cuda.txt"
RELOCK = "regenerate it with `bash scripts/lock-image.sh`"


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
    assert pod.UID >= 10000
    assert re.search(rf"^USER {pod.UID}:{pod.UID}$", text, re.M)  # the Job's runAsUser/runAsGroup/fsGroup
    assert f"--uid {pod.UID}" in text and f"--gid {pod.UID}" in text
    assert "HF_HOME=/cache/hf" in text and "PEFTSUM_CACHE=/cache/peftsum" in text
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(":" in f and not f.endswith(":latest") for f in froms)  # pinned base
    job = render.cell_job(paper, paper.cells[0], paper.cluster)
    ctx = job["spec"]["template"]["spec"]["securityContext"]
    assert ctx["runAsUser"] == ctx["runAsGroup"] == ctx["fsGroup"] == pod.UID
    assert ctx["fsGroupChangePolicy"] == "OnRootMismatch"


def _pins(path: Path) -> dict[str, str]:
    """name (normalised) → version of every ``name==version`` line."""
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def _names(requirements: list[str]) -> set[str]:
    return {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", r).group()).lower() for r in requirements}


def test_cuda_image_installs_the_pod_packages_and_torch_s_cuda_build() -> None:
    text = DOCKERFILES[0].read_text()
    # no CUDA base image: torch's wheels bring the CUDA libraries, the node's toolkit mounts the driver
    assert re.search(r"^FROM python:[0-9.]+-slim-", text, re.M) and "nvidia/cuda" not in text.split("FROM", 1)[1]
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in text
    assert re.search(r"pip install --no-cache-dir --require-hashes --no-deps -r requirements-cuda\.txt", text)
    assert re.search(r"pip install --no-cache-dir --no-deps \.", text)  # peftsum itself, nothing resolved anew
    pins = _pins(CUDA_REQUIREMENTS)
    assert "nvidia-ml-py" in pins  # NVML: energy and GPU memory (peftsum.resources)
    assert not {"kubernetes", "kubernetes-validate"} & pins.keys()  # the launcher's, not the pod's
    # torch pinned, the version the CPU tests run, as PyPI's Linux CUDA build: its CUDA runtime and cuDNN wheels
    from importlib.metadata import version

    assert pins["torch"] == version("torch").split("+")[0] and "+cpu" not in pins["torch"]
    cuda_libs = [n for n in pins
                 if n.startswith(("nvidia-cuda-runtime", "nvidia-cudnn", "nvidia-cublas", "nvidia-nccl"))]
    assert len(cuda_libs) == 4, f"torch's CUDA libraries are missing ({cuda_libs}); {RELOCK}"
    blocks = CUDA_REQUIREMENTS.read_text().split("\n")
    hashed = [i for i, line in enumerate(blocks) if re.match(r"^[A-Za-z0-9_.-]+==", line)]
    assert all("--hash=sha256:" in blocks[i + 1] for i in hashed), "every pin carries its hashes"


def test_cuda_requirements_match_pyproject_and_the_lock() -> None:
    """images/requirements-cuda.txt is pyproject's core + [gpu] resolved with the lock's versions: a dependency
    added without relocking fails here."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _pins(CUDA_REQUIREMENTS)
    wanted = _names(project["dependencies"] + project["optional-dependencies"]["gpu"])
    assert wanted <= pins.keys(), f"{sorted(wanted - pins.keys())} missing: {RELOCK}"
    launcher_only = _names(project["optional-dependencies"]["launcher"]) - {"jinja2", "rich"}  # torch/typer need those
    assert not launcher_only & pins.keys()
    lock = _pins(REPO / "requirements-lock.txt")
    differ = {n: (v, lock[n]) for n, v in pins.items() if n in lock and lock[n] != v}
    assert differ == {}, f"versions differ from requirements-lock.txt: {differ}; {RELOCK}"


def test_cpu_image_installs_the_core_only() -> None:
    text = DOCKERFILES[1].read_text()
    assert re.search(r"pip install --no-cache-dir -c /tmp/constraints\.txt \.\s", text)  # no [extras]


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
