import json

import numpy as np
import pytest

from kpmerge.build import combine, merge, union_layout
from kpmerge.errors import UsageError
from kpmerge.job import SourceSpec, load_source
from kpmerge.layouts import builtin_layout
from tests.conftest import AIC_RAW, REFERENCE, fixture, needs_fixtures
from tests.test_mapping import MMPOSE_AIC_TO_COCO

pytestmark = needs_fixtures


def _src(path, name):
    return load_source(SourceSpec(path=path, name=name))


def test_merge_aic_into_coco_equals_mmpose_keypoint_converter():
    """What MMPose's CocoDataset reads from our output equals KeypointConverter on its own test_aic.json."""
    merged = merge([_src(AIC_RAW, "aic")], builtin_layout("coco"))
    out = merged.dataset.instances.keypoints
    ref = json.loads(fixture("aic/test_aic.json").read_text())
    src = np.array([a["keypoints"] for a in ref["annotations"]], dtype=float).reshape(-1, 14, 3)
    # KeypointConverter: zeros, then copy mapped x, y and visibility; CocoDataset loads v as min(1, v).
    want_xy, want_vis = np.zeros((9, 17, 2)), np.zeros((9, 17))
    for s, t in MMPOSE_AIC_TO_COCO:
        want_xy[:, t] = src[:, s, :2]
        want_vis[:, t] = np.minimum(1, src[:, s, 2])
    np.testing.assert_array_equal(out[:, :, :2], want_xy)
    np.testing.assert_array_equal(np.minimum(1, out[:, :, 2]), want_vis)
    # kpmerge keeps the occluded/visible distinction MMPose collapses
    for s, t in MMPOSE_AIC_TO_COCO:
        np.testing.assert_array_equal(out[:, t, 2], src[:, s, 2])
    np.testing.assert_array_equal(out[:, :5], 0)
    explicit = merge(
        [load_source(SourceSpec(AIC_RAW, "aic", mapping=[list(p) for p in MMPOSE_AIC_TO_COCO]))],
        builtin_layout("coco"),
    )
    np.testing.assert_array_equal(explicit.dataset.instances.keypoints, out)


def _reference(config):
    data = json.loads(REFERENCE.read_text())
    return next(d for d in data["datasets"] if d["config_file"] == config)


def test_combine_coco_aic_is_the_coco_aic_layout():
    merged = combine([_src(fixture("coco/test_coco.json"), "coco"), _src(AIC_RAW, "aic")])
    ref = _reference("configs/_base_/datasets/coco_aic.py")
    lay = merged.layout
    assert list(lay.keypoints) == [k["name"] for k in ref["keypoints"]]
    assert lay.flip_indices == ref["flip_indices"]
    assert len(lay.skeleton) == 20 and lay.skeleton_ids == ref["skeleton_ids"]
    assert list(lay.sigmas) == ref["sigmas"]
    assert len(lay.joint_weights) == 19 and list(lay.joint_weights[:18]) == ref["joint_weights"]
    coco, aic = merged.sources
    assert coco.eval_indices == list(range(17))
    assert coco.mapping.defined == list(range(17))
    assert aic.mapping.defined == list(range(5, 19))
    assert aic.eval_indices == [6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 17, 18]
    assert (coco.annotation_range, aic.annotation_range) == ((0, 14), (14, 23))


def test_union_appends_unmatched_keypoints_with_their_own_facts():
    sources = [
        _src(fixture("coco/test_coco.json"), "coco"),
        _src(fixture("jhmdb/test_jhmdb_sub1.json"), "jhmdb"),
    ]
    lay = union_layout(sources)
    jhmdb = builtin_layout("jhmdb")
    assert list(lay.keypoints) == [*builtin_layout("coco").keypoints, "neck", "belly", "head"]
    for name in ("neck", "belly", "head"):
        i, j = lay.keypoints.index(name), jhmdb.keypoints.index(name)
        assert (lay.sigmas[i], lay.joint_weights[i], lay.swaps[i]) == (
            jhmdb.sigmas[j],
            jhmdb.joint_weights[j],
            "",
        )
    assert ("belly", "neck") in lay.skeleton and ("neck", "head") in lay.skeleton
    assert ("neck", "right_shoulder") not in lay.skeleton  # links to earlier keypoints are not invented


def test_union_contains_every_source_keypoint():
    names = [
        "coco/test_coco.json",
        "crowdpose/test_crowdpose.json",
        "posetrack18/test_posetrack18_val.json",
        "jhmdb/test_jhmdb_sub1.json",
    ]
    merged = combine([_src(fixture(n), n.split("/")[0]) for n in names])
    for s in merged.sources:
        assert s.eval_indices is not None, s.name  # every keypoint of every source has a place
        assert len(s.eval_indices) == len(s.mapping.source)


def test_area_filled_from_box_when_missing():
    merged = merge([_src(AIC_RAW, "aic")])
    inst = merged.dataset.instances
    np.testing.assert_allclose(inst.areas, inst.boxes[:, 2] * inst.boxes[:, 3] * 0.53)
    assert merged.sources[0].area_computed == 9


def test_drop_options_count_reasons():
    merged = merge([_src(fixture("coco/test_coco.json"), "coco")], drop_empty=True)
    s = merged.sources[0]
    assert s.not_written == {"no_labelled_keypoints": 2}
    assert s.annotations_read == s.annotations_written + sum(s.not_written.values()) == 14


def test_duplicate_source_names_are_refused():
    src = _src(fixture("coco/test_coco.json"), "coco")
    with pytest.raises(UsageError, match="used twice"):
        merge([src, src])
