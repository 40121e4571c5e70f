"""Run folders: a run appears whole or not at all, --force replaces only at the end,
killed runs leave the previous result intact, modes follow the umask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from latentgeo._version import __version__
from latentgeo.experiments import rundir
from latentgeo.experiments.rundir import OutputFolderError, RunDir, RunExistsError, command_line

ROOT = Path(__file__).resolve().parents[2]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _finished_run(out: Path, tag: str) -> dict[str, bytes]:
    run = RunDir(out, force=True)
    run.write_csv(f"only_in_{tag}.csv", ["tag"], [[tag]])
    run.write_csv("table.csv", ["tag"], [[tag]])
    run.write_summary({"tag": tag, "settings": {"seed": 7}})
    return _snapshot(out)


def test_nothing_is_visible_until_the_run_is_complete(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "demo"
    with command_line(["latentgeo", "demo", "--quick"]):
        run = RunDir(out)
    run.write_csv("a.csv", ["x"], [[1]])
    assert not out.exists()
    assert run.staging.parent == out.parent and run.staging.name.startswith(".demo.incomplete-")
    assert json.loads((run.staging / "run.json").read_text())["completed"] is False
    run.write_summary({"settings": {"seed": 3}})
    assert not run.staging.exists()
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "run.json", "summary.json"]
    assert [p.name for p in out.parent.iterdir()] == ["demo"]  # nothing else left
    record = json.loads((out / "run.json").read_text())
    assert record["command"] == ["latentgeo", "demo", "--quick"]
    assert record["latentgeo_version"] == __version__
    assert record["seed"] == 3 and record["completed"] is True
    assert record["started"] <= record["finished"] and record["seconds"] >= 0
    assert run.written == [out / "run.json", out / "a.csv", out / "summary.json"]


def test_force_replaces_the_old_run_only_when_the_new_one_is_complete(tmp_path: Path) -> None:
    out = tmp_path / "run"
    old = _finished_run(out, "old")
    with pytest.raises(RunExistsError, match="--force"):
        RunDir(out)
    run = RunDir(out, force=True)
    run.write_csv("table.csv", ["tag"], [["new"]])
    assert _snapshot(out) == old  # still the old run, untouched
    run.write_summary({"tag": "new"})
    files = _snapshot(out)
    assert "only_in_old.csv" not in files  # no mix of old and new files
    assert files["table.csv"] == b"tag\r\nnew\r\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_failed_run_leaves_nothing_and_the_old_run_intact(tmp_path: Path) -> None:
    out = tmp_path / "run"
    old = _finished_run(out, "old")
    with pytest.raises(ZeroDivisionError), RunDir(out, force=True) as run:
        run.write_csv("table.csv", ["tag"], [["new"]])
        _ = 1 / 0
    assert _snapshot(out) == old
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    # without ``with``: the staging folder goes when the RunDir is freed
    run = RunDir(out, force=True)
    staging = run.staging
    assert staging.is_dir()
    del run
    assert not staging.exists()
    assert _snapshot(out) == old


def test_folders_that_are_not_runs_are_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="not a latentgeo run"):
        RunDir(tmp_path, force=True)
    with pytest.raises(OutputFolderError, match="is a file"):
        RunDir(tmp_path / "notes.txt")
    with pytest.raises(OutputFolderError, match="a parent is a file"):
        RunDir(tmp_path / "notes.txt" / "run")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    RunDir(empty).write_summary({})  # an empty folder is fine
    assert (empty / "summary.json").is_file()


def test_a_run_that_appears_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = RunDir(out)
    other = _finished_run(out, "other")
    with pytest.raises(RunExistsError):
        run.write_summary({})
    assert _snapshot(out) == other
    assert not run.staging.exists()


def test_an_interrupted_commit_puts_the_old_run_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    old = _finished_run(out, "old")
    run = RunDir(out, force=True)
    calls = []
    real_replace = os.replace

    def second_fails(src: object, dst: object) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(rundir.os, "replace", second_fails)
    with pytest.raises(OSError, match="disk full"):
        run.commit()
    monkeypatch.undo()
    assert _snapshot(out) == old


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(proc.stdout)


@pytest.mark.skipif(os.name != "posix", reason="leftovers are recognised by pid on POSIX")
def test_leftovers_of_killed_runs_are_cleaned_or_restored(tmp_path: Path) -> None:
    out = tmp_path / "run"
    old = _finished_run(out, "old")
    dead = _dead_pid()
    left = tmp_path / f".run.incomplete-{dead}-0badc0de"
    left.mkdir()
    (left / "table.csv").write_text("half")
    mine = tmp_path / f".run.incomplete-{os.getpid()}-00000000"  # a live process: kept
    mine.mkdir()
    RunDir(out, force=True).discard()
    assert not left.exists() and mine.is_dir()
    mine.rmdir()
    # killed between moving the old run away and moving the new one in: put it back
    out.rename(tmp_path / f".run.replaced-{dead}-0badc0de")
    with pytest.raises(RunExistsError):
        RunDir(out)
    assert _snapshot(out) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_modes_follow_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        run = RunDir(tmp_path / "new" / "run")
        run.write_csv("t.csv", ["x"], [[1]])
        run.write_json("sub/t.json", {})
        run.write_summary({})
    finally:
        os.umask(previous)
    out = tmp_path / "new" / "run"
    for folder in (out.parent, out, out / "sub"):
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask, folder
    for name in ("t.csv", "sub/t.json", "summary.json", "run.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


# A stand-in for a long command: the real CLI (SIGTERM handling, logging, exit
# codes) with run_demo replaced by a writer that waits for a line on stdin
# before each file, so that the test kills it after exactly N files.
SLOW_WRITER = textwrap.dedent(
    """
    import sys
    import latentgeo.experiments.demo as demo
    from latentgeo.cli import main
    from latentgeo.experiments.rundir import RunDir

    def run_demo(out, settings, *, force, progress):
        run = RunDir(out, force=force)
        for k in range(3):
            print("ready", flush=True)
            sys.stdin.readline()
            run.write_csv("table.csv" if k == 0 else f"part{k}.csv", ["tag"], [["new"]])
        summary = {"models": {}, "seconds": 0.0, "files": [p.name for p in run.written]}
        run.write_summary(summary)
        return summary

    demo.run_demo = run_demo
    sys.exit(main(["demo", "--force", "--out", sys.argv[1]]))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_killed_force_runs_leave_the_previous_result_intact(tmp_path: Path) -> None:
    cases = [(0, signal.SIGTERM), (2, signal.SIGTERM), (1, signal.SIGKILL)]
    procs, outs, olds = [], [], []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for i, _ in enumerate(cases):
        outs.append(tmp_path / f"case{i}" / "run")
        olds.append(_finished_run(outs[-1], "old"))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", SLOW_WRITER, str(outs[-1])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    for proc, (files, sig) in zip(procs, cases, strict=True):
        assert proc.stdin is not None and proc.stdout is not None
        for _ in range(files):  # let it write `files` files, then kill it
            assert proc.stdout.readline() == "ready\n"
            proc.stdin.write("\n")
            proc.stdin.flush()
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(sig)
    for proc, out, old, (files, sig) in zip(procs, outs, olds, cases, strict=True):
        _, err = proc.communicate(timeout=120)
        assert _snapshot(out) == old, (files, sig)  # the previous result, byte for byte
        left = sorted(p.name for p in out.parent.iterdir())
        if sig == signal.SIGTERM:
            assert proc.returncode == 143 and "terminated" in err and "Traceback" not in err
            assert left == ["run"]  # the staging folder was removed
        else:  # kill -9 cannot be caught: the staging folder stays, clearly named...
            assert proc.returncode == -signal.SIGKILL
            assert len(left) == 2 and left[0].startswith(".run.incomplete-")
            assert not (out.parent / left[0] / "summary.json").exists()
            RunDir(out, force=True).discard()  # ...until the next run into that folder
            assert sorted(p.name for p in out.parent.iterdir()) == ["run"]


def test_a_symbolic_link_keeps_pointing_at_the_new_run(tmp_path: Path) -> None:
    real = tmp_path / "disk" / "run"
    _finished_run(real, "old")
    link = tmp_path / "run"
    link.symlink_to(real)
    run = RunDir(link, force=True)
    assert run.path == real.resolve()
    run.write_summary({"tag": "new"})
    assert link.is_symlink() and json.loads((link / "summary.json").read_text()) == {"tag": "new"}
