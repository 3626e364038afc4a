"""The untrained baseline: the model as loaded, the same prompt, no training."""

from peftsum.methods.base import MethodDef

METHOD = MethodDef(name="none", doc="baseline: the model as downloaded, same prompt, no training", trains=False)
