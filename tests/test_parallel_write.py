"""annotations.json made from both ends at once: here from the front, by a forked helper from the back."""

from __future__ import annotations

import os
import sys
import time

import pytest
from click.testing import CliRunner

from kpmerge import job, output, parallel
from kpmerge.build import combine
from kpmerge.cli import cli
from kpmerge.formats import coco
from kpmerge.job import SourceSpec, load_source
from kpmerge.jsonio import Chunks
from kpmerge.synth import synth_aic, synth_coco
from tests.conftest import AIC_RAW, COCO_STYLE, fixture, needs_fixtures

_linux_only = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and hasattr(os, "fork")), reason="helpers are forked on Linux only"
)


def _pid_pieces(n: int, fail_in_helper: bool = False, fail_here_at: int | None = None) -> Chunks:
    """Pieces that name the process that made them (and can fail in one of the two)."""
    parent = os.getpid()

    def make(i: int) -> bytes:
        time.sleep(0.002)  # long enough for both processes to take pieces
        if fail_in_helper and os.getpid() != parent:
            raise RuntimeError("helper failure")
        if i == fail_here_at and os.getpid() == parent:
            raise RuntimeError("failure here")
        return f"{i} {os.getpid()}\n".encode()

    return Chunks([(1, lambda i=i: make(i)) for i in range(n)])


def _made(path) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines()]


@_linux_only
def test_pieces_land_in_order_and_both_processes_make_some(tmp_path):
    path = tmp_path / "a.json"
    told: list[int] = []
    chunks = _pid_pieces(200)
    chunks.progress = told.append
    output._write_from_both_ends(path, chunks)
    made = _made(path)
    assert [i for i, _ in made] == list(range(200))
    makers = [pid for _, pid in made]
    assert makers[0] == os.getpid() and makers[-1] != os.getpid()  # the helper took the back
    assert makers == sorted(makers, key=lambda pid: pid != os.getpid())  # one run each, front then back
    assert sum(told) == 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no part file left


@_linux_only
def test_a_failing_helper_leaves_its_pieces_to_this_process(tmp_path):
    path = tmp_path / "a.json"
    output._write_from_both_ends(path, _pid_pieces(100, fail_in_helper=True))
    assert _made(path) == [(i, os.getpid()) for i in range(100)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


@_linux_only
def test_an_error_here_stops_the_helper_and_leaves_no_part_file(tmp_path):
    path = tmp_path / "a.json"
    with pytest.raises(RuntimeError, match="failure here"):
        output._write_from_both_ends(path, _pid_pieces(100, fail_here_at=5))
    assert not (tmp_path / "a.json.part").exists()
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # the helper was reaped


@_linux_only
def test_cli_output_is_the_same_bytes_made_by_one_or_two_processes(monkeypatch, tmp_path):
    c, a = tmp_path / "coco_small.json", tmp_path / "aic_small.json"
    c.write_bytes(synth_coco(scale=0.002, seed=3))
    a.write_bytes(synth_aic(scale=0.002, seed=3))
    monkeypatch.setattr(coco, "CHUNK_RECORDS", 16)
    pieces_made: list[int] = []
    real = output._write_from_both_ends
    monkeypatch.setattr(
        output, "_write_from_both_ends", lambda p, ch: (pieces_made.append(len(ch)), real(p, ch))
    )
    outs = {}
    for label, minimum in (("one", 10**9), ("two", 1)):
        monkeypatch.setattr(output, "PARALLEL_MIN_PIECES", minimum)
        out = tmp_path / label
        args = ["combine", str(c), str(a), "--allow-missing-sizes", "-o", str(out), "-q"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        outs[label] = (out / "annotations.json").read_bytes()
    assert len(pieces_made) == 1 and pieces_made[0] > 50
    assert outs["one"] == outs["two"]


def test_chunk_size_does_not_change_the_bytes(monkeypatch, tmp_path):
    # Chunks of one source write the source tag once for all records; chunks across sources one each.
    c, a = tmp_path / "coco_small.json", tmp_path / "aic_small.json"
    c.write_bytes(synth_coco(scale=0.001, seed=4))
    a.write_bytes(synth_aic(scale=0.001, seed=4))
    merged = combine([load_source(SourceSpec(path=c)), load_source(SourceSpec(path=a))])
    whole = output.annotations_bytes(merged)
    monkeypatch.setattr(coco, "CHUNK_RECORDS", 7)
    assert output.annotations_bytes(merged) == whole


@_linux_only
@needs_fixtures
@pytest.mark.parametrize("mode", ["combine", "merge"])
def test_real_fixtures_give_the_same_bytes_with_helpers_forced(monkeypatch, tmp_path, mode):
    # Every COCO-style fixture and the raw AIC records, read and written with and without helpers.
    sources = [f"s{i}={fixture(rel)}" for i, rel in enumerate(COCO_STYLE)] + [f"raw={AIC_RAW}"]
    target = ["--target", "coco"] if mode == "merge" else []
    monkeypatch.setattr(coco, "CHUNK_RECORDS", 3)
    outs = {}
    for label, helpers in (("plain", False), ("helpers", True)):
        monkeypatch.setattr(output, "PARALLEL_MIN_PIECES", 1 if helpers else 10**9)
        monkeypatch.setattr(job, "PARALLEL_MIN_BYTES", 0 if helpers else 2**62)
        out = tmp_path / label
        args = [mode, *sources, *target, "--allow-missing-sizes", "-o", str(out), "-q"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        outs[label] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert outs["plain"] == outs["helpers"]


def _no_fork():
    raise OSError(12, "Cannot allocate memory")


@_linux_only
def test_no_memory_for_a_helper_writes_here(monkeypatch, tmp_path):
    monkeypatch.setattr(output.os, "fork", _no_fork)
    path = tmp_path / "a.json"
    output._write_chunks(path, _pid_pieces(100))
    assert _made(path) == [(i, os.getpid()) for i in range(100)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


@_linux_only
def test_no_memory_for_a_read_helper_reads_here(monkeypatch, tmp_path):
    c, a = tmp_path / "coco_small.json", tmp_path / "aic_small.json"
    c.write_bytes(synth_coco(scale=0.001, seed=5))
    a.write_bytes(synth_aic(scale=0.001, seed=5))
    specs = [SourceSpec(path=c), SourceSpec(path=a)]
    plain = job.load_sources(specs, jobs=1)
    monkeypatch.setattr(job, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel.os, "fork", _no_fork)
    forced = job.load_sources(specs, jobs=2)
    for one, two in zip(plain, forced, strict=True):
        assert one.meta == two.meta and one.dataset.instances == two.dataset.instances
