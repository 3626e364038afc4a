"""``peftsum bench --part quality``: the fast path's summaries against the naive path's, from real cells (trained,
generated and scored by ``peftsum.cell.run_cell``) compared with the paired bootstrap."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from peftsum.bench.cases import SCHEMA_VERSION
from peftsum.bench.device import device_name

# The quality check trains real cells on the synthetic task (tiny models that really learn, the quickstart's recipe).
# Both cells share every *learning* setting below, so they differ only in what the preset decides about execution:
# the fast path's length-grouped token-budget batches with a padding cap, fused AdamW, no activation recomputation
# (and on CUDA bf16 and the static-cache decode) against the seed-paper preset's random batches padded to the
# longest, gradient checkpointing, fp32, unfused AdamW and batch-of-20 dynamic-cache generation. The seed-paper
# learning recipe itself (lr 5e-5, 8 epochs) would barely move a 1M-parameter tiny model and compare nothing.
# Batches hold 6 examples on both sides (batch_tokens null): under one token budget the fast path packs ~37% more
# examples per step than padded random batches, so it would take fewer steps per epoch and compare step counts.
# Validation, best-epoch selection and the metric profile are what the study did, not how it executed: both sides
# take the last step's weights and the peftsum profile, so the paired ROUGE-L compares execution alone.
QUALITY_RECIPE: dict[str, Any] = {
    "train": {
        "epochs": 1.5,
        "learning_rate": 4.0e-3,
        "batch_size": 6,
        "batch_tokens": None,
        "warmup_ratio": 0.05,
        "weight_decay": 0.0,
        "lr_scheduler": "linear",
        "grad_accum": 1,
        "max_grad_norm": 1.0,
        "eval_every": "off",
        "select_best": "off",
    },
    "eval": {"limit": 150, "max_new_tokens": 48, "metric_profile": "peftsum"},
    "data": {"train_limit": 1500},
}
QUALITY_MODELS = {"tiny-gpt2": {}, "tiny-t5": {"train": {"epochs": 1.0, "learning_rate": 2.0e-3}}}
QUALITY_SEEDS = (42, 43, 44)  # one seed's ROUGE-L moves with any change to the batches (tiny-t5: 0.17-0.31)
QUALITY_GRID = "bench-quality"


def quality_cells(models: list[str], seeds: tuple[int, ...]) -> dict[str, dict[str, list[Any]]]:
    """{model: {"fast": [Cell per seed], "naive": [...]}}: one grid under the fast and the seed-paper preset."""
    from peftsum.spec import parse_grid

    out: dict[str, dict[str, list[Any]]] = {m: {"fast": [], "naive": []} for m in models}
    for config, preset in (("fast", "fast"), ("naive", "seed-paper")):
        doc = {
            "name": QUALITY_GRID,
            "defaults": {"preset": preset, **QUALITY_RECIPE},
            "models": {m: QUALITY_MODELS[m] for m in models if QUALITY_MODELS.get(m)},
            "axes": {"model": models, "method": ["full"], "dataset": ["synthetic-dialogsum"], "seed": list(seeds)},
        }
        for cell in parse_grid(json.dumps(doc)).cells:
            out[cell.model.name][config].append(cell)
    return out


def run_quality(models: list[str], seeds: tuple[int, ...], store_uri: str, log: Any = None) -> list[dict[str, Any]]:
    """Run each model's fast and naive cells (one per seed) into ``store_uri`` — done cells are reused: same spec,
    same id — and compare ROUGE-L with the paired bootstrap over every (seed, test example) pair.

    Pooling the seeds puts part of the training noise into the CI, which one seed's example resampling misses.
    ``no_worse`` holds when the fast path is not significantly worse: the upper end of the 95% CI of
    ROUGE-L(fast) − ROUGE-L(naive) is ≥ 0.
    """
    from peftsum.cell import run_cell
    from peftsum.compare import paired_bootstrap
    from peftsum.result import environment
    from peftsum.store import layout, open_store

    store = open_store(store_uri)
    head = environment()["git_sha"]

    def run(model: str, config: str, cell: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        layout.write_json(store, layout.cell_key(QUALITY_GRID, cell.cell_id, "spec.json"), cell.to_dict())
        t0 = time.perf_counter()
        code = run_cell(store, QUALITY_GRID, cell)
        manifest = layout.done_manifest(store, QUALITY_GRID, cell.cell_id)
        if code != 0 or manifest is None:
            raise RuntimeError(
                f"quality cell {model}/{config} seed {cell.seed} ({cell.cell_id}) failed with exit code {code}"
            )
        result = layout.read_json(store, layout.result_key(QUALITY_GRID, cell.cell_id, manifest))
        preds = [
            json.loads(line)
            for line in store.read_bytes(
                layout.result_key(QUALITY_GRID, cell.cell_id, manifest, "predictions.jsonl")
            ).splitlines()
        ]
        made_by = result["provenance"]["git_sha"]
        if made_by != head and log is not None:  # the cell id does not cover the training code itself
            print(
                f"[bench] quality {model}/{config} seed {cell.seed}: reusing a result made by commit {made_by}, "
                f"not {head}; give a new --quality-store to measure this code",
                file=log,
                flush=True,
            )
        if log is not None:
            print(
                f"[bench] quality {model}/{config} seed {cell.seed}: ROUGE-L "
                f"{result['metrics']['rougeL']['value']:.4f} ({time.perf_counter() - t0:.1f}s)",
                file=log,
                flush=True,
            )
        return result, [{**p, "id": f"{cell.seed}/{p['id']}"} for p in preds]

    def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
        def mean(key: str) -> float:
            return sum(r["train"][key] for r in results) / len(results)

        return {
            "rougeL": sum(r["metrics"]["rougeL"]["value"] for r in results) / len(results),
            "per_seed": [
                {
                    "seed": r["spec"]["seed"],
                    "cell_id": r["cell_id"],
                    "git_sha": r["provenance"]["git_sha"],
                    "rougeL": r["metrics"]["rougeL"]["value"],
                    "rougeL_ci95": r["metrics"]["rougeL"]["ci95"],
                    "bleu": r["metrics"]["bleu"]["value"],
                    "test_loss": r["train"]["test_loss"],
                    "steps": r["train"]["steps"],
                }
                for r in results
            ],
            "preset": results[0]["spec"]["preset"],
            "test_loss": mean("test_loss"),
            "padding_ratio": mean("padding_ratio"),
            "train_seconds": mean("seconds"),
        }

    rows = []
    for model, configs in quality_cells(models, seeds).items():
        got = {config: [run(model, config, cell) for cell in cells] for config, cells in configs.items()}
        fast = [p for _, preds in got["fast"] for p in preds]
        naive = [p for _, preds in got["naive"] for p in preds]
        samples = got["fast"][0][0]["spec"]["eval"]["bootstrap_samples"]
        cmp = paired_bootstrap(fast, naive, "rougeL", samples=samples)
        rows.append(
            {
                "model": model,
                "seeds": list(seeds),
                "fast": summary([r for r, _ in got["fast"]]),
                "naive": summary([r for r, _ in got["naive"]]),
                "pairs": cmp["n"],
                "diff": cmp["diff"],
                "diff_ci95": cmp["ci95"],
                "p_fast_better": cmp["p_a_better"],
                "no_worse": cmp["ci95"][1] >= 0,
            }
        )
    return rows


def quality_report(device: Any, quick: bool, store_uri: str) -> dict[str, Any]:
    """``--part quality``: the fast/naive cells (tiny-gpt2 and tiny-t5, three seeds; ``quick``: tiny-gpt2, one seed)
    and their verdict."""
    rows = run_quality(
        ["tiny-gpt2"] if quick else list(QUALITY_MODELS),
        QUALITY_SEEDS[:1] if quick else QUALITY_SEEDS,
        store_uri,
        log=sys.stderr,
    )
    summary = {
        "device": device_name(device),
        "quality_no_worse": all(r["no_worse"] for r in rows),
        "quality": {
            r["model"]: {
                "fast_rougeL": r["fast"]["rougeL"],
                "naive_rougeL": r["naive"]["rougeL"],
                "diff": r["diff"],
                "diff_ci95": r["diff_ci95"],
            }
            for r in rows
        },
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "device": summary["device"],
        "store": store_uri,
        "recipe": QUALITY_RECIPE,
        "quality": rows,
        "summary": summary,
    }


