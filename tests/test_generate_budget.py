"""How many padded tokens one generation batch gets: the CPU budget, and on CUDA as many as the free memory holds
(the real GPT-2 / T5 configs, no weights), never past the measured cap."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from transformers import GPT2Config, T5Config

from peftsum.generate import CUDA_BUDGET_CAP, MEMORY_SHARE, bytes_per_token, generation_budget

GIB = 1 << 30
CUDA = torch.device("cuda")


class _Model:
    """What generation_budget reads of a model: its config and its weights' dtype."""

    def __init__(self, config: object, dtype: torch.dtype = torch.float32) -> None:
        self.config, self.weight = config, torch.empty(0, dtype=dtype)

    def parameters(self) -> Iterator[torch.Tensor]:
        return iter([self.weight])


def test_cpu_budget_is_twice_the_training_budget() -> None:
    model = _Model(GPT2Config())
    assert generation_budget(16384, model, torch.device("cpu")) == 32768
    assert generation_budget(None) == 32768 and generation_budget(768) == 1536


def test_kv_bytes_follow_the_architecture() -> None:
    small, xl = GPT2Config(), GPT2Config(n_layer=48, n_embd=1600, n_head=25)
    assert bytes_per_token(small) == (2 * 12 * 768 + 4 * 768) * 2  # K and V per layer in bf16, + MLP activation
    assert bytes_per_token(small, 4) == 2 * bytes_per_token(small)
    assert bytes_per_token(xl) > 6 * bytes_per_token(small)
    t5_small = T5Config(d_model=512, num_layers=6, num_heads=8, d_kv=64, d_ff=2048)
    assert bytes_per_token(t5_small) == (2 * 6 * 512 + 2048) * 2
    t5_3b = T5Config(d_model=1024, num_layers=24, num_heads=32, d_kv=128, d_ff=16384)  # attention 4x d_model wide
    assert bytes_per_token(t5_3b) == (2 * 24 * 4096 + 16384) * 2


def test_cuda_budget_grows_with_free_memory_up_to_the_cap() -> None:
    small, xl = _Model(GPT2Config()), _Model(GPT2Config(n_layer=48, n_embd=1600))
    assert generation_budget(16384, small, CUDA, free_bytes=70 * GIB) == CUDA_BUDGET_CAP  # GPT-2 small, an H100
    big = generation_budget(16384, xl, CUDA, free_bytes=80 * GIB)  # GPT-2 XL (fp32 weights): memory decides
    assert 32768 < big < CUDA_BUDGET_CAP
    assert big * bytes_per_token(xl.config, 4) <= MEMORY_SHARE * 80 * GIB  # fp32 weights: a 4-byte static cache
    tight = generation_budget(16384, xl, CUDA, free_bytes=2 * GIB)  # a nearly full card: below the CPU default
    assert 1024 <= tight < 32768
    assert generation_budget(10**5, small, CUDA, free_bytes=70 * GIB) == 2 * 10**5  # a larger CPU budget that fits


def test_beams_and_dtype_shrink_the_budget() -> None:
    medium = GPT2Config(n_layer=24, n_embd=1024)
    greedy = generation_budget(16384, _Model(medium, torch.bfloat16), CUDA, free_bytes=20 * GIB)
    beams = generation_budget(16384, _Model(medium, torch.bfloat16), CUDA, num_beams=4, free_bytes=20 * GIB)
    fp32 = generation_budget(16384, _Model(medium), CUDA, free_bytes=20 * GIB)
    assert beams * 4 * bytes_per_token(medium, 2) <= MEMORY_SHARE * 20 * GIB
    assert beams < fp32 < greedy <= CUDA_BUDGET_CAP
