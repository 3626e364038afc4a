"""Prompt templates per model family and text kind.

Causal models see the study's instruction format and generate after ``### Summary:``; seq2seq models get the T5
task prefix. ``none`` cells use the same prompt, so the baseline differs only in training.
"""

from __future__ import annotations

# kind -> (causal template, seq2seq template); {source} is replaced by the (possibly truncated) source text.
TEMPLATES: dict[str, tuple[str, str]] = {
    "dialogue": ("Summarize the following conversation.\n\n### Conversation:\n{source}\n\n### Summary:\n",
                 "summarize: {source}"),
    "news": ("Summarize the following article.\n\n### Article:\n{source}\n\n### Summary:\n",
             "summarize: {source}"),
}


def template(kind: str, family: str) -> str:
    causal, seq2seq = TEMPLATES[kind]
    return causal if family == "causal" else seq2seq


def split_template(kind: str, family: str) -> tuple[str, str]:
    """(text before the source, text after it): lets the tokenizer truncate the source alone."""
    head, _, tail = template(kind, family).partition("{source}")
    return head, tail
