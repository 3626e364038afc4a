"""What a trained method generates is what its training optimised: greedy ``generate`` (the KV-cached path every
cell scores with) gives exactly the tokens that the training forward pass (labels passed, as ``peftsum.train`` does)
predicts when teacher-forced on them.

Reproduction of the bug this guards (peft 0.21, transformers 5): a prefix-tuned tiny-t5 generated exactly its base
model's tokens, because peft hands the prefix to generation as ``past_key_values`` while transformers 5 reads the
cache from ``cache``; prefix tuning was scored as the untrained model (ROUGE-L 0.143 = `none`'s 0.143). The same
mix-up made GPT-2 prompt tuning inject its virtual tokens again at every decoding step. Fixed in
``peftsum.methods.wrap``; without it tiny-gpt2-prefix, tiny-gpt2-prompt and tiny-t5-prefix fail here.
"""

from __future__ import annotations

import pytest
import torch

from peftsum.methods import METHODS
from peftsum.methods.base import MethodContext
from peftsum.models.load import load_model
from peftsum.spec import parse_grid
from peftsum.spec.catalog import MODELS
from peftsum.spec.fields import build

pytestmark = pytest.mark.slow  # runs cells or trains tiny models: scripts/test.sh --fast skips it

NEW_TOKENS = 8
PROMPT = "#Person1#: Hello, I want to book a table for Monday.\n#Person2#: Sure, for how many people?\nSummary:"
PAIRS = [(m, name) for m in ("tiny-gpt2", "tiny-t5") for name in METHODS.names()
         if METHODS.get(name).trains and MODELS[m].arch not in METHODS.get(name).incompatible]


def _training_path_argmax(model, input_ids: torch.Tensor, generated: list[int], causal: bool) -> list[int]:
    """Argmax of the logits training takes its loss from, teacher-forced on ``generated``: token i is what the
    trained model predicts after the prompt and ``generated[:i]``."""
    labels = torch.tensor([generated])
    if causal:
        ids = torch.cat([input_ids, labels], 1)
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                    labels=torch.cat([torch.full_like(input_ids, -100), labels], 1))
        logits = out.logits[0, -len(generated) - 1 : -1]  # the position before each generated token
    else:
        out = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), labels=labels)
        logits = out.logits[0, -len(generated) :]  # after any virtual tokens peft put before the decoder input
    return logits.argmax(-1).tolist()


@pytest.mark.parametrize(("model_name", "method_name"), PAIRS)
def test_cached_generation_equals_forward_greedy(model_name: str, method_name: str) -> None:
    info, method = MODELS[model_name], METHODS.get(method_name)
    cell = parse_grid(f"name: t\naxes: {{model: [{model_name}], method: [{method_name}], "
                      "dataset: [synthetic-dialogsum]}\n").cells[0]
    torch.manual_seed(0)
    model, tok = load_model(cell.model)
    params = build(method.params, {}, "params")
    model = method.apply(model, params, MethodContext(info.arch, info.family, 10)) if method.apply else model
    model.eval()
    # Move every trainable tensor away from its identity init, as training would; virtual-token tables (<= 64 rows)
    # need a large push to change what the model says.
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * (3.0 if p.ndim == 2 and p.shape[0] <= 64 else 0.3))
    causal = info.family == "causal"
    input_ids = tok([PROMPT], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                             max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
                             eos_token_id=None, pad_token_id=tok.pad_token_id)
        generated = (out[0, input_ids.shape[1]:] if causal else out[0, 1:]).tolist()
        assert generated == _training_path_argmax(model, input_ids, generated, causal)
