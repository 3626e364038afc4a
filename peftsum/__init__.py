"""peftsum: compare full fine-tuning and PEFT methods for summarisation, with their cost."""

__version__ = "0.1.0"
