"""The lead baseline: no model, first k turns / sentences, one cell per dataset however many models."""

from __future__ import annotations

from peftsum.methods.lead import lead
from peftsum.spec import parse_grid


def test_lead_takes_first_turns_or_sentences() -> None:
    dialogue = "#Person1#: Hi there.\n#Person2#: Hello! How are you?\n#Person1#: Fine."
    assert lead(dialogue, "dialogue", 2) == "#Person1#: Hi there.\n#Person2#: Hello! How are you?"
    article = "Acme opened a plant. It hired 50 people! Officials cheered? Shares rose."
    assert lead(article, "news", 3) == "Acme opened a plant.\nIt hired 50 people!\nOfficials cheered?"
    assert lead(article, "news", 10).count("\n") == 3


def test_lead_is_one_model_free_cell_per_dataset() -> None:
    grid = parse_grid("name: t\naxes: {model: [tiny-gpt2, tiny-t5, gpt2], method: [lead, full], "
                      "dataset: [synthetic-dialogsum, synthetic-news]}\nmethods: {lead: {type: lead, k: 2}}\n")
    leads = [c for c in grid.cells if c.method.type == "lead"]
    assert sorted(c.dataset.name for c in leads) == ["synthetic-dialogsum", "synthetic-news"]
    assert all(c.model is None and c.method.params == {"k": 2} for c in leads)
    assert len(grid.cells) == 2 + 3 * 2
