import json
from contextlib import nullcontext

import pytest

from kpmerge.errors import KpmergeError, UsageError
from kpmerge.layouts import (
    builtin_layout,
    builtin_layout_names,
    detect_layout,
    layout_from_dict,
    load_layout,
    normalize_name,
)
from kpmerge.synth_styles import synth_style
from tests.conftest import COCO_STYLE, REFERENCE, fixture, needs_fixtures

REF_NAMES = {"configs/_base_/datasets/coco_aic.py": "coco_aic"}


def _reference():
    data = json.loads(REFERENCE.read_text())
    return {REF_NAMES.get(d["config_file"], d["name"]): d for d in data["datasets"]}


MMPOSE_REFERENCED = [
    "coco",
    "aic",
    "coco_aic",
    "crowdpose",
    "mpii",
    "halpe26",
    "halpe",
    "posetrack18",
    "jhmdb",
    "ochuman",
]


def _check_against_reference(name, ref):
    lay = builtin_layout(name)
    assert list(lay.keypoints) == [k["name"] for k in ref["keypoints"]]
    assert lay.flip_indices == ref["flip_indices"]
    assert lay.flip_pairs == ref["flip_pairs"]
    assert lay.skeleton_ids == ref["skeleton_ids"]
    assert list(lay.sigmas) == ref["sigmas"]
    assert lay.upper_body_ids == ref["upper_body_ids"]
    assert lay.lower_body_ids == ref["lower_body_ids"]
    if name == "coco_aic":  # upstream has 18 weights for 19 keypoints; ours has one per keypoint
        assert len(ref["joint_weights"]) == 18
        assert list(lay.joint_weights) == ref["joint_weights"] + [1.5]
    else:
        assert list(lay.joint_weights) == ref["joint_weights"]
    assert len(lay.joint_weights) == len(lay.sigmas) == len(lay)


@needs_fixtures
def test_builtin_layouts_match_mmpose_reference_and_files():
    """Every layout MMPose ships a config for equals MMPose's metainfo (reference_skeletons.json), and
    MMPose's test files are recognised as their layouts."""
    refs = _reference()
    failed = []
    for name in MMPOSE_REFERENCED:
        try:
            _check_against_reference(name, refs[name])
        except AssertionError as exc:
            failed.append(f"{name}: {exc}")
    assert failed == []
    for rel in COCO_STYLE:
        data = json.loads(fixture(rel).read_text())
        names = data["categories"][0]["keypoints"] or None
        k = len(data["annotations"][0]["keypoints"]) // 3
        expected = "coco" if rel.startswith("ochuman") else rel.split("/")[0]  # identical content: coco
        assert detect_layout(names, k).name == expected, rel


def _layout(**changes):
    base = {
        "name": "t",
        "keypoints": [{"name": "a", "swap": "b"}, {"name": "b", "swap": "a"}, {"name": "c"}],
        "skeleton": [["a", "c"]],
        "joint_weights": [1, 1, 1],
        "sigmas": [0.1, 0.1, 0.1],
    }
    base.update(changes)
    return base


@pytest.mark.parametrize(
    ("data", "expect", "fragment"),
    [
        (_layout(), nullcontext(), None),
        (_layout(keypoints=["a", "A", "c"]), pytest.raises(UsageError), "used twice"),
        (
            _layout(keypoints=[{"name": "a", "swap": "x"}, "b", "c"]),
            pytest.raises(UsageError),
            "not a keypoint",
        ),
        (
            _layout(
                keypoints=[{"name": "a", "swap": "b"}, {"name": "b", "swap": "c"}, {"name": "c", "swap": "b"}]
            ),
            pytest.raises(UsageError),
            "swaps with",
        ),
        (_layout(skeleton=[["a", "zz"]]), pytest.raises(UsageError), "'zz'"),
        (_layout(sigmas=[0.1, 0.1]), pytest.raises(UsageError), "sigmas has 2 entries for 3 keypoints"),
        (_layout(joint_weights=[1, 1, 1, 1]), pytest.raises(UsageError), "joint_weights has 4 entries"),
        (_layout(sigmas=[0.1, -1, 0.1]), pytest.raises(UsageError), "sigmas[1]"),
        ([1, 2], pytest.raises(UsageError), "expected a JSON object"),
    ],
)
def test_layout_validation(data, expect, fragment):
    with expect as err:
        layout_from_dict(data)
    if fragment:
        assert fragment in str(err.value)


def test_layout_round_trips_through_its_json_shape():
    for name in builtin_layout_names():
        lay = builtin_layout(name)
        assert layout_from_dict(lay.to_dict()) == lay


def test_load_layout_from_file(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_layout(name="mine")))
    assert load_layout(path).name == "mine"
    with pytest.raises(UsageError, match="unknown layout 'nope'"):
        load_layout("nope")


@pytest.mark.parametrize(
    ("name", "expected"), [("Right Shoulder", "right_shoulder"), ("head-top", "head_top"), (" Neck ", "neck")]
)
def test_normalize_name(name, expected):
    assert normalize_name(name) == expected


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("coco", "coco"),
        ("ochuman", "coco"),  # identical content to coco: the earlier one wins
        ("aic", "aic"),  # 'Right Shoulder' ... 'Head Top', 'Neck'
        ("crowdpose", "crowdpose"),  # 'head' stands for top_head
        ("posetrack18", "posetrack18"),
        ("jhmdb", "jhmdb"),
        ("halpe", "halpe"),  # no names: by K = 136
    ],
)
def test_detect_layout_on_each_datasets_names(style, expected):
    data = synth_style(style)
    names = data["categories"][0]["keypoints"] or None
    k = len(data["annotations"][0]["keypoints"]) // 3
    assert detect_layout(names, k).name == expected


@pytest.mark.parametrize(("k", "listed"), [(17, "coco, posetrack18"), (14, "aic, crowdpose")])
def test_detect_layout_by_k_alone_lists_candidates_when_ambiguous(k, listed):
    with pytest.raises(KpmergeError, match=f"fit several layouts \\({listed}\\)"):
        detect_layout(None, k)


def test_detect_layout_unknown_names():
    with pytest.raises(KpmergeError, match="no built-in layout fits"):
        detect_layout(["a", "b"], 2)
