"""kpmerge.formats (the registry): which module reads a file, its layout, whether sizes are in the file."""

from __future__ import annotations

import json
from contextlib import nullcontext

import pytest

from kpmerge.errors import KpmergeError, UsageError
from kpmerge.formats import FORMATS, default_layout, detect_format, format_names, get_format, read_dataset
from kpmerge.layouts import builtin_layout

COCO = {
    "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "keypoints": [1, 1, 2] * 17, "bbox": [0, 0, 5, 5]}
    ],
    "categories": [{"id": 1, "name": "person", "keypoints": list(builtin_layout("coco").keypoints)}],
}
WHOLEBODY = json.loads(json.dumps(COCO))
WHOLEBODY["annotations"][0] |= {
    "foot_kpts": [1, 1, 2] * 6,
    "face_kpts": [1, 1, 2] * 68,
    "lefthand_kpts": [1, 1, 2] * 21,
    "righthand_kpts": [1, 1, 2] * 21,
}
AIC = [
    {
        "image_id": "x",
        "keypoint_annotations": {"human1": [1, 1, 1] * 14},
        "human_annotations": {"human1": [0, 0, 5, 5]},
    }
]
MPII = [{"image": "a.jpg", "center": [5, 5], "scale": 1.0, "joints": [[1, 1]] * 16, "joints_vis": [1] * 16}]


@pytest.mark.parametrize(
    ("doc", "name", "layout", "k", "raises"),
    [
        (COCO, "coco", None, 17, nullcontext()),
        (WHOLEBODY, "coco_wholebody", "coco_wholebody", 133, nullcontext()),
        (AIC, "aic", "aic", 14, nullcontext()),
        ([], "aic", "aic", 14, nullcontext()),
        (MPII, "mpii", "mpii", 16, nullcontext()),
        ([{"a": 1}], None, None, 0, pytest.raises(KpmergeError, match="neither raw AI Challenger")),
        ("text", None, None, 0, pytest.raises(KpmergeError, match="expected an object")),
    ],
)
def test_detect_and_read_through_the_registry(doc, name, layout, k, raises, tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps(doc))
    with raises:
        assert detect_format(path.read_bytes(), path) == name
        ds = read_dataset(path)
        assert ds.format == name and ds.instances.k == k
        assert default_layout(name) == layout == get_format(name).layout


def test_registry_lists_each_format_once_with_sizes_flag():
    assert sorted(f.name for f in FORMATS) == sorted(format_names())
    assert {f.name: f.sizes_in_file for f in FORMATS} == {
        "coco": True,
        "coco_wholebody": True,
        "aic": False,
        "mpii": False,
        "yolo": False,
    }
    assert default_layout("kpmerge_output") is None


def test_unknown_format_and_misplaced_image_folder_are_usage_errors(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps(COCO))
    known = r"\(known: coco, aic, mpii, coco_wholebody, yolo\)"
    with pytest.raises(UsageError, match=r"unknown format 'yaml' " + known):
        read_dataset(path, format="yaml")
    with pytest.raises(UsageError, match="only used for raw AIC and MPII"):
        read_dataset(path, image_dir=tmp_path)
    aic = tmp_path / "aic.json"
    aic.write_text(json.dumps(AIC))
    with pytest.raises(UsageError, match="image folder not found"):
        read_dataset(aic, image_dir=tmp_path / "nope")
    with pytest.raises(KpmergeError, match=r"x\.jpg: image not found"):  # the folder is used for sizes
        read_dataset(aic, image_dir=tmp_path)


def test_a_dataset_yaml_is_read_by_path_and_takes_no_image_folder(tmp_path):
    from kpmerge.formats import path_format

    (tmp_path / "data.yaml").write_text("path: .\ntrain: images\nkpt_shape: [2, 3]\nnames: {0: person}\n")
    assert path_format(tmp_path) == path_format(tmp_path / "data.yaml") == "yolo"
    assert path_format(tmp_path / "in.json") is None
    with pytest.raises(UsageError, match="not used for YOLO datasets"):
        read_dataset(tmp_path, image_dir=tmp_path)
    with pytest.raises(UsageError, match="only used for YOLO datasets"):
        read_dataset(tmp_path / "in.json", split="val")
