"""Hostile inputs kpmerge must accept, and what they may cost (issue 12); the refusals are in
tests/bad_inputs/cases.toml."""

from __future__ import annotations

import gzip
import json
import mmap
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from kpmerge.formats import detect_format
from kpmerge.jsonio import read_bytes, read_mapped

BAD = Path(__file__).resolve().parent / "bad_inputs"
OK_COCO = (BAD / "ok_coco.json").read_bytes()
OK_AIC = (BAD / "ok_aic.json").read_bytes()


def _merge(args: list[str], out: Path) -> bytes:
    result = CliRunner().invoke(cli, ["merge", *args, "-o", str(out), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return (out / "annotations.json").read_bytes()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("spaces_5k.json", b" " * 5000 + OK_COCO),
        ("mixed_3m.json", b"\n\t \r" * (3 << 18) + OK_COCO),  # 3 MiB: a memory-mapped file
        ("aic_5k.json", b"\n" * 5000 + OK_AIC),
        ("gzip_3m.json.gz", gzip.compress(b" " * (3 << 20) + OK_COCO)),
    ],
)
def test_leading_white_space_is_json(name, content, tmp_path):
    path = tmp_path / name
    path.write_bytes(content)
    plain = tmp_path / ("plain.json" if OK_COCO in content or name.endswith(".gz") else "plain_aic.json")
    plain.write_bytes(OK_AIC if name.startswith("aic") else OK_COCO)
    sizes = ["--allow-missing-sizes"] if name.startswith("aic") else []  # raw AIC holds no image sizes
    # the source is named alike so that the outputs can be compared byte for byte
    assert _merge([f"s={path}", *sizes], tmp_path / "a") == _merge([f"s={plain}", *sizes], tmp_path / "b")


@pytest.mark.parametrize("command", ["combine", "inspect"])
def test_leading_white_space_in_combine_and_inspect(command, tmp_path):
    path = tmp_path / "padded.json"
    path.write_bytes(b" " * 5000 + OK_COCO)
    args = [command, str(path)] + (["-o", str(tmp_path / "out"), "-q"] if command == "combine" else [])
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr


def test_white_space_is_skipped_without_copying_the_file(tmp_path):
    path = tmp_path / "padded.json"
    path.write_bytes(b" " * (64 << 20) + OK_COCO)
    tracemalloc.start()
    try:
        data = read_mapped(path)
        fmt = detect_format(data, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(data, mmap.mmap) and fmt == "coco"
    assert peak < 16 << 20  # far below the 64 MiB of the file (a copy, or two, before issue 12)


def test_gzip_is_held_once(tmp_path):
    path = tmp_path / "padded.json.gz"
    path.write_bytes(gzip.compress(b" " * (64 << 20) + OK_COCO, 9))
    tracemalloc.start()
    try:
        data = read_bytes(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(data, mmap.mmap)  # in a memory file, not in a Python object
    assert len(data) == (64 << 20) + len(OK_COCO)
    assert peak < 16 << 20  # a block at a time, never the whole 64 MiB (twice before issue 12)


def test_gzip_limit_allows_what_fits(tmp_path, monkeypatch):
    path = tmp_path / "small.json.gz"
    path.write_bytes(gzip.compress(OK_COCO))
    monkeypatch.setenv("KPMERGE_GZIP_LIMIT", str(len(OK_COCO)))
    assert bytes(read_bytes(path)) == OK_COCO
    monkeypatch.setenv("KPMERGE_GZIP_LIMIT", "a lot")
    result = CliRunner().invoke(cli, ["merge", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr == "Error: KPMERGE_GZIP_LIMIT: expected a size such as 8G or 500M, got 'a lot'\n"


def test_sample_one_rank_of_a_huge_world(tmp_path):
    _merge([str(BAD / "ok_coco.json")], tmp_path / "built")
    args = ["sample", str(tmp_path / "built" / "manifest.json"), "--world-size", str(2**63 - 1)]
    args += ["--rank", "5", "-o", str(tmp_path / "plan"), "-q"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    (file,) = (tmp_path / "plan").iterdir()
    assert len(json.loads(file.read_text())["indices"]) == 1  # padded by wrapping around, as PyTorch


def test_sample_help_says_what_is_written():
    text = CliRunner().invoke(cli, ["sample", "--help"]).stdout
    assert "epoch_0003.rank_1_of_4.json" in " ".join(text.split())
    assert "At most 10,000 files" in " ".join(text.split())


def test_source_name_from_a_file_name_is_made_safe(tmp_path):
    path = tmp_path / "my data (1).json"
    path.write_bytes(OK_COCO)
    _merge([str(path)], tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [s["name"] for s in manifest["sources"]] == ["my_data_1_"]


INTERRUPT_WHILE_IMPORTING = """
import builtins, sys
real = builtins.__import__
def fake(name, *args, **kwargs):
    if name == "numpy":
        raise KeyboardInterrupt
    return real(name, *args, **kwargs)
builtins.__import__ = fake
from importlib.metadata import entry_points
(command,) = entry_points(group="console_scripts", name="kpmerge")
sys.argv = ["kpmerge", "--version"]
command.load()()
"""


def test_interrupt_while_importing_is_one_line():
    """Ctrl-C before kpmerge.cli is loaded: the `kpmerge` entry point (as installed) ends cleanly."""
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPT_WHILE_IMPORTING], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 130
    assert done.stderr == "Error: interrupted by SIGINT; nothing was written\n"
    assert done.stdout == ""
