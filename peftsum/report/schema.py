"""The shape of everything the report reads from the store, checked in one place (``peftsum.report.collect``) before
any table or figure sees it.

A cell's files are the user's (or a crashed writer's, or a hostile user's): a result.json that is a list, lacks a
key, holds a string where a number goes, or a NaN (which JSON cannot even carry into results.json) must make that
cell "not done" with the reason, never crash the report of the whole grid half-way through a table. So each
document is checked against the keys and types the report uses (``peftsum/result.py`` documents the full schema;
keys the report does not read are not required, so results of schema_version 1 still pass) and every number
anywhere in it must be finite. The checks raise :class:`Malformed` with the path of the first problem
(``metrics.rougeL.value: nan is not a finite number``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from peftsum.scoring import CORPUS_BLEU, ROUGE_KEYS

Check = Callable[[Any, str], None]


class Malformed(ValueError):
    """A document the report cannot use; the message names the field (``train.seconds: 'fast' is not a number``)."""


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + "…"


def _fail(path: str, value: Any, why: str) -> None:
    raise Malformed(f"{path or 'top level'}: {_show(value)} {why}")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def number(lo: float | None = None) -> Check:
    def check(v: Any, path: str) -> None:
        if not _is_num(v) or not math.isfinite(v):
            _fail(path, v, "is not a finite number")
        if lo is not None and v < lo:
            _fail(path, v, f"is below {lo:g}")
    return check


def integer(lo: int | None = None) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, int) or isinstance(v, bool):
            _fail(path, v, "is not an integer")
        if lo is not None and v < lo:
            _fail(path, v, f"is below {lo}")
    return check


def text(v: Any, path: str) -> None:
    if not isinstance(v, str):
        _fail(path, v, "is not a string")


def one_of(choices: Iterable[str]) -> Check:
    allowed = tuple(choices)

    def check(v: Any, path: str) -> None:
        if v not in allowed:
            _fail(path, v, f"is not one of {', '.join(allowed)}")
    return check


def either(*checks: Check, what: str) -> Check:
    def check(v: Any, path: str) -> None:
        for c in checks:
            try:
                c(v, path)
                return
            except Malformed:
                pass
        _fail(path, v, f"is not {what}")
    return check


def optional(inner: Check) -> Check:
    """``inner`` or null."""
    def check(v: Any, path: str) -> None:
        if v is not None:
            inner(v, path)
    return check


def seq(item: Check, length: int | None = None) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, list):
            _fail(path, v, "is not a list")
        if length is not None and len(v) != length:
            _fail(path, v, f"has {len(v)} items, not {length}")
        for i, x in enumerate(v):
            item(x, f"{path}[{i}]")
    return check


def obj(required: dict[str, Check], optional_keys: dict[str, Check] | None = None) -> Check:
    """A JSON object with ``required`` keys and, where present, ``optional_keys``; other keys are not looked at."""
    def check(v: Any, path: str) -> None:
        if not isinstance(v, dict):
            _fail(path, v, "is not an object")
        for key, c in required.items():
            where = f"{path}.{key}" if path else key
            if key not in v:
                raise Malformed(f"{where}: missing")
            c(v[key], where)
        for key, c in (optional_keys or {}).items():
            if key in v:
                c(v[key], f"{path}.{key}" if path else key)
    return check


def finite_everywhere(doc: Any, path: str = "") -> None:
    """Every number in ``doc`` is finite (JSON has no NaN or Infinity: results.json must stay valid JSON).
    Iterative, so a deeply nested document cannot exhaust the stack."""
    stack = [(doc, path)]
    while stack:
        v, where = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            _fail(where, v, "is not a finite number")
        elif isinstance(v, dict):
            stack.extend((x, f"{where}.{k}" if where else str(k)) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, f"{where}[{i}]") for i, x in enumerate(v))


_cost = optional(number(0))  # seconds, bytes, joules, parameters: unknown (null) or >= 0 (the plots take log10)
_loss = optional(number())
SCORE = obj({"value": number(), "ci95": seq(number(), 2)})
SPEC = obj({"method": obj({"name": text, "type": text}), "dataset": obj({"name": text}), "seed": integer()},
           {"model": optional(obj({"name": text}))})
EVALUATION = obj({"epoch": number(0), "train_loss": _loss, "val_loss": _loss})
_RESULT = obj({
    "cell_id": text,
    "spec": SPEC,
    "metrics": obj({"n": integer(0), "bleu": SCORE, "bleu_precisions": seq(SCORE, 4), "brevity_penalty": SCORE,
                    **{k: SCORE for k in ROUGE_KEYS}}, {"length_ratio": optional(SCORE)}),
    "train": obj({"seconds": _cost, "tokens_per_s": _cost, "padding_ratio": _cost, "final_train_loss": _loss},
                 {"eval_loss": _loss, "test_loss": _loss, "best_epoch": optional(number(0)),
                  "history": seq(EVALUATION)}),
    "resources": obj({k: _cost for k in ("gpu_peak_bytes", "ram_peak_bytes", "energy_joules", "trainable_params",
                                         "total_params", "adapter_bytes")},
                     {k: _cost for k in ("gpu_nvml_peak_bytes", "wall_seconds", "disk_peak_bytes")}),
}, {
    "metric_profile": optional(obj({}, {"name": one_of(CORPUS_BLEU)})),
    "data": optional(obj({}, {"eval_ids_sha256": optional(text), "train_ids_sha256": optional(text)})),
})


def check_result(doc: Any, cell_id: str) -> dict[str, Any]:
    """``doc`` if it is a result.json of cell ``cell_id`` the report can use, else :class:`Malformed`."""
    _RESULT(doc, "")
    finite_everywhere(doc)
    if doc["cell_id"] != cell_id:
        _fail("cell_id", doc["cell_id"], f"is not this cell's id ({cell_id})")
    train = doc["train"]
    history, best = train.get("history") or [], train.get("best_epoch")
    if history and best is not None and all(h["epoch"] != best for h in history):
        _fail("train.best_epoch", best, "is the epoch of no train.history row")
    return doc


def _length_stats(v: Any, path: str) -> None:
    obj({"n": integer(0)})(v, path)
    if v["n"]:
        obj({k: number() for k in ("mean", "min", "max", "p5", "p25", "p50", "p75", "p95")},
            {"p99": number(), "histogram": obj({"counts": seq(number(0)), "edges": seq(number())})})(v, path)
        h = v.get("histogram")
        if h is not None and h["counts"] and len(h["edges"]) != len(h["counts"]) + 1:
            _fail(f"{path}.histogram.edges", h["edges"], f"has {len(h['edges'])} items for "
                                                          f"{len(h['counts'])} counts (needs one more)")


_EDA = obj({"tokenizer": text, "source": _length_stats, "summary": _length_stats, "merged": _length_stats},
           {"split": text, "source_token_budget": _cost, "dropped_share": number(0), "kept": _cost,
            "dropped": _cost})


def check_eda(doc: Any) -> dict[str, Any]:
    """``doc`` if it is an eda.json the report can use, else :class:`Malformed`."""
    _EDA(doc, "")
    finite_everywhere(doc)
    return doc


_ID = either(text, integer(), what="a string or an integer")
_BLEU_STATS = obj({"sys_len": number(0), "ref_len": number(0), "correct": seq(number(0), 4),
                   "total": seq(number(0), 4)})
_ROW = obj({"id": _ID, "source": text, "reference": text, "prediction": text},
           {"references": optional(seq(text)), "bleu_stats": _BLEU_STATS, **{k: number() for k in ROUGE_KEYS}})


def _finite(v: Any) -> bool:
    return (type(v) is float and v - v == 0.0) or type(v) is int  # exact types: a bool is no number


def _plain_row(row: Any) -> bool:
    """The common row, recognised fast (predictions are most of what the report reads): every check of ``_ROW``,
    without building paths. False means "look closer", not "malformed"."""
    if type(row) is not dict or type(row.get("id")) not in (str, int) or row.get("references") is not None:
        return False
    if any(type(row.get(k)) is not str for k in ("source", "reference", "prediction")):
        return False
    if not all(_finite(row[k]) for k in ROUGE_KEYS if k in row):
        return False
    st = row.get("bleu_stats")
    if st is None:
        return "bleu_stats" not in row
    return (type(st) is dict and _finite(st.get("sys_len")) and _finite(st.get("ref_len"))
            and type(st.get("correct")) is list and type(st.get("total")) is list
            and len(st["correct"]) == len(st["total"]) == 4
            and all(_finite(x) and x >= 0 for x in (st["sys_len"], st["ref_len"], *st["correct"], *st["total"])))


def check_predictions(rows: list[Any]) -> list[dict[str, Any]]:
    """``rows`` (predictions.jsonl, one JSON value per line) if every row is usable, else :class:`Malformed`
    naming the first bad line."""
    for i, row in enumerate(rows):
        if not _plain_row(row):
            _ROW(row, f"line {i + 1}")
    return rows


_STATUS = obj({}, {"state": optional(text), "reason": optional(text), "progress": optional(number())})


def check_status(doc: Any) -> dict[str, Any]:
    """``doc`` if it is a status.json the report can show, else :class:`Malformed`."""
    _STATUS(doc, "")
    return doc


def check_spec(doc: Any) -> dict[str, Any]:
    """A cell spec (grid.json's or spec.json) with the axes the report labels cells by, else :class:`Malformed`."""
    SPEC(doc, "")
    return doc
