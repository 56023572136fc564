"""kpmerge.inspect_plot: the --plot file is never written into the report's inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kpmerge.errors import UsageError
from kpmerge.inspect import inspect, plot_report
from kpmerge.job import Job, SourceSpec, run_job
from tests.test_inspect import clean_doc


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("out/plot.png", "the output lies inside the input"),
        ("in.json", "the output is the input"),
        (".", "the output holds the input"),
    ],
)
def test_plot_report_refuses_a_path_inside_its_inputs(tmp_path, monkeypatch, where, message):
    monkeypatch.chdir(tmp_path)
    Path("in.json").write_text(json.dumps(clean_doc()))
    run_job(Job("merge", (SourceSpec(Path("in.json")),), Path("out")))
    before = sorted(p.name for p in Path("out").iterdir())
    report = inspect([Path("out"), Path("in.json")])
    with pytest.raises(UsageError, match=f"{message}.*; choose another"):
        plot_report(report, where)
    assert sorted(p.name for p in Path("out").iterdir()) == before
    assert json.loads(Path("in.json").read_text()) == clean_doc()
