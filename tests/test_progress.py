"""Progress: the library reports steps through a callback; the CLI draws tqdm bars only on a terminal."""

from __future__ import annotations

import io

import pytest

from kpmerge import cli as cli_module
from kpmerge.job import Job, SourceSpec, run_job
from kpmerge.synth import synth_aic, synth_coco


@pytest.fixture
def job(tmp_path):
    c, a = tmp_path / "coco_small.json", tmp_path / "aic_small.json"
    c.write_bytes(synth_coco(scale=0.001, seed=2))
    a.write_bytes(synth_aic(scale=0.001, seed=2))
    return Job(
        "combine", (SourceSpec(path=c), SourceSpec(path=a)), tmp_path / "out", allow_missing_sizes=True
    )


def test_run_job_reports_every_step(job):
    calls: list[tuple[str, int, int]] = []
    merged = run_job(job, progress=lambda step, done, total: calls.append((step, done, total)))
    steps = list(dict.fromkeys(step for step, _, _ in calls))
    assert steps == ["read", "combine", "write"]
    for step in steps:
        mine = [(d, t) for s, d, t in calls if s == step]
        assert mine[0][0] == 0  # a step starts with done = 0
        assert sum(d for d, _ in mine) == mine[0][1]  # and ends complete
    assert next(t for s, _, t in calls if s == "write") == len(merged.dataset.images) + len(
        merged.dataset.instances
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_draw_on_a_terminal_only(monkeypatch):
    for stream, drawn in ((_Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(cli_module.sys, "stderr", stream)
        bars = cli_module.ProgressBars()
        bars.bar_delay = 0.0
        bars("write", 0, 10)
        bars("write", 10, 10)
        bars.close()
        assert ("write" in stream.getvalue()) is drawn


def test_bars_start_no_thread(monkeypatch):
    # Helper processes are forked only while kpmerge runs one thread; a tqdm monitor thread would stop that.
    import threading

    monkeypatch.setattr(cli_module.sys, "stderr", _Terminal())
    bars = cli_module.ProgressBars()
    bars.bar_delay = 0.0
    bars("read", 0, 2)
    bars("read", 1, 2)
    assert not [t for t in threading.enumerate() if "tqdm" in t.name]
    bars.close()
