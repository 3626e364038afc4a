"""Grid and cell schema: parsing, validation, expansion, hashing. Pure of ML (enforced by import-linter)."""

from peftsum.spec.cell import Cell, DatasetRef, MethodRef, ModelRef, canonical_json
from peftsum.spec.errors import SpecError
from peftsum.spec.grid import Grid, expand, load_grid, parse_grid

__all__ = ["Cell", "DatasetRef", "Grid", "MethodRef", "ModelRef", "SpecError", "canonical_json", "expand",
           "load_grid", "parse_grid"]
