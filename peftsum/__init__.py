"""peftsum: compare full fine-tuning and PEFT methods for summarisation, with their cost."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``peftsum.load_trained``: the one call that loads what a cell trained (docs/result.md), imported lazily so
    ``import peftsum`` stays free of the ML stack."""
    if name == "load_trained":
        from peftsum.trained import load_trained

        return load_trained
    raise AttributeError(f"module 'peftsum' has no attribute {name!r}")
