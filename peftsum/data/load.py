"""Read a dataset split as plain examples ``{id, source, summary}``: hub, local files or synthetic.

Loaders are registered by source kind; dataset *names* come from the catalog or the grid's ``datasets:`` section.
:func:`load_examples` is what a cell reads: the split, the shared length filter (``peftsum.data.lengths``), the
grouping of rows that share a source (``eval.references: grouped``), then the limit, in that order.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from peftsum.registry import Registry
from peftsum.spec.cell import DatasetRef
from peftsum.spec.settings import DataSettings


@dataclass(frozen=True)
class Example:
    id: str
    source: str
    summary: str  # the reference (grouped: the first of ``references``)
    references: tuple[str, ...] = ()  # every reference of a grouped example; () = just ``summary``

    @property
    def refs(self) -> tuple[str, ...]:
        return self.references or (self.summary,)


@dataclass
class LoadedSplit:
    """The examples a cell uses of one split, and what the length filter took away."""

    examples: list[Example]
    rows: int  # rows read before the length filter
    length_dropped: int = 0  # rows over the length threshold (the same rows for every model)
    length_threshold: float | None = None  # total tokens (source + summary) a kept row may have; None: no filter
    grouped_rows: int = 0  # rows merged into the examples as their references (grouped evaluation)

    @property
    def ids_sha256(self) -> str:
        """What the cell trained or was scored on, comparable across cells: sha256 of the ids, one per line."""
        return ids_sha256([e.id for e in self.examples])


def ids_sha256(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


class MissingSplit(ValueError):
    """The dataset has no such split (a spec/data problem that no retry fixes)."""


Loader = Callable[[DatasetRef, str, "int | None"], list[dict]]  # (ref, split, limit) -> rows
LOADERS: Registry[Loader] = Registry("dataset loader")


def _hub(ref: DatasetRef, split: str, limit: int | None) -> list[dict]:
    import datasets

    try:
        ds = datasets.load_dataset(ref.id, ref.config, revision=ref.revision, split=split)
    except ValueError as err:
        if "Unknown split" in str(err):
            raise MissingSplit(f"{ref.id}: {err}") from None
        raise
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
            raise MissingSplit(f"{root}: no {split}.jsonl / {split}.csv / {split}.parquet")
        path = files[0]
    elif root.is_file() and root.suffix in _FORMATS:
        path = root
    else:
        raise FileNotFoundError(f"{root}: not a folder or a .jsonl/.csv/.parquet file")
    ds = datasets.load_dataset(_FORMATS[path.suffix], data_files=str(path), split="train")
    if path is root and ref.source_column in ds.column_names:  # one file: this split's share of its rows
        rows = list(itertools.islice((r for r in ds if split_of(str(r[ref.source_column] or "")) == split), limit))
        if not rows:
            raise MissingSplit(f"{root}: no row of this single file falls into the {split!r} split ({len(ds)} rows, "
                               f"cut 90/5/5 by a hash of the source text); add rows or give a folder with "
                               f"{split}.jsonl")
        return rows
    return list(ds.select(range(min(limit, len(ds))))) if limit is not None else list(ds)


def _synthetic(ref: DatasetRef, split: str, limit: int | None) -> list[dict]:
    from peftsum.data.synthetic import DEFAULT_SIZES, generate

    return generate(ref.id, split, min(limit, DEFAULT_SIZES[split]) if limit is not None else None)


LOADERS.register("hub", _hub)
LOADERS.register("local", _local)
LOADERS.register("synthetic", _synthetic)


def load_examples(ref: DatasetRef, split: str, limit: int | None, data: DataSettings,
                  grouped: bool = False) -> LoadedSplit:
    """The examples of ``split`` a cell uses: the split read, then the shared length filter (every model of the
    dataset keeps the same rows), then rows sharing a source merged into one example (``grouped``), then the first
    ``limit``. Without a filter or grouping the loader reads only the first ``limit`` rows."""
    if not data.length_filter and not grouped:
        examples = load_split(ref, split, limit)
        return LoadedSplit(examples, rows=len(examples))
    examples = load_split(ref, split, None)
    out = LoadedSplit(examples, rows=len(examples))
    if data.length_filter:
        from peftsum.data.lengths import length_filter

        out.examples, out.length_threshold = length_filter(ref, split, examples, data)
        out.length_dropped = len(examples) - len(out.examples)
    if grouped:
        before = len(out.examples)
        out.examples = group_by_source(out.examples)
        out.grouped_rows = before - len(out.examples)
    if limit is not None:
        out.examples = out.examples[:limit]
    return out


_REFERENCE_SUFFIX = re.compile(r"_\d+$")


def group_by_source(examples: list[Example]) -> list[Example]:
    """One example per distinct source, in order of first appearance, with every row's summary as a reference. Its
    id is the rows' shared id without the ``_<n>`` suffix (DialogSum: test_0_1 … test_0_3 → test_0), else the first
    row's id."""
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(ex.source, []).append(ex)
    out = []
    for rows in groups.values():
        stems = {_REFERENCE_SUFFIX.sub("", r.id) for r in rows}
        ex_id = stems.pop() if len(stems) == 1 and len(rows) > 1 else rows[0].id
        out.append(Example(ex_id, rows[0].source, rows[0].summary, tuple(r.summary for r in rows)))
    return out


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
