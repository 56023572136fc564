"""Shared test helpers: the real fixtures in ../shared/fixtures (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kpmerge.cli import cli

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
MMPOSE = SHARED / "mmpose_testdata"
AIC_RAW = SHARED / "aic_raw" / "keypoint_annotations_example_records_1-3.json"
REFERENCE = SHARED / "reference_skeletons.json"

COCO_STYLE = [
    "coco/test_coco.json",
    "aic/test_aic.json",
    "crowdpose/test_crowdpose.json",
    "halpe/test_halpe.json",
    "ochuman/test_ochuman.json",
    "posetrack18/test_posetrack18_val.json",
    "jhmdb/test_jhmdb_sub1.json",
]
"""The COCO-style files among the fixtures (relative to mmpose_testdata)."""

needs_fixtures = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/fixtures is absent (it is not part of a user's clone)"
)


def fixture(rel: str) -> Path:
    """Path of a file under ../shared/fixtures/mmpose_testdata."""
    return MMPOSE / rel


@pytest.fixture
def aic_raw_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image folder for AIC_RAW: a tiny image per record, of the size MMPose's converted
    test_aic.json gives the same image (raw AIC holds no sizes, and kpmerge requires them)."""
    import json

    from kpmerge.synth import tiny_png

    folder = tmp_path_factory.mktemp("aic_raw_images")
    for image in json.loads(fixture("aic/test_aic.json").read_text())["images"]:
        (folder / image["file_name"]).write_bytes(tiny_png(image["width"], image["height"]))
    return folder


def invoke(*args: object, ok: bool = True) -> Result:
    """Run the CLI with `args` (as strings); with `ok`, show the traceback of a failure and expect exit 0."""
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=not ok)
    if ok:
        assert result.exit_code == 0, result.stderr
    return result
