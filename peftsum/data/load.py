"""Read a dataset split as plain examples ``{id, source, summary}``: hub, local files or synthetic.

Loaders are registered by source kind; dataset *names* come from the catalog or the grid's ``datasets:`` section.
:func:`load_examples` is what a cell reads: the split checked against the data contract (``peftsum.data.contract``:
what is an error, what is dropped), the shared length filter (``peftsum.data.lengths``), the grouping of rows that
share a source (``eval.references: grouped``), then the limit, in that order.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from peftsum.data.contract import Checked, DataError, Example, Rows, check_columns, check_rows, describe
from peftsum.data.readers import FORMATS, read_rows
from peftsum.registry import Registry
from peftsum.spec.cell import DatasetRef
from peftsum.spec.settings import DataSettings

__all__ = ["DataError", "Example", "LoadedSplit", "MissingSplit", "group_by_source", "ids_sha256", "load_examples",
           "load_split", "split_of"]
log = logging.getLogger(__name__)


@dataclass
class LoadedSplit:
    """The examples a cell uses of one split, and what the length filter took away."""

    examples: list[Example]
    rows: int  # rows read before the length filter
    length_dropped: int = 0  # rows over the length threshold (the same rows for every model)
    length_threshold: float | None = None  # total tokens (source + summary) a kept row may have; None: no filter
    grouped_rows: int = 0  # rows merged into the examples as their references (grouped evaluation)
    dropped: dict[str, int] = field(default_factory=dict)  # rows the data contract dropped, by reason

    @property
    def ids_sha256(self) -> str:
        """What the cell trained or was scored on, comparable across cells: sha256 of the ids, one per line."""
        return ids_sha256([e.id for e in self.examples])


def ids_sha256(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


class MissingSplit(DataError):
    """The dataset has no such split (a spec/data problem that no retry fixes: exit 2)."""


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
    where = f"hub dataset {ref.id}" + (f" ({ref.config})" if ref.config else "") + \
        (f" @ {ref.revision}" if ref.revision else "") + f" split {split!r}"
    return Rows(ds.select(range(min(limit, len(ds)))) if limit is not None else ds, where,
                columns=list(ds.column_names))


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
    """A folder with ``<split>.{jsonl,json,csv,parquet}`` files, or one file cut into splits (``split_of``); local
    or s3://. Rows as ``peftsum.data.readers`` reads them (errors name the file and line)."""
    if ref.id.startswith("s3://"):  # staged in the store: downloaded once into the cache, then read locally
        from peftsum.store.fetch import materialize

        root = materialize(ref.id)
    else:
        root = Path(ref.id).expanduser()
    shown = ref.id.rstrip("/")
    if root.is_dir():
        files = [p for p in sorted(root.iterdir()) if p.stem == split and p.suffix in FORMATS]
        if not files:
            raise MissingSplit(f"{shown}: no {split}.jsonl / {split}.csv / {split}.parquet")
        path, shown = files[0], f"{shown}/{files[0].name}"
    elif root.is_file() and root.suffix in FORMATS:
        path = root
    elif ref.id.startswith("s3://"):
        raise FileNotFoundError(f"{root}: not a folder or a .jsonl/.json/.csv/.parquet file")
    else:
        raise DataError(f"not a folder or a .jsonl/.json/.csv/.parquet file (a relative path is resolved against "
                        f"the cell's working directory, {Path.cwd()})", shown)
    if path is not root:
        return read_rows(path, shown, limit)
    rows = read_rows(path, shown)  # one file: this split's share of its rows
    check_columns(rows, ref, split)  # the cut needs every row's source
    keep = [i for i, r in enumerate(rows) if split_of(str(r[ref.source_column] or "")) == split][:limit]
    if not keep:
        raise MissingSplit(f"{shown}: no row of this single file falls into the {split!r} split ({len(rows)} rows, "
                           f"cut 90/5/5 by a hash of the source text); add rows or give a folder with "
                           f"{split}.jsonl")
    return Rows([rows[i] for i in keep], shown, [rows.lines[i] for i in keep] if rows.lines is not None else None,
                rows.columns)


def _synthetic(ref: DatasetRef, split: str, limit: int | None) -> list[dict]:
    from peftsum.data.synthetic import DEFAULT_SIZES, generate

    rows = generate(ref.id, split, min(limit, DEFAULT_SIZES[split]) if limit is not None else None)
    return Rows(rows, f"synthetic dataset {ref.id!r} split {split!r}")


LOADERS.register("hub", _hub)
LOADERS.register("local", _local)
LOADERS.register("synthetic", _synthetic)


def load_examples(ref: DatasetRef, split: str, limit: int | None, data: DataSettings,
                  grouped: bool = False) -> LoadedSplit:
    """The examples of ``split`` a cell uses: the split read and checked (``peftsum.data.contract``), then the shared
    length filter (every model of the dataset keeps the same rows), then rows sharing a source merged into one
    example (``grouped``), then the first ``limit``. Without a filter or grouping the loader reads only the rows
    that give the first ``limit`` usable examples."""
    checked = read_split(ref, split, None if data.length_filter or grouped else limit)
    if checked.dropped:
        log.warning("%s: dropped %d of %d rows read (%s): see result.json data.rows_dropped", checked.origin,
                    sum(checked.dropped.values()), checked.read, describe(checked.dropped, ref))
    examples = checked.examples
    out = LoadedSplit(examples, rows=len(examples), dropped=checked.dropped)
    if data.length_filter:
        from peftsum.data.lengths import length_filter

        out.examples, out.length_threshold = length_filter(ref, split, examples, data)
        out.length_dropped = len(examples) - len(out.examples)
        if not out.examples:
            raise DataError(f"the shared length filter keeps no row of the {split!r} split: all {len(examples)} are "
                            f"over {out.length_threshold:g} tokens (source + summary, {data.length_tokenizer}); raise "
                            "data.max_total_tokens / data.max_length_quantile", checked.origin)
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
    row's id. Ids stay unique: a stem that two groups would share gives each its first row's id instead."""
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(ex.source, []).append(ex)
    members = list(groups.values())
    names, stemmed = [], []
    for rows in members:
        stems = {_REFERENCE_SUFFIX.sub("", r.id) for r in rows}
        stemmed.append(len(stems) == 1 and len(rows) > 1)
        names.append(stems.pop() if stemmed[-1] else rows[0].id)
    while True:  # first-row ids are unique (the contract), so renaming stems back to them ends the collisions
        seen: dict[str, int] = {}
        for name in names:
            seen[name] = seen.get(name, 0) + 1
        clash = [i for i, name in enumerate(names) if seen[name] > 1 and stemmed[i]]
        if not clash:
            break
        for i in clash:
            names[i], stemmed[i] = members[i][0].id, False
    return [Example(name, rows[0].source, rows[0].summary, tuple(r.summary for r in rows))
            for name, rows in zip(names, members)]


def read_split(ref: DatasetRef, split: str, limit: int | None = None) -> Checked:
    """The first ``limit`` usable examples of ``split`` (all when None) under the data contract, and what it dropped.
    With a limit the loader is asked for ``limit`` rows, and for more while drops leave the split short."""
    loader = LOADERS.get(ref.source)
    want = limit
    while True:
        rows = loader(ref, split, want)
        checked = check_rows(rows, ref, split, limit)
        if want is None or len(checked.examples) >= limit or len(rows) < want:
            return checked
        want *= 2


def load_split(ref: DatasetRef, split: str, limit: int | None = None) -> list[Example]:
    """The first ``limit`` usable examples of ``split``, mapped through the dataset's column names."""
    return read_split(ref, split, limit).examples
