"""kpmerge.build: merge, combine and the union layout, on files the tests write (fidelity to MMPose's
own files at the end, skipped without ../shared)."""

import json

import numpy as np
import pytest

from kpmerge.build import AREA_FACTOR, combine, merge, union_layout
from kpmerge.errors import UsageError
from kpmerge.job import SourceSpec, load_source
from kpmerge.layouts import builtin_layout
from tests.conftest import AIC_RAW, REFERENCE, fixture, needs_fixtures
from tests.synthfiles import load, mpii_file, raw_aic_file, style_file
from tests.test_mapping import MMPOSE_AIC_TO_COCO


def _src(path, name=None, **spec):
    return load_source(SourceSpec(path=path, name=name, **spec))


def _keypoint_converter(src: np.ndarray, pairs, k: int) -> tuple[np.ndarray, np.ndarray]:
    """MMPose's KeypointConverter then CocoDataset: zeros, mapped x, y copied, visibility min(1, v)."""
    want_xy, want_vis = np.zeros((len(src), k, 2)), np.zeros((len(src), k))
    for s, t in pairs:
        want_xy[:, t] = src[:, s, :2]
        want_vis[:, t] = np.minimum(1, src[:, s, 2])
    return want_xy, want_vis


def _check_aic_into_coco(aic_file) -> None:
    merged = merge([_src(aic_file, "aic")], builtin_layout("coco"))
    out = merged.dataset.instances.keypoints
    src = np.array([a["keypoints"] for a in load(aic_file)["annotations"]], dtype=float).reshape(-1, 14, 3)
    want_xy, want_vis = _keypoint_converter(src, MMPOSE_AIC_TO_COCO, 17)
    np.testing.assert_array_equal(out[:, :, :2], want_xy)
    np.testing.assert_array_equal(np.minimum(1, out[:, :, 2]), want_vis)
    for s, t in MMPOSE_AIC_TO_COCO:  # kpmerge keeps the occluded/visible distinction MMPose collapses
        np.testing.assert_array_equal(out[:, t, 2], src[:, s, 2])
    np.testing.assert_array_equal(out[:, :5], 0)
    explicit = merge(
        [_src(aic_file, "aic", mapping=[list(p) for p in MMPOSE_AIC_TO_COCO])], builtin_layout("coco")
    )
    np.testing.assert_array_equal(explicit.dataset.instances.keypoints, out)


@pytest.mark.parametrize("seed", [0, 1])
def test_merge_aic_into_coco_equals_mmpose_keypoint_converter(tmp_path, seed):
    """What MMPose's CocoDataset reads from our output equals KeypointConverter on the source."""
    path = style_file(tmp_path, "aic", people=9, seed=seed)
    assert {v for a in load(path)["annotations"] for v in a["keypoints"][2::3]} == {0, 1, 2}
    _check_aic_into_coco(path)


def test_combine_coco_aic_is_the_coco_aic_layout(tmp_path):
    coco = _src(style_file(tmp_path, "coco", people=7), "coco")
    aic = _src(style_file(tmp_path, "aic", people=5), "aic")
    merged = combine([coco, aic])
    lay, ref = merged.layout, builtin_layout("coco_aic")
    assert list(lay.keypoints) == list(ref.keypoints)
    assert lay.flip_indices == ref.flip_indices
    assert len(lay.skeleton) == 20 and lay.skeleton_ids == ref.skeleton_ids
    assert list(lay.sigmas) == list(ref.sigmas)
    assert list(lay.joint_weights) == list(ref.joint_weights) and len(lay.joint_weights) == 19
    coco_report, aic_report = merged.sources
    assert coco_report.eval_indices == list(range(17))
    assert coco_report.mapping.defined == list(range(17))
    assert aic_report.mapping.defined == list(range(5, 19))
    assert aic_report.eval_indices == [6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 17, 18]
    assert (coco_report.annotation_range, aic_report.annotation_range) == ((0, 7), (7, 12))
    assert (coco_report.image_range, aic_report.image_range) == ((0, 3), (3, 6))


def test_combine_keeps_values_and_sources_contiguous(tmp_path):
    paths = {"coco": style_file(tmp_path, "coco", people=7), "aic": style_file(tmp_path, "aic", people=5)}
    merged = combine([_src(p, n) for n, p in paths.items()])
    inst, lay = merged.dataset.instances, merged.layout
    assert merged.source_index.tolist() == [0] * 7 + [1] * 5
    assert len(merged.dataset.images) == 6
    for report in merged.sources:
        doc = load(paths[report.name])
        lo, hi = report.annotation_range
        names = builtin_layout(report.layout).keypoints
        src = np.array([a["keypoints"] for a in doc["annotations"]], dtype=float).reshape(hi - lo, -1, 3)
        for s, name in enumerate(names):
            np.testing.assert_array_equal(inst.keypoints[lo:hi, lay.index(name)], src[:, s])
        np.testing.assert_array_equal(inst.boxes[lo:hi], [a["bbox"] for a in doc["annotations"]])
        assert merged.source_ids[lo:hi].tolist() == [a["id"] for a in doc["annotations"]]
    assert inst.ids.tolist() == list(range(1, 13))  # new ids, in input order


def test_union_appends_unmatched_keypoints_with_their_own_facts(tmp_path):
    sources = [_src(style_file(tmp_path, "coco"), "coco"), _src(style_file(tmp_path, "jhmdb"), "jhmdb")]
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


def test_union_contains_every_source_keypoint(tmp_path):
    names = ["coco", "crowdpose", "posetrack18", "jhmdb"]
    merged = combine([_src(style_file(tmp_path, n), n) for n in names])
    assert [s.layout for s in merged.sources] == names
    for s in merged.sources:
        assert s.eval_indices is not None, s.name  # every keypoint of every source has a place
        assert len(s.eval_indices) == len(s.mapping.source)
        assert len(set(s.eval_indices)) == len(s.eval_indices)


def test_area_filled_from_box_when_missing(tmp_path):
    path, images = raw_aic_file(tmp_path, people=9)
    merged = merge([_src(path, "aic", image_dir=images)])
    inst = merged.dataset.instances
    np.testing.assert_allclose(inst.areas, inst.boxes[:, 2] * inst.boxes[:, 3] * AREA_FACTOR)
    assert AREA_FACTOR == 0.53
    assert merged.sources[0].area_computed == 9


def test_area_kept_when_present(tmp_path):
    path = style_file(tmp_path, "coco")
    merged = merge([_src(path, "coco")])
    assert merged.dataset.instances.areas.tolist() == [a["area"] for a in load(path)["annotations"]]
    assert merged.sources[0].area_computed == 0


@pytest.mark.parametrize(
    ("flags", "not_written"),
    [
        ({}, {}),
        ({"drop_empty": True}, {"no_labelled_keypoints": 3}),  # the crowd region has none either
        ({"drop_crowd": True}, {"crowd": 1}),
        ({"drop_empty": True, "drop_crowd": True}, {"no_labelled_keypoints": 2, "crowd": 1}),
    ],
)
@pytest.mark.parametrize("build", [merge, combine])
def test_drop_options_count_reasons(tmp_path, build, flags, not_written):
    path = style_file(tmp_path, "coco", people=9, unlabelled=2, crowd=1)
    merged = build([_src(path, "coco")], **flags)
    s = merged.sources[0]
    assert s.not_written == not_written
    assert s.annotations_read == s.annotations_written + sum(s.not_written.values()) == 9
    assert len(merged.dataset.instances) == s.annotations_written


def test_drop_empty_counts_after_mapping(tmp_path):
    """A person whose only labelled keypoints have no place in the target counts as empty."""
    doc = json.loads(style_file(tmp_path, "aic", people=3, unlabelled=0).read_text())
    kp = [0] * 42
    kp[12 * 3 : 12 * 3 + 3] = [50, 60, 2]  # head_top only: coco has no such keypoint
    doc["annotations"][1]["keypoints"] = kp
    doc["annotations"][1]["num_keypoints"] = 1
    path = tmp_path / "head_top_only.json"
    path.write_text(json.dumps(doc))
    merged = merge([_src(path, "aic")], builtin_layout("coco"), drop_empty=True)
    assert merged.sources[0].not_written == {"no_labelled_keypoints": 1}
    assert merged.source_ids.tolist() == [doc["annotations"][i]["id"] for i in (0, 2)]


def test_duplicate_source_names_are_refused(tmp_path):
    src = _src(style_file(tmp_path, "coco"), "coco")
    with pytest.raises(UsageError, match="used twice"):
        merge([src, src])


# --- fidelity to MMPose's own files ------------------------------------------------------------------


def _reference(config):
    data = json.loads(REFERENCE.read_text())
    return next(d for d in data["datasets"] if d["config_file"] == config)


@needs_fixtures
def test_fidelity_on_mmpose_files(aic_raw_images):
    """MMPose's test_aic.json into coco equals KeypointConverter; coco + raw AIC gives coco_aic.py."""
    _check_aic_into_coco(fixture("aic/test_aic.json"))
    raw_aic = _src(AIC_RAW, "aic", image_dir=aic_raw_images)
    raw = merge([raw_aic], builtin_layout("coco")).dataset.instances.keypoints
    converted = merge([_src(fixture("aic/test_aic.json"), "aic")], builtin_layout("coco"))
    np.testing.assert_array_equal(raw, converted.dataset.instances.keypoints)
    merged = combine([_src(fixture("coco/test_coco.json"), "coco"), raw_aic])
    ref = _reference("configs/_base_/datasets/coco_aic.py")
    lay = merged.layout
    assert list(lay.keypoints) == [k["name"] for k in ref["keypoints"]]
    assert lay.flip_indices == ref["flip_indices"] and lay.skeleton_ids == ref["skeleton_ids"]
    assert list(lay.sigmas) == ref["sigmas"]
    assert list(lay.joint_weights[:18]) == ref["joint_weights"]
    assert [s.annotation_range for s in merged.sources] == [(0, 14), (14, 23)]


def _pairs(report) -> dict[str, object]:
    """Target name -> source name (or pair of names) of a source's mapping."""
    return {t: s for s, t in report.mapping.name_pairs()}


def test_combine_auto_plus_an_override_of_a_keypoint_the_union_lacks(tmp_path):
    coco = _src(style_file(tmp_path, "coco", people=4), "coco")
    aic = _src(
        style_file(tmp_path, "aic", people=5),
        "aic",
        mapping=["auto", [["left_shoulder", "right_shoulder"], "neck"]],
    )
    merged = combine([coco, aic])
    assert list(merged.layout.keypoints) == list(builtin_layout("coco_aic").keypoints)
    pairs = _pairs(merged.sources[1])
    assert pairs["neck"] == ["left_shoulder", "right_shoulder"] and pairs["head_top"] == "head_top"
    assert merged.sources[1].mapping.dropped == [builtin_layout("aic").index("neck")]
    inst, lay = merged.dataset.instances, merged.layout
    left, right, neck = (lay.index(n) for n in ("left_shoulder", "right_shoulder", "neck"))
    both = (inst.keypoints[4:, left, 2] > 0) & (inst.keypoints[4:, right, 2] > 0)
    np.testing.assert_allclose(
        inst.keypoints[4:, neck, :2][both],
        (inst.keypoints[4:, left, :2][both] + inst.keypoints[4:, right, :2][both]) / 2,
    )


def test_combine_auto_plus_an_override_named_by_a_synonym(tmp_path):
    mpii_path, images = mpii_file(tmp_path, images=2, people=3)
    coco = _src(style_file(tmp_path, "coco", people=4), "coco")
    mpii = _src(mpii_path, "mpii", image_dir=images, mapping=["auto", ["thorax", "neck"]])
    merged = combine([coco, mpii])
    names = list(merged.layout.keypoints)
    assert names[:17] == list(builtin_layout("coco").keypoints)
    assert "neck" in names and "upper_neck" not in names and "thorax" in names
    pairs = _pairs(merged.sources[1])
    assert pairs["neck"] == "thorax" and pairs["thorax"] == "thorax"
    assert merged.sources[1].mapping.dropped == [builtin_layout("mpii").index("upper_neck")]


def test_combine_an_override_naming_no_keypoint_is_refused(tmp_path):
    coco = _src(style_file(tmp_path, "coco"), "coco")
    aic = _src(style_file(tmp_path, "aic"), "aic", mapping=["auto", ["head_top", "chin"]])
    with pytest.raises(UsageError, match=r"entry 1 .*: target: union has no keypoint 'chin'"):
        combine([coco, aic])
