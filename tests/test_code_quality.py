"""The README's test command also lints, format-checks, type-checks the code and checks
its layers (import-linter contracts in pyproject.toml)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_lint() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    result = _run("mypy", "latentgeo")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts() -> None:
    # lint-imports has no ``python -m`` entry: call its CLI function in a subprocess
    code = "import sys; from importlinter.cli import lint_imports_command as c; c()"
    result = subprocess.run(
        [sys.executable, "-c", code, "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _private_methods_by_package() -> dict[str, set[str]]:
    """``{package: {_names of methods its classes define}}`` over ``latentgeo/``."""
    defined: dict[str, set[str]] = {}
    for path in (ROOT / "latentgeo").rglob("*.py"):
        package = path.relative_to(ROOT / "latentgeo").parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and _is_private(item.name):
                        defined.setdefault(package, set()).add(item.name)
    return defined


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_crosses_a_package() -> None:
    """A package calls another package's objects by their public methods only
    (``metric.squared_norm(z, v, validate=False)``, not ``metric._squared_norm``)."""
    defined = _private_methods_by_package()
    crossings = []
    for path in (ROOT / "latentgeo").rglob("*.py"):
        package = path.relative_to(ROOT / "latentgeo").parts[0]
        own = defined.get(package, set())
        foreign = set().union(*(v for k, v in defined.items() if k != package)) - own
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in foreign
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                crossings.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("latentgeo."):
                target = (node.module or "").split(".")[1]
                if target != package and not target.startswith("_"):
                    crossings += [
                        f"{path.relative_to(ROOT)}:{node.lineno} import {a.name}"
                        for a in node.names
                        if _is_private(a.name)
                    ]
    assert not crossings, "private names used across packages:\n" + "\n".join(crossings)


def test_tests_mirror_the_package() -> None:
    """Every module ``latentgeo/<path>/<name>.py`` has ``tests/<path>/test_<name>.py`` (leading
    and trailing underscores dropped: ``_options.py``, ``__main__.py``); a package's
    ``__init__`` is tested through its modules."""
    package = ROOT / "latentgeo"
    missing = []
    for module in sorted(package.rglob("*.py")):
        if module.name == "__init__.py":
            continue
        relative = module.relative_to(package)
        mirror = ROOT / "tests" / relative.parent / f"test_{relative.stem.strip('_')}.py"
        if not mirror.is_file():
            missing.append(f"{relative} -> {mirror.relative_to(ROOT)}")
    assert missing == []
