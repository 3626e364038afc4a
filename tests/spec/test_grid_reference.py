"""docs/grid-reference.md is generated from the validating code: it must be what the generator writes today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_grid_reference_is_current() -> None:
    out = subprocess.run([sys.executable, "-m", "peftsum.spec.reference"], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout == (REPO / "docs" / "grid-reference.md").read_text(), (
        "docs/grid-reference.md is stale: python -m peftsum.spec.reference > docs/grid-reference.md")
