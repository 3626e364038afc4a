"""Fine-tuning methods. Adding one = a module here defining ``METHOD`` + one line below.

Entries are lazy, and method modules import peft only inside ``apply``, so this registry is safe to read from the
spec layer and the launcher.
"""

from peftsum.methods.base import MethodDef
from peftsum.registry import Registry

METHODS: Registry[MethodDef] = Registry("method")
for _name in ("full", "none", "lora", "dora", "ia3", "prefix", "prompt", "ptuning", "adalora", "loha", "lokr",
              "vera", "bitfit", "lead"):
    METHODS.register(_name, f"peftsum.methods.{_name}:METHOD")
