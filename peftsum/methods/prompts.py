"""Shared parameters of the virtual-token methods (prefix, prompt and P-tuning)."""

from dataclasses import dataclass

from peftsum.spec.fields import setting


@dataclass(frozen=True)
class VirtualTokenParams:
    num_virtual_tokens: int = setting(20, "virtual tokens prepended to every input", kind=int, lo=1, hi=512)
