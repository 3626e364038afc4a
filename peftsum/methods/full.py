"""Full fine-tuning: every weight trains."""

from peftsum.methods.base import MethodDef


def _apply(model, params, ctx):
    for p in model.parameters():
        p.requires_grad_(True)
    return model


METHOD = MethodDef(name="full", doc="full fine-tuning: every weight trains", apply=_apply)
