"""Nothing half-written: failures injected while the output folder is written leave no trace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpmerge import job, output, publish
from kpmerge.cli import cli
from kpmerge.errors import KpmergeError
from kpmerge.output import write_folder

HERE = Path(__file__).resolve().parent / "bad_inputs"
INPUT = str(HERE / "ok_coco.json")


def _failing_after_first(exc: BaseException):
    """A replacement for output.output_files whose second maker raises `exc`."""
    real = output.output_files

    def files(merged, *args, **kwargs):
        made = dict(real(merged, *args, **kwargs))
        second = list(made)[1]

        def boom() -> bytes:
            raise exc

        made[second] = boom
        return made

    return files


def _previous(out: Path) -> None:
    out.mkdir()
    (out / "annotations.json").write_text("previous")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".kpmerge-" in p.name)


@pytest.mark.parametrize(
    ("exc", "exit_code", "message"),
    [
        (KpmergeError("injected failure"), 1, "Error: injected failure"),
        (KeyboardInterrupt(), 130, "Error: interrupted by SIGINT; nothing was written"),
    ],
    ids=["error", "keyboard_interrupt"],
)
@pytest.mark.parametrize("force", [False, True], ids=["new", "force"])
def test_failure_in_a_maker(monkeypatch, tmp_path, exc, exit_code, message, force):
    out = tmp_path / "OUT"
    if force:
        _previous(out)
    monkeypatch.setattr(job, "output_files", _failing_after_first(exc))
    result = CliRunner().invoke(cli, ["merge", INPUT, "-o", str(out), *(["--force"] if force else [])])
    assert result.exit_code == exit_code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    if force:
        assert sorted(p.name for p in out.iterdir()) == ["annotations.json"]
        assert (out / "annotations.json").read_text() == "previous"
    else:
        assert not out.exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("force", [False, True], ids=["new", "force"])
def test_disk_error_after_the_first_file(monkeypatch, tmp_path, force):
    out = tmp_path / "OUT"
    if force:
        _previous(out)
    real = Path.write_bytes
    calls = []

    def write_bytes(self: Path, data: bytes) -> int:
        calls.append(self.name)
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    result = CliRunner().invoke(cli, ["merge", INPUT, "-o", str(out), *(["--force"] if force else [])])
    monkeypatch.undo()
    assert len(calls) == 2
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: {out}: cannot write output: No space left on device"]
    if force:
        assert (out / "annotations.json").read_text() == "previous"
    else:
        assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_final_rename_fails_previous_output_restored(monkeypatch, tmp_path):
    # Without renameat2 the old folder is moved aside first; a failure of the second move puts it back.
    monkeypatch.setattr(publish, "_renameat2", lambda: None)
    out = tmp_path / "OUT"
    _previous(out)
    real = os.rename

    def rename(src, dst):
        if Path(dst) == out and Path(src).name != publish.OLD:  # the new folder into place, not the restore
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(publish.os, "rename", rename)
    with pytest.raises(KpmergeError, match="cannot write output: Input/output error"):
        write_folder({"a.json": lambda: b"{}"}, out, force=True)
    monkeypatch.undo()
    assert (out / "annotations.json").read_text() == "previous"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [RuntimeError("bug"), KeyboardInterrupt(), KpmergeError("bad")])
def test_write_folder_cleans_up_on_any_exception(tmp_path, exc):
    out = tmp_path / "OUT"
    _previous(out)

    def boom() -> bytes:
        raise exc

    with pytest.raises(type(exc)):
        write_folder({"a.json": lambda: b"1", "b.json": boom}, out, force=True)
    assert (out / "annotations.json").read_text() == "previous"
    assert _leftovers(tmp_path) == []


def test_success_replaces_with_force_and_leaves_nothing_beside(tmp_path):
    out = tmp_path / "OUT"
    _previous(out)
    args = ["merge", INPUT, "-o", str(out), "--force", "-q"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "annotations.json",
        "manifest.json",
        "metainfo.json",
        "metainfo.py",
    ]
    assert _leftovers(tmp_path) == []
