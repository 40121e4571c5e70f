"""Element-wise rules: every entry of ``ELEMENTWISE`` against torch.func (value, first and second
order, float64, 1e-12, no generic fallback), on the examples of ``rule_cases.py``."""

from __future__ import annotations

from typing import Any

import pytest

from latentgeo.metrics.forward.elementwise import ELEMENTWISE

from .rule_cases import check_rule, key_id, keys_of


@pytest.mark.parametrize("key", keys_of(ELEMENTWISE), ids=key_id)
def test_rule_matches_torch_func(key: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    check_rule(key, monkeypatch)
