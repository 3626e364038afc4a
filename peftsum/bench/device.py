"""What the bench reads of the device it measures: its name, its dense bf16 peak (for MFU), its memory peak."""

from __future__ import annotations

from typing import Any

# Dense bf16 tensor-core peaks (FLOP/s) by device-name substring; MFU is null for anything else (CPUs included).
PEAK_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,
    "GH200": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
    "RTX 4090": 165e12,
    "B200": 2250e12,
}

def device_name(device: Any) -> str:
    import platform

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def peak_flops(name: str) -> float | None:
    for key, flops in PEAK_FLOPS.items():
        if key in name:
            return flops
    return None


def reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device: Any) -> int:
    import torch

    from peftsum.resources import peak_rss_bytes

    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else peak_rss_bytes()


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


