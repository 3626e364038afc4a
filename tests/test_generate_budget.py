"""How many padded tokens one generation batch gets: the CPU budget, and on CUDA as many as the free memory holds
(the real GPT-2 / T5 configs, no weights), never past the measured cap."""

from __future__ import annotations

import torch
from transformers import GPT2Config, T5Config

from peftsum.generate import CUDA_BUDGET_CAP, MEMORY_SHARE, bytes_per_token, generation_budget

GIB = 1 << 30


class _Model:
    def __init__(self, config: object) -> None:
        self.config = config


def test_cpu_budget_is_twice_the_training_budget() -> None:
    model = _Model(GPT2Config())
    assert generation_budget(16384, model, torch.device("cpu")) == 32768
    assert generation_budget(None) == 32768 and generation_budget(768) == 1536


def test_kv_bytes_follow_the_architecture() -> None:
    small, xl = GPT2Config(), GPT2Config(n_layer=48, n_embd=1600, n_head=25)
    assert bytes_per_token(small) == 2 * 12 * 768 * 2 + 4 * 768 * 2  # K and V per layer in bf16, + MLP activation
    assert bytes_per_token(xl) > 6 * bytes_per_token(small)
    t5 = T5Config(d_model=512, num_layers=6, num_heads=8, d_kv=64)  # T5-small
    assert bytes_per_token(t5) == 2 * 6 * 512 * 2 + 4 * 512 * 2


def test_cuda_budget_grows_with_free_memory_up_to_the_cap() -> None:
    cuda, small, xl = torch.device("cuda"), _Model(GPT2Config()), _Model(GPT2Config(n_layer=48, n_embd=1600))
    assert generation_budget(16384, small, cuda, free_bytes=70 * GIB) == CUDA_BUDGET_CAP  # GPT-2 small, an H100
    big = generation_budget(16384, xl, cuda, free_bytes=40 * GIB)  # GPT-2 XL: memory decides
    assert 32768 < big < CUDA_BUDGET_CAP
    assert big * bytes_per_token(xl.config) <= MEMORY_SHARE * 40 * GIB
    tight = generation_budget(16384, xl, cuda, free_bytes=2 * GIB)  # a nearly full card: below the CPU default
    assert 1024 <= tight < 32768
