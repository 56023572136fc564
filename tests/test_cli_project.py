"""kpmerge project through the CLI."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kpmerge.cli import cli
from tests.conftest import fixture, needs_fixtures


@needs_fixtures
def test_project(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    sources = [f"coco={fixture('coco/test_coco.json')}", f"aic={fixture('aic/test_aic.json')}"]
    runner.invoke(cli, ["combine", *sources, "-o", str(out), "-q"], catch_exceptions=False)
    gt = tmp_path / "gt.json"
    result = runner.invoke(cli, ["project", str(out), "--to", "coco", "-o", str(gt)], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.startswith("kpmerge project: 14 annotations, 4 images of coco in layout coco")
    assert len(json.loads(gt.read_text())["annotations"]) == 14
    first = gt.read_bytes()
    result = runner.invoke(cli, ["project", str(out), "--to", "coco", "-o", str(gt)])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {gt}: output exists (use --force to replace it)\n"
    args = ["project", str(out), "--to", "coco", "-o", str(gt), "--force", "-q", "--source", "coco"]
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0 and result.stderr == ""
    assert gt.read_bytes() == first


@needs_fixtures
def test_project_unknown_source(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    runner.invoke(cli, ["merge", f"coco={fixture('coco/test_coco.json')}", "-o", str(out), "-q"])
    gt = tmp_path / "gt.json"
    result = runner.invoke(cli, ["project", str(out), "--to", "coco", "-o", str(gt), "--source", "aic"])
    assert result.exit_code == 2
    assert result.stderr == f"Error: no source named 'aic' in {out} (sources: coco)\n"
    assert not gt.exists()
