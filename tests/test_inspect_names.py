"""kpmerge.inspect_names: keypoint names across inputs and the auto mapping from each to the first."""

from __future__ import annotations

from kpmerge.inspect import inspect
from tests.synthfiles import raw_aic_file, style_file
from tests.test_inspect import COCO_NAMES


def test_several_inputs_overlap_and_mapping(tmp_path):
    report = inspect([style_file(tmp_path, "coco"), raw_aic_file(tmp_path)[0]])
    ov = report.overlap
    assert ov is not None
    assert ov.shared == COCO_NAMES[5:]
    assert ov.unique(0) == COCO_NAMES[:5]
    assert ov.unique(1) == ["head_top", "neck"]
    (m,) = report.mappings
    assert m.error is None
    assert sorted(t for _, t in m.pairs) == sorted(COCO_NAMES[5:])
    assert (m.dropped, m.unmapped) == (("head_top", "neck"), tuple(COCO_NAMES[:5]))
