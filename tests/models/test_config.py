"""Model specs: registration rules, specs of registered models round-trip, clear refusals."""

from __future__ import annotations

from typing import Any

import pytest
from torch import nn

from latentgeo.models import MLP, GaussianDecoder, register_model
from latentgeo.models.config import from_spec, to_spec


def test_nested_specs_round_trip() -> None:
    dec = GaussianDecoder(
        MLP(2, 3, hidden=(4,)), MLP(2, 3, hidden=(5,), output_activation="softplus")
    )
    spec = to_spec(dec)
    assert spec["class"] == "GaussianDecoder"
    again = from_spec(spec)
    assert type(again) is GaussianDecoder and to_spec(again) == spec


def test_registration_needs_both_methods_and_a_free_name() -> None:
    class NoConfig(nn.Module):
        pass

    with pytest.raises(TypeError, match="NoConfig must define config"):
        register_model(NoConfig)

    class MLP(nn.Module):
        def config(self) -> dict[str, Any]:
            return {}

        @classmethod
        def from_config(cls, config: dict[str, Any]) -> MLP:
            return cls()

    with pytest.raises(ValueError, match="already registered as 'MLP'"):
        register_model(MLP)


def test_unregistered_models_and_bad_specs_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot describe a Linear by configuration"):
        to_spec(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="must be a dict with 'class' and 'config'"):
        from_spec({"class": "MLP"})
    with pytest.raises(ValueError, match="unknown model class 'Nope'"):
        from_spec({"class": "Nope", "config": {}})
