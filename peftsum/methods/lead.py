"""The extractive floor: the first k sentences (news) or turns (dialogue) of the source, no model at all."""

from __future__ import annotations

from dataclasses import dataclass

from peftsum.methods.base import MethodDef
from peftsum.scoring import split_sentences
from peftsum.spec.fields import setting


@dataclass(frozen=True)
class LeadParams:
    k: int = setting(3, "sentences (news) or turns (dialogue) copied from the start of the source", lo=1, hi=100)


def lead(source: str, kind: str, k: int) -> str:
    """First ``k`` turns (one per line) of a dialogue, or first ``k`` sentences of an article (one per line)."""
    if kind == "dialogue":
        units = [line.strip() for line in source.splitlines() if line.strip()]
    else:
        units = split_sentences(source)
    return "\n".join(units[:k])


def _predict(sources: list[str], params: LeadParams, kind: str) -> list[str]:
    return [lead(s, kind, params.k) for s in sources]


METHOD = MethodDef(name="lead", doc="baseline: the first k sentences / turns of the source (no model)",
                   params=LeadParams, trains=False, predict=_predict)
