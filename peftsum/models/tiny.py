"""``tiny-gpt2`` and ``tiny-t5``: small *pretrained* models of the real architectures, shipped with peftsum.

Why: nothing can be downloaded here, yet the quickstart and tests must run the real code path, and the methods must
have something to adapt (an adapter on a random-init base learns next to nothing). Each model is a byte-level BPE
tokenizer trained on the synthetic corpus (names and places are single tokens) and a small GPT-2 or T5 pretrained
by ``peftsum.models.pretrain`` (causal LM / span corruption on an unpaired corpus). The build is deterministic (one
thread, fixed seeds, deterministic kernels); its files are committed under ``peftsum/models/weights/<name>/`` and
checked against ``DIGESTS`` before use. Rebuild with ``bash scripts/build-tiny-models.sh`` (about 9 minutes).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from peftsum.models.pretrain import SENTINELS, Recipe
from peftsum.spec.catalog import TINY_VERSION as VERSION  # the cell ids include it

VOCAB_SIZE = 2048
SPECIALS = ["<pad>", "</s>", "<unk>", *SENTINELS]  # ids 0, 1, 2, then the span-corruption sentinels
# DialogSum's speaker tags as whole tokens, with and without the space before them (BPE alone splits "#Person1#"
# into 4 tokens, a pattern 2-layer models reproduce only when every weight trains: docs/models.md).
SPEAKERS = [f"{space}#Person{i}#" for i in range(1, 10) for space in ("", " ")]
WEIGHTS = Path(__file__).parent / "weights"
# Why each objective is there, with what it changed on the quickstart and the showcase: docs/models.md. In short:
# the copy objectives (a quarter of GPT-2's documents read twice, BART-style denoising for T5) teach carrying a name
# or a place from the input into the output, which span corruption and plain language modelling on short documents
# do not; prefix LM makes T5's decoder a writer of running text.
RECIPES = {
    "tiny-gpt2": Recipe("causal", epochs=4, learning_rate=3e-3, repeat=0.25),
    "tiny-t5": Recipe("span_corruption", epochs=8, learning_rate=5e-3, documents=3000, prefix_lm=0.35, denoise=0.35,
                      span_mode=True),
}
# sha256 over the shipped files (names and bytes, sorted by name): what `build` gives on any machine.
DIGESTS = {
    "tiny-gpt2": "89103c9e52c091c8d062e5fb4e3f58436534a6395fe859ba8700fd5a9f0fd617",
    "tiny-t5": "971d651083ef5c2417a9684cd9a8f0b783f70ad04f0520dc82804972783539ca",
}


def _tokenizer_corpus() -> list[str]:
    from peftsum.data.prompts import TEMPLATES
    from peftsum.data.synthetic import generate

    texts = []
    for name, src, tgt in (("dialogsum", "dialogue", "summary"), ("news", "article", "highlights")):
        for ex in generate(name, "train", 3000):
            texts += [ex[src], ex[tgt]]
    texts += [t for pair in TEMPLATES.values() for t in pair] * 50
    return texts


def _build_tokenizer(out: Path) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(SPEAKERS),
        special_tokens=SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_tokenizer_corpus(), trainer=trainer)
    tok.add_tokens([AddedToken(t, normalized=False) for t in SPEAKERS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=SENTINELS,
        model_max_length=512,
    )
    fast.save_pretrained(out)


def _init_model(name: str):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    if name == "tiny-gpt2":
        return GPT2LMHeadModel(
            GPT2Config(
                vocab_size=VOCAB_SIZE,
                n_positions=512,
                n_embd=128,
                n_layer=2,
                n_head=4,
                bos_token_id=1,
                eos_token_id=1,
                pad_token_id=0,
            )
        )
    return T5ForConditionalGeneration(
        T5Config(
            vocab_size=VOCAB_SIZE,
            d_model=128,
            d_ff=256,
            d_kv=32,
            num_heads=4,
            num_layers=2,
            num_decoder_layers=2,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
            feed_forward_proj="relu",
            tie_word_embeddings=True,
        )
    )


def digest(folder: Path) -> str:
    """sha256 over the files of a saved model (names and bytes, sorted by name)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def build(name: str, out: Path, log=print) -> str:
    """Build tiny model ``name`` from nothing into ``out`` (tokenizer, init, pretraining); returns its digest.

    Deterministic: one CPU thread, deterministic kernels, fixed seeds — the same digest on every build.
    """
    import torch
    from transformers import AutoTokenizer

    from peftsum.models.pretrain import pretrain

    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out.mkdir(parents=True, exist_ok=True)
    _build_tokenizer(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = _init_model(name)
    t0 = time.monotonic()
    losses = pretrain(
        model,
        tokenizer,
        RECIPES[name],
        progress=lambda step, total, loss: log(
            f"{name}: step {step}/{total} loss {loss:.3f} ({time.monotonic() - t0:.0f} s)"
        ),
    )
    log(f"{name}: pretrained in {len(losses)} steps, loss {losses[0]:.2f} -> {losses[-1]:.2f}")
    model.save_pretrained(out)
    return digest(out)


@functools.cache
def ensure_tiny(name: str) -> Path:
    """Folder of the shipped tiny model ``name`` (``tiny-gpt2`` or ``tiny-gpt2@v3``), after checking its digest.

    A version other than this peftsum's is refused: its weights are not shipped here.
    """
    name, _, version = name.partition("@")
    if version and version != VERSION:
        raise ValueError(
            f"the cell asks for builtin:{name}@{version}, but this peftsum ships {name}@{VERSION}; "
            f"re-expand the grid with this version (new cell ids) or use the peftsum that made it"
        )
    if name not in RECIPES:
        raise ValueError(f"no built-in model {name!r}; built-in: {', '.join(RECIPES)}")
    folder = WEIGHTS / name
    found = digest(folder) if folder.is_dir() else "missing"
    if found != DIGESTS[name]:
        raise RuntimeError(
            f"{folder}: the shipped {name} files do not match their committed digest "
            f"(found {found}, expected {DIGESTS[name]}); restore them from git or rebuild with "
            f"bash scripts/build-tiny-models.sh"
        )
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m peftsum.models.tiny",
        description="Build a tiny model from nothing and print its digest (compare with DIGESTS).",
    )
    parser.add_argument("--model", choices=sorted(RECIPES), required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder to write (replaced)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix=f".{args.model}-", dir=args.out.parent if args.out.parent.exists() else None))
    try:
        found = build(args.model, tmp, log=lambda line: print(line, file=sys.stderr, flush=True))
        shutil.rmtree(args.out, ignore_errors=True)
        shutil.move(str(tmp), args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.model} {found}")
    return 0 if found == DIGESTS[args.model] else 1


if __name__ == "__main__":
    raise SystemExit(main())
