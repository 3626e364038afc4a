"""``peftsum bench``: how fast a grid cell trains and generates, fast path against the study's configuration.

Every number comes from the project's own code path: the settings are a one-cell grid resolved with the ``fast`` or
``seed-paper`` preset (``peftsum.spec``), the model is set up by the cell's own ``peftsum.prepare.prepare`` (the
auto settings resolved for the device by ``peftsum.train.resolve_runtime``, batches planned by
``peftsum.train_plan.make_plan``, the method applied), the generation cache is resolved by
``peftsum.generate.resolve_cache``, and the model trains in ``peftsum.train.train`` and generates in
``peftsum.generate.generate``. Only the data and the weights are synthetic:

- **Data.** Token ids drawn at random, with source and summary *lengths* drawn from log-normal fits of DialogSum
  and CNN/DailyMail under the GPT-2 tokenizer (``SPREADS``): the length spread is what decides padding waste and
  batch shapes. Sources are truncated to the model's context as evaluation does. Throughput does not depend on the
  token values.
- **Models.** On CUDA: random-init models of the real architectures (GPT-2 small, T5-small) built from their
  configs (``peftsum.models.load.random_init``; nothing is downloaded). On CPU: the built-in tiny models.

Reported per training case: real (non-padding) tokens/s in the steady state (after ``warmup`` optimizer steps and
after the last step that compiled a graph; the warm-up is reported apart), padding ratio, distinct batch shapes, MFU
(6 · parameters · tokens/s against the device's dense bf16 peak; null where the peak is unknown, e.g. on CPU),
peak memory (CUDA allocator peak; on CPU the process's peak RSS, which only grows), energy per million tokens
(NVML; null without it), and the ratio to the naive (``seed-paper``) case and to full fine-tuning of the same
model. Generation: new tokens/s of greedy decoding, naive against fast. The last line printed is one JSON object
(the ``summary``); the whole report goes to ``--out``.

The package: ``cases`` (what a run measures), ``synthetic`` (its data), ``device`` (peaks and memory),
``measure`` (one case), ``throughput`` (every case and the report), ``quality`` (``--part quality``), ``cli`` (the
``peftsum bench`` arguments and entry). The names below are what ``peftsum.cli`` and the tests use.
"""

from peftsum.bench.cases import SPREADS, plan_for
from peftsum.bench.cli import EPILOG, add_arguments, main
from peftsum.bench.synthetic import lengths, synthetic_features
from peftsum.bench.throughput import assemble

__all__ = ["EPILOG", "SPREADS", "add_arguments", "assemble", "lengths", "main", "plan_for", "synthetic_features"]
