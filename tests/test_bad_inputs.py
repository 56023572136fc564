"""The bad-input corpus (tests/bad_inputs/cases.toml) via the CLI: exit code, one `Error:` line, no output."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpmerge.cli import cli

HERE = Path(__file__).resolve().parent / "bad_inputs"
CASES = tomllib.loads((HERE / "cases.toml").read_text("utf-8"))["case"]


NESTED = 1000
"""Nesting depth of the hostile nested values (the JSON decoder follows about 1,000 levels)."""


def _nested_coco(where: str) -> Callable[[Path], None]:
    """A generator: ok_coco.json with a value nested NESTED levels deep in an annotation, an image or
    the top-level object, as {tmp}/deep.json."""

    def write(tmp: Path) -> None:
        doc = json.loads((HERE / "ok_coco.json").read_text("utf-8"))
        holder = {"annotation": doc["annotations"][0], "image": doc["images"][0], "top": doc}[where]
        holder["extra"] = "@NESTED@"
        text = json.dumps(doc).replace('"@NESTED@"', "[" * NESTED + "]" * NESTED)
        (tmp / "deep.json").write_text(text, "utf-8")

    return write


def _output(change: Callable[[Path], None] = lambda out: None) -> Callable[[Path], None]:
    """A generator: a merge of ok_coco.json in {tmp}/built, then `change(built)`."""

    def write(tmp: Path) -> None:
        built = tmp / "built"
        args = ["merge", str(HERE / "ok_coco.json"), "-o", str(built), "-q"]
        assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0
        change(built)

    return write


def _set_manifest(built: Path, **values: object) -> None:
    manifest = json.loads((built / "manifest.json").read_text("utf-8"))
    (built / "manifest.json").write_text(json.dumps({**manifest, **values}), "utf-8")


GENERATORS: dict[str, Callable[[Path], None]] = {
    "deep_annotation": _nested_coco("annotation"),
    "deep_image": _nested_coco("image"),
    "deep_top": _nested_coco("top"),
    "deep_mapping": lambda tmp: (tmp / "deep_mapping.json").write_text("[" * NESTED + "]" * NESTED),
    # 16 MiB of white space before a valid document, in 16 KiB of gzip
    "gzip_bomb": lambda tmp: (tmp / "bomb.json.gz").write_bytes(
        gzip.compress(b" " * (16 << 20) + (HERE / "ok_coco.json").read_bytes(), 9)
    ),
    "output": _output(),
    "output_metainfo_list": _output(lambda b: (b / "metainfo.json").write_text("[]")),
    "output_manifest_sources_int": _output(lambda b: (b / "manifest.json").write_text('{"sources": 5}')),
    "output_manifest_sources_5": _output(lambda b: _set_manifest(b, sources=5)),
    "output_manifest_coco": _output(lambda b: shutil.copy(HERE / "ok_coco.json", b / "manifest.json")),
    "output_manifest_v99": _output(lambda b: _set_manifest(b, kpmerge_manifest=99)),
}
"""Inputs that the corpus makes in {tmp} (too big to commit, or made by kpmerge itself)."""


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
    elif kind in ("out_is_file", "out_is_input"):  # OUT is a file (for out_is_input: the input)
        shutil.copy(HERE / "ok_coco.json", out)
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
    if "generate" in case:
        GENERATORS[case["generate"]](tmp_path)
    if out.is_dir():
        before = {p.relative_to(out) for p in out.rglob("*")}
    content = out.read_bytes() if out.is_file() else None
    args = [a.replace("{dir}", str(HERE)).replace("{tmp}", str(tmp_path)) for a in case["args"]]
    if case.get("out", True):
        args += ["-o", str(out)]
    try:
        result = CliRunner().invoke(cli, args, env=case.get("env"))
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
    elif kind in ("out_is_file", "out_is_input"):
        assert out.read_bytes() == content
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
