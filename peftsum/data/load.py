"""Read a dataset split as plain examples ``{id, source, summary}``: hub, local files or synthetic.

Loaders are registered by source kind; dataset *names* come from the catalog or the grid's ``datasets:`` section.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from peftsum.registry import Registry
from peftsum.spec.cell import DatasetRef


@dataclass(frozen=True)
class Example:
    id: str
    source: str
    summary: str


Loader = Callable[[DatasetRef, str, "int | None"], list[dict]]  # (ref, split, limit) -> rows
LOADERS: Registry[Loader] = Registry("dataset loader")


def _hub(ref: DatasetRef, split: str, limit: int | None) -> list[dict]:
    import datasets

    ds = datasets.load_dataset(ref.id, ref.config, revision=ref.revision, split=split)
    return list(ds.select(range(min(limit, len(ds))))) if limit is not None else list(ds)


_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
# A single-file dataset is cut into splits by a hash of each row's source text, so no row is both trained on and
# scored, the cut survives reordering and appending rows, and duplicate sources never straddle two splits.
SINGLE_FILE_SPLITS = (("train", 0.90), ("validation", 0.05), ("test", 0.05))


def split_of(source: str) -> str:
    """The split of a single-file dataset's row with this source text."""
    u = int.from_bytes(hashlib.sha256(source.encode()).digest()[:8], "big") / 2**64
    edge = 0.0
    for name, share in SINGLE_FILE_SPLITS:
        edge += share
        if u < edge:
            return name
    return SINGLE_FILE_SPLITS[-1][0]


def _local(ref: DatasetRef, split: str, limit: int | None) -> list[dict]:
    """A folder with ``<split>.{jsonl,csv,parquet}`` files, or one file cut into splits (``split_of``); local or
    s3://."""
    import datasets

    if ref.id.startswith("s3://"):  # staged in the store: downloaded once into the cache, then read locally
        from peftsum.store.fetch import materialize

        root = materialize(ref.id)
    else:
        root = Path(ref.id).expanduser()
    if root.is_dir():
        files = [p for p in sorted(root.iterdir()) if p.stem == split and p.suffix in _FORMATS]
        if not files:
            raise FileNotFoundError(f"{root}: no {split}.jsonl / {split}.csv / {split}.parquet")
        path = files[0]
    elif root.is_file() and root.suffix in _FORMATS:
        path = root
    else:
        raise FileNotFoundError(f"{root}: not a folder or a .jsonl/.csv/.parquet file")
    ds = datasets.load_dataset(_FORMATS[path.suffix], data_files=str(path), split="train")
    if path is root and ref.source_column in ds.column_names:  # one file: this split's share of its rows
        rows = list(itertools.islice((r for r in ds if split_of(str(r[ref.source_column] or "")) == split), limit))
        if not rows:
            raise ValueError(f"{root}: no row of this single file falls into the {split!r} split ({len(ds)} rows, cut "
                             f"90/5/5 by a hash of the source text); add rows or give a folder with {split}.jsonl")
        return rows
    return list(ds.select(range(min(limit, len(ds))))) if limit is not None else list(ds)


def _synthetic(ref: DatasetRef, split: str, limit: int | None) -> list[dict]:
    from peftsum.data.synthetic import DEFAULT_SIZES, generate

    return generate(ref.id, split, min(limit, DEFAULT_SIZES[split]) if limit is not None else None)


LOADERS.register("hub", _hub)
LOADERS.register("local", _local)
LOADERS.register("synthetic", _synthetic)


def load_split(ref: DatasetRef, split: str, limit: int | None = None) -> list[Example]:
    """The first ``limit`` examples of ``split``, mapped through the dataset's column names."""
    rows = LOADERS.get(ref.source)(ref, split, limit)
    out = []
    for i, row in enumerate(rows):
        for col in (ref.source_column, ref.summary_column):
            if col not in row:
                raise KeyError(f"dataset {ref.name!r} split {split!r} has no column {col!r}; columns: {sorted(row)}")
        ex_id = str(row[ref.id_column]) if ref.id_column and ref.id_column in row else f"{split}-{i}"
        out.append(Example(ex_id, str(row[ref.source_column] or ""), str(row[ref.summary_column] or "")))
    return out
