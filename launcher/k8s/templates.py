"""The Job templates (Jinja, in ``job_templates/``) rendered into data: YAML text is parsed at once, never passed on.

Every value reaches a template through :func:`yaml_json` (installed as the ``tojson`` filter): a JSON string is a
YAML double-quoted scalar, so a name with newlines, quotes, colons or ``{{ }}`` stays one scalar of one document.

Parsing is what rendering costs: ``yaml.load`` with libyaml's ``CSafeLoader`` (whose constructor is still Python)
takes ~2 ms per Job, Jinja ~0.3 ms. Rendering the 1,000 cell Jobs of ``bench/validate_k8s_bench.py``'s grid one by
one took 1.8-2.1 s of CPU (2026-12-06, 2 shared cores), most of the 3 s ``launcher validate --k8s`` may take, so a
grid's cell Jobs come from one :class:`Skeleton`: the template is rendered and parsed once with the values every Job
shares, and each Job's own values (name, labels, annotations, args) are put in place of stand-ins, through
:func:`yaml_json` too: 0.18-0.22 s for the 1,000, hashes included.
"""

from __future__ import annotations

import json
import os
import re
import site
import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml


def _templates_dir() -> Path:
    """``$PEFTSUM_JOB_TEMPLATES``, else the checkout's ``job_templates/``, else the copy a wheel installs under
    ``<prefix>/share/peftsum/job_templates`` (pyproject's data-files; the user base for ``pip install --user``)."""
    if os.environ.get("PEFTSUM_JOB_TEMPLATES"):
        return Path(os.environ["PEFTSUM_JOB_TEMPLATES"])
    checkout = Path(__file__).resolve().parents[2] / "job_templates"
    installed = [Path(base) / "share" / "peftsum" / "job_templates"
                 for base in (sysconfig.get_path("data"), site.getuserbase())]
    return next((p for p in [checkout, *installed] if p.is_dir()), checkout)


TEMPLATES = _templates_dir()
CELL_TEMPLATE = "cell-job.yaml.j2"
AGGREGATE_TEMPLATE = "aggregate-job.yaml.j2"
STAND_IN = "\0peftsum-value:"  # the stand-in for own value ``k`` is STAND_IN + k + "\0"
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_json(value: Any) -> str:
    """``value`` as JSON that YAML reads back unchanged.

    Non-ASCII text is kept as is (``\\uXXXX`` surrogate pairs for emoji are not valid YAML), except characters YAML
    cannot hold literally or would fold as line breaks (DEL, C1 controls, U+2028/2029, lone surrogates): those are
    escaped. JSON already escapes quotes, backslashes and control characters.
    """
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             autoescape=False, keep_trailing_newline=True)  # noqa: S701 - YAML, not HTML
    env.filters["tojson"] = yaml_json
    return env


def render_text(template: str, **values: Any) -> dict[str, Any]:
    """Render one template and ``yaml.safe_load`` it at once into exactly one object."""
    text = _env().get_template(template).render(**values)
    docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ValueError(f"{template} rendered {len(docs)} documents, expected one object")
    return docs[0]


class Skeleton:
    """``template`` rendered and parsed once with ``shared``; :meth:`fill` gives the object for one set of the
    ``own`` values, equal to ``render_text(template, **shared, **own_values)`` (tested).

    That holds because a template places each own value whole, through ``tojson``, and never tests or combines it:
    a stand-in found inside other text, as a key, or nowhere is refused (ValueError) rather than silently changed.
    """

    def __init__(self, template: str, shared: dict[str, Any], own: tuple[str, ...]) -> None:
        self.template = template
        parsed = render_text(template, **shared, **{key: f"{STAND_IN}{key}\0" for key in own})
        self.places: dict[str, list[tuple[str | int, ...]]] = {key: [] for key in own}
        self._find(parsed, ())
        if missing := [key for key, places in self.places.items() if not places]:
            raise ValueError(f"{template}: {missing} never placed whole; place values through tojson")
        self.text = json.dumps(parsed, ensure_ascii=False)

    def _find(self, node: Any, path: tuple[str | int, ...]) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for step, value in items:
            key = value[len(STAND_IN):-1] if isinstance(value, str) and STAND_IN in value else None
            if (isinstance(step, str) and STAND_IN in step) or (key is not None and (
                    key not in self.places or value != f"{STAND_IN}{key}\0")):
                raise ValueError(f"{self.template}: a value was combined with other text; place values whole, "
                                 f"through tojson")
            if key is not None:
                self.places[key].append((*path, step))
            else:
                self._find(value, (*path, step))

    def fill(self, **own: Any) -> dict[str, Any]:
        """The object with ``own``'s values (each through :func:`yaml_json`, as the template would) in place."""
        obj = json.loads(self.text)
        for key, places in self.places.items():
            text = yaml_json(own[key])
            for *parents, last in places:
                node = obj
                for step in parents:
                    node = node[step]
                node[last] = json.loads(text)
        return obj
