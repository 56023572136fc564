"""The same bytes however the work is split: chunk sizes, and sources read by forked helpers."""

from __future__ import annotations

import os
import sys

import pytest
from click.testing import CliRunner

from kpmerge import job, output, parallel
from kpmerge.build import combine
from kpmerge.cli import cli
from kpmerge.formats import coco_writer
from kpmerge.job import SourceSpec, load_source
from kpmerge.synth import synth_aic, synth_coco
from kpmerge.synth_styles import STYLES
from tests.synthfiles import raw_aic_file, style_file

_linux_only = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and hasattr(os, "fork")), reason="helpers are forked on Linux only"
)


def test_chunk_size_does_not_change_the_bytes(monkeypatch, tmp_path):
    # Chunks of one source write the source tag once for all records; chunks across sources one each.
    c, a = tmp_path / "coco_small.json", tmp_path / "aic_small.json"
    c.write_bytes(synth_coco(scale=0.001, seed=4))
    a.write_bytes(synth_aic(scale=0.001, seed=4))
    merged = combine([load_source(SourceSpec(path=c)), load_source(SourceSpec(path=a))])
    whole = output.annotations_bytes(merged)
    monkeypatch.setattr(coco_writer, "CHUNK_RECORDS", 7)
    assert output.annotations_bytes(merged) == whole


@_linux_only
@pytest.mark.parametrize("mode", ["combine", "merge"])
def test_every_style_gives_the_same_bytes_with_read_helpers_forced(monkeypatch, tmp_path, mode):
    # A file of every COCO-style dataset and raw AIC records, read with and without read helpers.
    sources = [f"{n}={style_file(tmp_path / 'in', n, people=5)}" for n in STYLES]
    sources += [f"raw={raw_aic_file(tmp_path / 'in')[0]}"]
    target = ["--target", "coco"] if mode == "merge" else []
    monkeypatch.setattr(coco_writer, "CHUNK_RECORDS", 3)
    outs = {}
    for label, helpers in (("plain", False), ("helpers", True)):
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


@_linux_only
def test_a_wholebody_file_read_by_part_helpers_gives_the_same_bytes(monkeypatch, tmp_path):
    from kpmerge.formats import wholebody
    from kpmerge.synth import write_synth_wholebody

    path = write_synth_wholebody(tmp_path / "wb.json", scale=0.0005, seed=3)
    monkeypatch.setattr(wholebody, "PARALLEL_MIN_ROWS", 1)
    outs = []
    for jobs in ("1", "3"):
        out = tmp_path / f"out{jobs}"
        args = ["merge", f"wb={path}", "--target", "halpe26", "-o", str(out), "-q", "--jobs", jobs]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        outs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outs[0] == outs[1]
