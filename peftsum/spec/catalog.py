"""The models and datasets a cell names, and the names the grid may use for them, as plain data (no ML imports).

A :class:`ModelRef` holds a hub id (or a locally built tiny model), its architecture and context window; a
:class:`DatasetRef` where a dataset comes from and which columns hold source and summary. The catalogs below and the
grid's ``models:`` / ``datasets:`` entries build the same types, which every cell carries (every field hashed into
its id). Loaders live in peftsum.models / peftsum.data and are looked up by ``source`` there.
"""

from __future__ import annotations

from dataclasses import dataclass

# Architectures the compatibility table knows. "causal" / "seq2seq" are the generic fall-backs for a hub id or path
# declared in the grid's ``models:`` section whose architecture peftsum has no specific knowledge of.
ARCH_FAMILY = {"gpt2": "causal", "t5": "seq2seq", "bart": "seq2seq", "causal": "causal", "seq2seq": "seq2seq"}


# The recipe of the built-in tiny models (peftsum.models.tiny). It is part of their hub id, hence of every cell id:
# a new recipe gives new cells instead of silently reusing results of the old weights. Bump it with the recipe.
TINY_VERSION = "v3"


@dataclass(frozen=True)
class ModelRef:
    """A model as a cell names it: a catalog entry, or the grid's ``models:`` entry of that name."""

    name: str  # the grid's name for it (label only, but hashed so renames are visible)
    hub_id: str  # hub id, local path, s3:// URI, or "builtin:<name>@<version>" for the tiny models built locally
    revision: str | None  # branch/tag on the hub; None = default branch
    arch: str  # key of ARCH_FAMILY
    context: int  # tokens: n_positions for causal models, encoder input length for seq2seq

    @property
    def family(self) -> str:
        return ARCH_FAMILY[self.arch]

    @property
    def positions(self) -> int | None:
        """The most tokens the architecture can take where its positions are learned embeddings (GPT-2
        n_positions, BART max_position_embeddings): a longer input is an IndexError at run time. Known for the
        catalog's hub ids, whatever the name; None = relative positions (T5) or a hub id outside the catalog."""
        return POSITIONS.get(self.hub_id)


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as a cell names it: a catalog entry, or the grid's ``datasets:`` entry of that name."""

    name: str  # the grid's name for it
    source: str  # "hub" | "local" | "synthetic"
    id: str  # hub id, file/folder path, or synthetic generator name
    kind: str  # "dialogue" | "news": picks the prompt wording
    source_column: str
    summary_column: str
    config: str | None = None  # hub config name (cnn_dailymail: "3.0.0")
    revision: str | None = None  # hub branch/tag; None = default branch
    id_column: str | None = None  # column with a stable example id; None = the row index
    references: str = "per_row"  # eval.references: auto resolves to this (grouped: several summaries per source)


# (name, hub id, revision, arch, context): every catalog model is the hub's default branch.
MODELS: dict[str, ModelRef] = {m.name: m for m in (
    ModelRef("gpt2", "openai-community/gpt2", None, "gpt2", 1024),
    ModelRef("gpt2-medium", "openai-community/gpt2-medium", None, "gpt2", 1024),
    ModelRef("gpt2-large", "openai-community/gpt2-large", None, "gpt2", 1024),
    ModelRef("gpt2-xl", "openai-community/gpt2-xl", None, "gpt2", 1024),
    ModelRef("t5-small", "google-t5/t5-small", None, "t5", 512),
    ModelRef("t5-base", "google-t5/t5-base", None, "t5", 512),
    ModelRef("t5-large", "google-t5/t5-large", None, "t5", 512),
    ModelRef("flan-t5-small", "google/flan-t5-small", None, "t5", 512),
    ModelRef("flan-t5-base", "google/flan-t5-base", None, "t5", 512),
    ModelRef("flan-t5-large", "google/flan-t5-large", None, "t5", 512),
    ModelRef("bart-base", "facebook/bart-base", None, "bart", 1024),
    ModelRef("bart-large", "facebook/bart-large", None, "bart", 1024),
    # Pretrained on a synthetic corpus and shipped with peftsum (peftsum.models.tiny), loaded through the same
    # from_pretrained path as the hub models.
    ModelRef("tiny-gpt2", f"builtin:tiny-gpt2@{TINY_VERSION}", None, "gpt2", 512),
    ModelRef("tiny-t5", f"builtin:tiny-t5@{TINY_VERSION}", None, "t5", 512),
)}


# Architectures whose positions are learned embeddings: their window is a hard limit even where the hub id is not
# in the catalog (then the declared context is the limit). T5's relative positions have none.
LEARNED_POSITIONS = ("gpt2", "bart")
# Position counts of the catalog's hub ids, for a ``models:`` entry that declares one of them under another name: a
# catalog model with learned positions has a context of exactly its position count.
POSITIONS: dict[str, int] = {m.hub_id: m.context for m in MODELS.values() if m.arch in LEARNED_POSITIONS}

# What a causal prompt needs besides the source (peftsum.data.prompts; tests/spec keeps these in step): its fixed
# text in tokens (at most its UTF-8 bytes, for byte-level BPE tokenizers) and the fewest source tokens the encoder
# keeps (peftsum.data.features.source_budget: a window too small for the rest still gets 8 source tokens).
PROMPT_TEMPLATE_TOKENS = 80
MIN_SOURCE_TOKENS = 8


DATASETS: dict[str, DatasetRef] = {d.name: d for d in (
    # DialogSum's test set gives three human summaries per dialogue, as three rows with the same dialogue (the full
    # set: 1,500 test rows = 500 dialogues x 3): scored grouped, as the literature reports it.
    DatasetRef("dialogsum", "hub", "knkarthick/dialogsum", "dialogue", "dialogue", "summary", id_column="id",
               references="grouped"),
    # The copy the study names (about 2,000 / 500 / 500 rows; its 499 test rows are 167 dialogues x 3, ids
    # test_0_1 ... test_0_3), assumed to have the full set's columns (id, dialogue, summary).
    DatasetRef("dialogsum-test", "hub", "neil-code/dialogsum-test", "dialogue", "dialogue", "summary",
               id_column="id", references="grouped"),
    # Samsung/samsum is a loading script, which datasets >= 4 refuses to run; this is a plain-file copy with the
    # same columns. Override hub id / revision in the grid's ``datasets:`` section to pin another copy.
    DatasetRef("samsum", "hub", "knkarthick/samsum", "dialogue", "dialogue", "summary", id_column="id"),
    # Version 3.0.0 (non-anonymised, the one every recent paper uses; the study does not name its version).
    DatasetRef("cnn_dailymail", "hub", "abisee/cnn_dailymail", "news", "article", "highlights", config="3.0.0",
               id_column="id"),
    DatasetRef("synthetic-dialogsum", "synthetic", "dialogsum", "dialogue", "dialogue", "summary", id_column="id"),
    DatasetRef("synthetic-news", "synthetic", "news", "news", "article", "highlights", id_column="id"),
)}
