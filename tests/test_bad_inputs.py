"""The bad-input corpus (tests/bad_inputs/cases.toml) via the CLI: exit code, one `Error:` line, no output."""

from __future__ import annotations

import os
import shutil
import stat
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpmerge.cli import cli

HERE = Path(__file__).resolve().parent / "bad_inputs"
CASES = tomllib.loads((HERE / "cases.toml").read_text("utf-8"))["case"]


def _setup(kind: str, tmp: Path, out: Path) -> list[Path]:
    """Prepare the situation a case needs; returns folders whose mode must be restored afterwards."""
    if kind == "unreadable":
        p = tmp / "ok_coco.json"
        shutil.copy(HERE / "ok_coco.json", p)
        p.chmod(0)
        if os.access(p, os.R_OK):
            pytest.skip("running with privileges that read a chmod 000 file (root)")
        return [p]
    if kind == "out_exists":
        out.mkdir()
        (out / "previous.txt").write_text("previous")
    elif kind == "out_holds_input":
        out.mkdir()
        shutil.copy(HERE / "ok_coco.json", out / "ok_coco.json")
    elif kind == "readonly_parent":
        out.parent.mkdir()
        out.parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
        if os.access(out.parent, os.W_OK):
            pytest.skip("running with privileges that write into a read-only folder (root)")
        return [out.parent]
    elif kind:
        raise AssertionError(f"unknown setup {kind!r}")
    return []


def test_corpus_is_large_and_ids_unique():
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case, tmp_path):
    kind = case.get("setup", "")
    out = tmp_path / ("ro" if kind == "readonly_parent" else "") / "OUT"
    before = set()
    restore = _setup(kind, tmp_path, out)
    if out.exists():
        before = {p.relative_to(out) for p in out.rglob("*")}
    args = [a.replace("{dir}", str(HERE)).replace("{tmp}", str(tmp_path)) for a in case["args"]]
    try:
        result = CliRunner().invoke(cli, [*args, "-o", str(out)])
    finally:
        for p in restore:
            p.chmod(stat.S_IRWXU)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code == case["exit"], result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert case["error"] in errors[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    if kind in ("out_exists", "out_holds_input"):
        assert {p.relative_to(out) for p in out.rglob("*")} == before
    else:
        assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if ".kpmerge-" in p.name]
    assert leftovers == []


def test_debug_shows_the_traceback():
    args = ["merge", str(HERE / "truncated.json"), "-o", "unused"]
    result = CliRunner().invoke(cli, ["--debug", *args])
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "KpmergeError"


def test_debug_env_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("KPMERGE_DEBUG", "1")
    result = CliRunner().invoke(cli, ["merge", str(HERE / "truncated.json"), "-o", "unused"])
    assert type(result.exception).__name__ == "KpmergeError"


@pytest.mark.parametrize(
    ("name", "options"), [("ok_coco.json", []), ("ok_aic.json", ["--allow-missing-sizes"])]
)
def test_corpus_base_files_are_valid(name, options, tmp_path):
    result = CliRunner().invoke(
        cli, ["merge", str(HERE / name), "-o", str(tmp_path / "OUT"), "-q", *options], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "OUT" / "annotations.json").is_file()
