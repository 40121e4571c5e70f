"""The reference pages generated from the code (docs/cli.md, docs/solver-options.md) are current."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_reference", ROOT / "tools" / "gen_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_reference_pages_match_the_code() -> None:
    for path, text in _generator().pages().items():
        committed = Path(path).read_text(encoding="utf-8")
        assert committed == text, (
            f"{Path(path).relative_to(ROOT)} is out of date: run `python tools/gen_reference.py`"
        )


def test_every_command_option_and_solver_method_is_on_the_pages() -> None:
    from latentgeo.cli import build_parser
    from latentgeo.solvers import available_methods

    gen = _generator()
    cli = gen.cli_page()
    for path, parser in gen._commands(build_parser(), "latentgeo"):
        assert f"## `{path}`" in cli
        for action in parser._actions:
            for option in action.option_strings:
                assert f"`{option}`" in cli, (path, option)
    solvers = gen.solver_page()
    for method in available_methods():
        assert f'## `method="{method}"`' in solvers


def test_docstring_arguments_are_read() -> None:
    def f(a: int, *, b: int = 1) -> None:
        """Summary.

        Args:
            a: the first
                line and more.
            b (int): second.

        Returns:
            nothing.
        """

    assert _generator()._doc_args(f) == {"a": "the first line and more.", "b": "second."}
