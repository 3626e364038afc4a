"""Settings declarations: a field's type comes from its annotation (``| None`` allows null, ``| Literal["auto"]``
allows auto), its checks and docs from the one Setting in its metadata; every declared default and preset value
passes its own field's checks; per-family preset values are explicit."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import pytest

from peftsum.methods import METHODS
from peftsum.spec import SpecError
from peftsum.spec.cluster import ClusterSettings, PodSettings
from peftsum.spec.fields import SETTING, Setting, build, check_keys, check_value, setting, setting_fields
from peftsum.spec.presets import PRESETS, PerFamily, preset_layer
from peftsum.spec.settings import SECTIONS, DataSettings
from peftsum.spec.tracking import TrackingSettings

ALL_SETTINGS = [*SECTIONS.values(), ClusterSettings, PodSettings, TrackingSettings,
                *(METHODS.get(name).params for name in METHODS.names())]


@dataclass(frozen=True)
class Toy:
    flag: bool = setting(False, "a boolean")
    count: int | None = setting(None, "a nullable integer", lo=1)
    size: int | Literal["auto"] = setting("auto", "an integer or auto", lo=8)
    names: tuple[str, ...] = setting(["a"], "strings")


def test_kind_nullable_auto_come_from_the_annotation() -> None:
    fields = setting_fields(Toy)
    assert [(f.kind, f.nullable, f.auto) for f in fields.values()] == [
        (bool, False, False), (int, True, False), (int, False, True), (tuple, False, False)]
    assert isinstance(dataclasses.fields(Toy)[0].metadata[SETTING], Setting)
    toy = build(Toy, {"count": None, "size": 16.0, "names": ["x", "y"]}, "toy")
    assert (toy.count, toy.size, toy.names, Toy().names) == (None, 16, ("x", "y"), ("a",))
    with pytest.raises(SpecError, match="must not be null"):
        build(Toy, {"size": None}, "toy")
    with pytest.raises(SpecError, match=r"must be an integer \(got 'auto'\)"):
        build(Toy, {"count": "auto"}, "toy")  # auto only where the annotation says so
    with pytest.raises(SpecError, match="must be an integer or 'auto'"):
        build(Toy, {"size": "big"}, "toy")


def test_max_source_tokens_holds_what_its_annotation_says() -> None:
    field = setting_fields(DataSettings)["max_source_tokens"]
    assert (field.kind, field.nullable, field.auto) == (int, True, True)
    for value in ("auto", None, 512):
        assert build(DataSettings, {"max_source_tokens": value}, "data").max_source_tokens == value


def test_an_annotation_without_a_check_must_be_a_plain_type() -> None:
    @dataclass(frozen=True)
    class Odd:
        weights: dict[str, int] | None = setting(None, "no check")  # noqa: RUF009 - setting() returns a field()

    with pytest.raises(TypeError, match=r"Odd\.weights"):
        setting_fields(Odd)
    with pytest.raises(TypeError, match="type_doc"):
        setting(None, "checked but undocumented", check=lambda value, path: value)


@pytest.mark.parametrize("cls", ALL_SETTINGS, ids=lambda cls: cls.__name__)
def test_every_default_passes_its_own_checks(cls: type) -> None:
    """A default the annotation or the bounds would refuse (``int | None`` holding "auto") fails here."""
    for name, field in setting_fields(cls).items():
        assert check_value(field, field.default, name) == field.default, name


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_value_passes_its_fields_checks(preset: str) -> None:
    for section, cls in SECTIONS.items():
        for family in ("causal", "seq2seq", None):
            layer = preset_layer(preset, section, family)
            assert not any(isinstance(v, PerFamily) for v in layer.values())
            assert check_keys(cls, layer, f"{preset}.{section}") == layer


def test_per_family_values_are_picked_for_the_models_family() -> None:
    value = PerFamily(causal=20, seq2seq=30)
    assert (value.pick("causal"), value.pick("seq2seq"), value.pick(None)) == (20, 30, 20)  # None: a model-free cell
    assert preset_layer("seed-paper", "train", "seq2seq")["batch_size"] == 30
