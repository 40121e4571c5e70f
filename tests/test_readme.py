"""The README's Python example runs as written (on fewer points) and the quick start is exact."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "README.md has no python example"
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block.replace("1000", "20"), "README.md", "exec"), namespace)
        result = namespace.get("result")
        if result is not None:
            assert bool(result.converged.all())  # type: ignore[attr-defined]
            assert namespace["points"].shape == (20, 50, 2)  # type: ignore[attr-defined]
        assert torch.isfinite(namespace["vol"]).all()  # type: ignore[arg-type]


def test_quick_start_has_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    install = 'python -m pip install -c constraints.txt -e ".[dev]"'
    assert f"{install} && latentgeo demo\n" in text
    assert f"{install} && python -m pytest\n" in text
