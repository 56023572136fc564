"""Shared test helpers: the real fixtures in ../shared/fixtures (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
