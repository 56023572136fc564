from contextlib import nullcontext

import numpy as np
import pytest

from kpmerge.errors import UsageError
from kpmerge.layouts import builtin_layout
from kpmerge.mapping import apply_mapping, build_mapping

# The AIC -> COCO mapping MMPose configs give KeypointConverter (e.g. RTMPose's body8 recipes).
MMPOSE_AIC_TO_COCO = [
    (0, 6),
    (1, 8),
    (2, 10),
    (3, 5),
    (4, 7),
    (5, 9),
    (6, 12),
    (7, 14),
    (8, 16),
    (9, 11),
    (10, 13),
    (11, 15),
]


def test_auto_aic_to_coco_is_the_mmpose_mapping():
    m = build_mapping(builtin_layout("aic"), builtin_layout("coco"), "auto")
    assert sorted((term[0], t) for term, t in m.pairs) == sorted(MMPOSE_AIC_TO_COCO)
    assert [m.source.keypoints[i] for i in m.dropped] == ["head_top", "neck"]
    assert m.unmapped == [0, 1, 2, 3, 4]
    assert m.eval_indices is None
    assert m.defined == list(range(5, 17))


# Expected `auto` pairs (source name -> coco name) for every COCO-style fixture layout merged into coco.
EXPECTED_INTO_COCO = {
    "crowdpose": {n: n for n in builtin_layout("crowdpose").keypoints[:12]},
    "halpe": {n: n for n in builtin_layout("coco").keypoints},
    "ochuman": {n: n for n in builtin_layout("coco").keypoints},
    "posetrack18": {n: n for n in builtin_layout("coco").keypoints if n not in ("left_eye", "right_eye")},
    "jhmdb": {n: n for n in builtin_layout("coco").keypoints[5:]},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_INTO_COCO))
def test_auto_into_coco(name):
    src, coco = builtin_layout(name), builtin_layout("coco")
    m = build_mapping(src, coco, "auto")
    assert dict(m.name_pairs()) == EXPECTED_INTO_COCO[name]


@pytest.mark.parametrize(
    ("source", "target", "aliases"),
    [
        ("crowdpose", "coco_aic", [("top_head", "head_top")]),
        ("mpii", "coco_aic", [("upper_neck", "neck")]),
        ("posetrack18", "halpe26", [("head_top", "head")]),
        ("aic", "halpe26", [("head_top", "head")]),
        ("aic", "coco_aic", []),
    ],
)
def test_auto_reports_synonyms(source, target, aliases):
    m = build_mapping(builtin_layout(source), builtin_layout(target), "auto")
    assert list(m.aliases) == aliases
    for a, b in aliases:
        assert [a, b] in m.name_pairs()


@pytest.mark.parametrize(
    ("spec", "expect", "fragment"),
    [
        ([[0, 0], ["left_eye", 1], [2, "right_eye"]], nullcontext(), None),
        ([[0, 17]], pytest.raises(UsageError), "index 17 is out of range 0..16 of coco"),
        ([[-1, 0]], pytest.raises(UsageError), "index -1 is out of range"),
        ([[0, 0], [1, 0]], pytest.raises(UsageError), "target 'nose' is already written by entry 0"),
        ([["elbow", 0]], pytest.raises(UsageError), "coco has no keypoint 'elbow'"),
        ([["left_shoulder", "right_shoulder"]], pytest.raises(UsageError), "not flip-consistent"),
        ([[[1, 2, 3], 0]], pytest.raises(UsageError), "one keypoint or a pair"),
        ([[0]], pytest.raises(UsageError), "must be [source, target]"),
        ("by-name", pytest.raises(UsageError), "must be 'auto'"),
    ],
)
def test_explicit_mapping_errors_name_the_entry(spec, expect, fragment):
    coco = builtin_layout("coco")
    with expect as err:
        build_mapping(coco, coco, spec)
    if fragment:
        assert fragment in str(err.value)


def test_flip_error_names_both_entries():
    coco = builtin_layout("coco")
    with pytest.raises(UsageError) as err:
        build_mapping(coco, coco, [["left_shoulder", "right_shoulder"]])
    assert "left_shoulder -> right_shoulder" in str(err.value)
    assert "right_shoulder maps to nothing" in str(err.value)
    with pytest.raises(UsageError, match="its mirror right_shoulder maps to left_elbow"):
        build_mapping(coco, coco, [["left_shoulder", "left_shoulder"], ["right_shoulder", "left_elbow"]])


def test_midpoint_semantics():
    coco, coco_aic = builtin_layout("coco"), builtin_layout("coco_aic")
    spec = [[i, i] for i in range(17)] + [[["left_shoulder", "right_shoulder"], "neck"]]
    m = build_mapping(coco, coco_aic, spec)
    kp = np.zeros((3, 17, 3))
    kp[:, 5] = [[10, 20, 2], [10, 20, 1], [10, 20, 2]]
    kp[:, 6] = [[30, 40, 1], [30, 40, 2], [0, 0, 0]]
    out = apply_mapping(kp, m)
    assert out.shape == (3, 19, 3)
    np.testing.assert_array_equal(out[:, 18], [[20, 30, 1], [20, 30, 1], [0, 0, 0]])
    np.testing.assert_array_equal(out[:, :17], kp)
    np.testing.assert_array_equal(out[:, 17], 0)


def test_apply_copies_exactly_and_zeroes_unmapped():
    aic, coco = builtin_layout("aic"), builtin_layout("coco")
    m = build_mapping(aic, coco)
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(0, 500, (4, 14, 2)), rng.integers(0, 3, (4, 14, 1))], axis=2)
    out = apply_mapping(kp, m)
    for s, t in MMPOSE_AIC_TO_COCO:
        np.testing.assert_array_equal(out[:, t], kp[:, s])
    np.testing.assert_array_equal(out[:, :5], 0)


@pytest.mark.parametrize(("source", "target"), [("aic", "coco"), ("coco", "coco_aic"), ("coco", "aic")])
def test_apply_into_a_used_array_overwrites_every_element(source, target):
    m = build_mapping(builtin_layout(source), builtin_layout(target))
    rng = np.random.default_rng(1)
    kp = rng.uniform(0, 500, (5, len(m.source), 3))
    out = np.full((5, len(m.target), 3), 7.0)
    assert apply_mapping(kp, m, out=out) is out
    np.testing.assert_array_equal(out, apply_mapping(kp, m))
    assert not (out == 7.0).any()


def test_auto_plus_overrides_replaces_what_auto_filled_and_keeps_the_rest():
    mpii, aic = builtin_layout("mpii"), builtin_layout("aic")
    auto = build_mapping(mpii, aic, "auto")
    assert ["upper_neck", "neck"] in auto.name_pairs() and auto.aliases == (("upper_neck", "neck"),)
    m = build_mapping(mpii, aic, ["auto", ["thorax", "neck"]])
    want = [p for p in auto.name_pairs() if p[1] != "neck"] + [["thorax", "neck"]]
    assert sorted(m.name_pairs(), key=lambda p: p[1]) == sorted(want, key=lambda p: p[1])
    assert m.aliases == ()  # the synonym match was replaced
    assert [mpii.keypoints[i] for i in m.dropped] == ["pelvis", "upper_neck"]


def test_auto_plus_overrides_adds_targets_auto_left_and_checks_flips():
    coco, aic = builtin_layout("coco"), builtin_layout("aic")
    m = build_mapping(coco, aic, ["auto", [["left_shoulder", "right_shoulder"], "neck"]])
    assert m.unmapped == [aic.index("head_top")]
    assert [p for p in m.name_pairs() if p[1] == "neck"] == [[["left_shoulder", "right_shoulder"], "neck"]]
    with pytest.raises(UsageError, match="not flip-consistent"):
        build_mapping(coco, aic, ["auto", ["left_hip", "right_hip"]])
    with pytest.raises(UsageError, match=r"entry 2 .* already written by entry 1"):
        build_mapping(coco, aic, ["auto", ["nose", "neck"], ["left_eye", "neck"]])
