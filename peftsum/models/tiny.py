"""``tiny-gpt2`` and ``tiny-t5``: small random-init models of the real architectures, built locally.

Why: nothing can be downloaded here, yet the quickstart and tests must run the real code path. The tokenizer is a
byte-level BPE trained on the synthetic corpus (so names and places are single tokens), the weights are a seeded
random init, and both are saved with ``save_pretrained`` into the cache, from where peftsum loads them exactly as
it loads a hub model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from peftsum.spec.catalog import TINY_VERSION as VERSION  # the cache path and the cell ids include it
from peftsum.store.fetch import cache_root

VOCAB_SIZE = 2048
SPECIALS = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2


def _corpus() -> list[str]:
    from peftsum.data.prompts import TEMPLATES
    from peftsum.data.synthetic import generate

    texts = []
    for name, src, tgt in (("dialogsum", "dialogue", "summary"), ("news", "article", "highlights")):
        for ex in generate(name, "train", 3000):
            texts += [ex[src], ex[tgt]]
    texts += [t for pair in TEMPLATES.values() for t in pair] * 50
    return texts


def _build_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=512)
    fast.save_pretrained(out)


def _build_model(name: str, out: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    if name == "tiny-gpt2":
        config = GPT2Config(vocab_size=VOCAB_SIZE, n_positions=512, n_embd=128, n_layer=2, n_head=4,
                            bos_token_id=1, eos_token_id=1, pad_token_id=0)
        model = GPT2LMHeadModel(config)
    else:
        config = T5Config(vocab_size=VOCAB_SIZE, d_model=128, d_ff=256, d_kv=32, num_heads=4, num_layers=2,
                          num_decoder_layers=2, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                          feed_forward_proj="relu", tie_word_embeddings=True)
        model = T5ForConditionalGeneration(config)
    model.save_pretrained(out)


def ensure_tiny(name: str) -> Path:
    """Path of the saved tiny model ``name`` (``tiny-gpt2`` or ``tiny-gpt2@v1``), building it on first use (safe
    under concurrent builders). A version other than this code's recipe is refused: it cannot be rebuilt."""
    name, _, version = name.partition("@")
    if version and version != VERSION:
        raise ValueError(f"the cell asks for builtin:{name}@{version}, but this peftsum builds {name}@{VERSION}; "
                         f"re-expand the grid with this version (new cell ids) or use the peftsum that made it")
    final = cache_root() / "models" / f"{name}-{VERSION}"
    if (final / "config.json").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{name}-"))
    try:
        _build_tokenizer(tmp)
        _build_model(name, tmp)
        try:
            os.rename(tmp, final)  # atomic; another process may have won the race, which is fine
        except OSError:
            if not (final / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
