"""Registry: lazy "module:attr" entries, unique lowercase names; the method registry is safe without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from peftsum.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def lazy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh importable module that records that it was imported."""
    name = f"peftsum_lazy_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("IMPORTED = True\nTHING = {'answer': 42}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_lazy_import(lazy_module: str) -> None:
    reg: Registry[dict] = Registry("thing")
    reg.register("lazy", f"{lazy_module}:THING")
    assert "lazy" in reg
    assert reg.names() == ["lazy"]
    assert lazy_module not in sys.modules  # registering and listing import nothing
    obj = reg.get("lazy")
    assert obj == {"answer": 42}
    assert lazy_module in sys.modules
    assert reg.get("lazy") is obj  # imported once, then cached
    assert obj is sys.modules[lazy_module].THING


def test_broken_entry_fails_only_when_looked_up() -> None:
    reg: Registry[object] = Registry("thing")
    reg.register("broken", "peftsum_no_such_module_xyz:THING")
    reg.register("missing-attr", "peftsum.registry:NO_SUCH_ATTR")
    assert reg.names() == ["broken", "missing-attr"]
    with pytest.raises(ModuleNotFoundError):
        reg.get("broken")
    with pytest.raises(AttributeError):
        reg.get("missing-attr")


def test_objects_registered_directly() -> None:
    reg: Registry[object] = Registry("thing")
    sentinel = object()
    reg.register("obj", sentinel)
    assert reg.get("obj") is sentinel


def test_duplicate_name_rejected() -> None:
    reg: Registry[object] = Registry("method")
    reg.register("lora", "a:b")
    with pytest.raises(ValueError, match="'lora' is already registered"):
        reg.register("lora", "c:d")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("lora", object())
    assert reg.names() == ["lora"]


@pytest.mark.parametrize("name", ["LoRA", "Lora", "", "-lora", "_lora", "lo ra", "lo.ra", "lo/ra", "lora\n", "é"])
def test_invalid_names_rejected(name: str) -> None:
    reg: Registry[object] = Registry("method")
    with pytest.raises(ValueError, match="must be lowercase"):
        reg.register(name, "a:b")
    assert reg.names() == []


@pytest.mark.parametrize("name", ["lora", "lora-r64", "t5_small", "0shot", "a"])
def test_valid_names_accepted(name: str) -> None:
    reg: Registry[object] = Registry("method")
    reg.register(name, "a:b")
    assert name in reg


def test_unknown_name_lists_known_names() -> None:
    reg: Registry[object] = Registry("dataset")
    for name in ("samsum", "dialogsum", "cnn_dailymail"):
        reg.register(name, object())
    with pytest.raises(KeyError) as info:
        reg.get("xsum")
    message = str(info.value)
    assert "unknown dataset 'xsum'" in message
    assert "cnn_dailymail, dialogsum, samsum" in message


def test_names_sorted_and_iteration() -> None:
    reg: Registry[object] = Registry("thing")
    for name in ("b", "c", "a"):
        reg.register(name, object())
    assert reg.names() == ["a", "b", "c"]
    assert list(reg) == ["a", "b", "c"]
    assert "d" not in reg
    assert 3 not in reg


def test_methods_registry_contents() -> None:
    from peftsum.methods import METHODS
    from peftsum.methods.base import MethodDef

    assert set(METHODS.names()) >= {"full", "none", "lora", "dora", "ia3", "prefix", "prompt", "ptuning", "adalora",
                                    "loha", "lokr", "vera", "bitfit"}
    for name in METHODS.names():
        method = METHODS.get(name)
        assert isinstance(method, MethodDef)
        assert method.name == name  # the registered name is the method's own name
    assert METHODS.get("none").trains is False
    assert "t5" in METHODS.get("bitfit").incompatible
    assert "gpt2" in METHODS.get("loha").incompatible


def test_methods_lookup_imports_no_ml_stack() -> None:
    """Every method can be looked up and its parameters built with defaults without importing torch/peft."""
    code = textwrap.dedent("""\
        import dataclasses, json, sys
        from peftsum.methods import METHODS
        from peftsum.spec.fields import build
        out = {}
        for name in METHODS.names():
            method = METHODS.get(name)
            params = method.params()
            assert dataclasses.is_dataclass(params)
            assert build(method.params, {}, "methods." + name) == params
            out[name] = dataclasses.asdict(params)
        heavy = [m for m in ("torch", "transformers", "peft") if m in sys.modules]
        print(json.dumps({"params": out, "heavy": heavy}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert len(report["params"]) >= 13
    assert report["params"]["lora"]["r"] == 16
    assert report["params"]["adalora"]["target_r"] <= report["params"]["adalora"]["init_r"]
    assert report["params"]["full"] == {}
