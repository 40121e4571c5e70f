"""The ``latentgeo`` command (``python -m latentgeo.cli``): help with examples for every
command, exit codes.

Each command: tests/cli/test_<command>.py; bad values: tests/cli/test_errors.py; logging
and progress: tests/cli/test_common.py; run folders: tests/experiments/test_rundir.py.
"""

from __future__ import annotations

import pytest

from latentgeo.cli import build_parser, main


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["demo"],
        ["reproduce"],
        ["reproduce", "ensembles-cv"],
        ["reproduce", "relative-improvement"],
        ["reproduce", "kmeans"],
    ],
)
def test_every_command_has_help_with_examples(argv: list[str]) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([*argv, "--help"])
    assert exit_info.value.code == 0


def test_help_texts_show_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["demo"], ["reproduce", "kmeans"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*argv, "--help"])
        assert "examples:" in capsys.readouterr().out
    assert main([]) == 0
    assert main(["reproduce"]) == 0
    assert main(["--version"]) == 0
