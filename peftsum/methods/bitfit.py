"""BitFit (Ben Zaken et al., 2022): only the bias terms train."""

from peftsum.methods.base import MethodDef


def _apply(model, params, ctx):
    n_bias = 0
    for name, p in model.named_parameters():
        is_bias = name.endswith(".bias")
        p.requires_grad_(is_bias)
        n_bias += is_bias
    if n_bias == 0:
        raise ValueError("bitfit: the model has no bias parameters to train")
    return model


METHOD = MethodDef(
    name="bitfit", doc="BitFit: only bias terms train", apply=_apply,
    incompatible={"t5": "T5 has no bias terms (its linear layers are bias=False), so BitFit would train nothing"},
)
