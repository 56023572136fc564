"""Shared test helpers: the real fixtures in ../shared/fixtures (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
MMPOSE = SHARED / "mmpose_testdata"
AIC_RAW = SHARED / "aic_raw" / "keypoint_annotations_example_records_1-3.json"
REFERENCE = SHARED / "reference_skeletons.json"

needs_fixtures = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/fixtures is absent (it is not part of a user's clone)"
)


def fixture(rel: str) -> Path:
    """Path of a file under ../shared/fixtures/mmpose_testdata."""
    return MMPOSE / rel
