"""The forward-mode rule table as a whole: every entry has an example (checked against
torch.func by the test module of its table), the four tables share the entries out, and the
documented table is the table."""

from __future__ import annotations

from pathlib import Path

from latentgeo.metrics.forward.arithmetic import ARITHMETIC
from latentgeo.metrics.forward.elementwise import ELEMENTWISE
from latentgeo.metrics.forward.layers import LAYERS
from latentgeo.metrics.forward.rules import RULES, rules_table
from latentgeo.metrics.forward.shapes import SHAPES

from .rule_cases import examples, key_id, keys, keys_of


def test_every_entry_has_an_example() -> None:
    missing = [key_id(key) for key in keys() if not examples(key)]
    assert missing == []


def test_the_four_tables_share_the_entries_out() -> None:
    per_table = [keys_of(table) for table in (ELEMENTWISE, ARITHMETIC, SHAPES, LAYERS)]
    assert sorted(key_id(k) for keys_ in per_table for k in keys_) == sorted(map(key_id, keys()))
    assert len(RULES) == len(ELEMENTWISE) + len(ARITHMETIC) + len(SHAPES) + len(LAYERS)


def test_the_documented_table_is_the_table() -> None:
    """docs/forward-mode.md carries ``rules_table()`` verbatim (regenerate it from there)."""
    page = (Path(__file__).resolve().parents[3] / "docs" / "forward-mode.md").read_text()
    start = page.index("-->\n", page.index("<!-- rules-table")) + len("-->\n")
    end = page.index("<!-- /rules-table -->")
    assert page[start:end] == rules_table()


def test_the_table_renders_one_row_per_rule() -> None:
    table = rules_table()
    assert len(table.strip().splitlines()) == len(RULES) + 2
    assert "`nn.ConvTranspose2d`" in table and "`Tensor.tanh`" in table
