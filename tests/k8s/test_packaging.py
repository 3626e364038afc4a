"""A non-editable install (the wheel) carries the Job templates and the CRD schemas, and `launcher render` works
from it outside the checkout."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_install_renders_jobs_outside_the_checkout(tmp_path: Path) -> None:
    # Built from a copy of what the wheel is made of: an in-tree build would leave build/ in the checkout.
    src = tmp_path / "src"
    for name in ("peftsum", "launcher", "job_templates"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(src)], check=True, timeout=300)
    (wheel,) = wheels.glob("peftsum-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("data/share/peftsum/job_templates/cell-job.yaml.j2") for n in names)
    assert sum(n.startswith("launcher/crds/") and n.endswith(".yaml") for n in names) == 3

    # A fresh venv with only the wheel; its dependencies come from this environment's site-packages (a plain path:
    # the checkout's editable-install hook there is not run).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)],
                   check=True, timeout=300)

    work = tmp_path / "elsewhere"
    work.mkdir()
    grid = work / "grid.yaml"
    grid.write_text((REPO / "examples" / "quickstart.yaml").read_text()
                    + "cluster: {image: registry.example/peftsum@sha256:" + "0" * 64 + "}\n")
    out = subprocess.run([str(py), "-c", "import launcher, sys; from launcher.cli import main; "
                          "print(launcher.__file__, file=sys.stderr); sys.exit(main(sys.argv[1:]))",
                          "render", str(grid), "-o", str(work / "manifests")],
                         cwd=work, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert str(REPO) not in out.stderr.splitlines()[0]  # the installed copy ran, not the checkout
    docs = [yaml.safe_load(p.read_text()) for p in sorted((work / "manifests").rglob("*.yaml"))]
    assert {d["kind"] for d in docs} == {"Job"} and len(docs) == 8  # 7 cells + the aggregation Job
