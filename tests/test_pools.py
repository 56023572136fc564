from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from kpmerge.inspect import inspect
from kpmerge.instances import Instances
from kpmerge.layouts import builtin_layout
from kpmerge.pools import trainable_mask

W, H = 100, 80
"""Every image of the test file is 100 x 80."""

GOOD_KP = [20, 30, 2] + [0, 0, 0] * 16


def _kp(*triplets: float) -> list[float]:
    flat = [float(t) for t in triplets]
    return flat + [0.0] * (51 - len(flat))


# (annotation fields, kept by MMPose 1.3's top-down CocoDataset)
CASES = [
    ({"bbox": [10, 10, 30, 40]}, True),
    ({"bbox": [150, 10, 20, 20]}, False),  # right of the image: clipped to x = 99 .. 99
    ({"bbox": [90, 10, 30, 30]}, True),  # partly outside: clipped to 90 .. 99
    ({"bbox": [-50, 10, 20, 20]}, False),  # left of the image: clipped to 0 .. 0
    ({"bbox": [-10, -10, 30, 30]}, True),  # partly outside, top left
    ({"bbox": [10, 79.5, 10, 10]}, False),  # below the last row: clipped to y = 79 .. 79
    ({"bbox": [10, 10, 1e-9, 10]}, False),  # positive width, but 0 once in float32 as MMPose stores it
    ({"bbox": [10, 10, 0, 10]}, False),  # empty box
    ({"keypoints": _kp(0, 0, 2)}, False),  # a labelled keypoint at (0, 0): the largest coordinate is 0
    ({"keypoints": _kp(-5, -3, 2)}, False),  # every coordinate negative
    ({"keypoints": _kp()}, False),  # no labelled keypoint
    ({"iscrowd": 1}, False),
    ({"bbox": [98.5, 10, 5, 10]}, True),  # clipped to 98.5 .. 99
]


def _coco(cases: list[tuple[dict, bool]]) -> dict:
    images = [{"id": i + 1, "file_name": f"{i}.jpg", "width": W, "height": H} for i in range(len(cases))]
    anns = []
    for i, (fields, _) in enumerate(cases):
        ann = {"id": 10 + i, "image_id": i + 1, "category_id": 1, "bbox": [10, 10, 30, 40]}
        ann |= {"keypoints": GOOD_KP, "iscrowd": 0, "area": 100.0}
        ann |= fields
        ann["num_keypoints"] = sum(1 for v in ann["keypoints"][2::3] if v > 0)
        anns.append(ann)
    category = {"id": 1, "name": "person", "keypoints": list(builtin_layout("coco").keypoints)}
    return {"images": images, "annotations": anns, "categories": [category]}


def test_pool_is_what_mmpose_keeps(tmp_path: Path):
    src = tmp_path / "edge.json"
    src.write_text(json.dumps(_coco(CASES)))
    other = tmp_path / "plain.json"
    other.write_text(json.dumps(_coco(CASES[:1] * 3)))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["merge", f"edge={src}", f"plain={other}", "-o", str(out), "-q"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    pools = [s["pool"] for s in manifest["sources"]]
    assert pools == [[0, 2, 4, 12], [13, 14, 15]]
    assert pools[0] == [i for i, (_, kept) in enumerate(CASES) if kept]


def _one(keypoints: list[float], bbox: list[float], num_keypoints: int, iscrowd: int = 0) -> Instances:
    return Instances(
        keypoints=np.array(keypoints, dtype=np.float64).reshape(1, -1, 3),
        boxes=np.array([bbox], dtype=np.float64),
        areas=[1.0],
        iscrowd=[iscrowd],
        image_index=[0],
        ids=[1],
        num_keypoints=[num_keypoints],
        extra=[b""],
    )


@pytest.mark.parametrize(
    ("keypoints", "bbox", "num_keypoints", "size", "kept"),
    [
        ([5, 5, 2, 0, 0, 0], [0, 0, 10, 10], 1, (20, 20), True),
        ([5, 5, 2, 0, 0, 0], [0, 0, 10, 10], 0, (20, 20), False),  # num_keypoints as the file says
        ([5, 5, 0, 0, 0, 0], [0, 0, 10, 10], 3, (20, 20), True),  # the same: MMPose trusts it
        ([0, 0, 0, 0, 0, 0], [0, 0, 10, 10], 3, (20, 20), False),  # largest coordinate 0
        ([0, 0, 2, 0, 0, 0], [0, 0, 10, 10], 1, (20, 20), False),  # labelled, but at (0, 0)
        ([0, 5, 2, 0, 0, 0], [0, 0, 10, 10], 1, (20, 20), True),  # y > 0 is enough
        ([5, 5, 2, 0, 0, 0], [0, 0, 10, 10], -1, (20, 20), True),  # absent: keypoints with x or y != 0
        ([0, 0, 2, 0, 0, 0], [0, 0, 10, 10], -1, (20, 20), False),  # absent, and none off (0, 0)
        ([5, 5, 2, 0, 0, 0], [30, 0, 10, 10], 1, (20, 20), False),
        ([5, 5, 2, 0, 0, 0], [30, 0, 10, 10], 1, (np.nan, np.nan), True),  # size unknown: clipped at 0 only
        ([5, 5, 2, 0, 0, 0], [-20, 0, 10, 10], 1, (np.nan, np.nan), False),
    ],
)
def test_trainable_mask(keypoints, bbox, num_keypoints, size, kept):
    inst = _one(keypoints, bbox, num_keypoints)
    mask = trainable_mask(inst, np.array([size[0]], dtype=float), np.array([size[1]], dtype=float))
    assert mask.tolist() == [kept]


def test_inspect_counts_the_same_pool(tmp_path: Path):
    src = tmp_path / "edge.json"
    src.write_text(json.dumps(_coco(CASES)))
    report = inspect([src])
    assert report.files[0].trainable == sum(kept for _, kept in CASES)
    out = tmp_path / "out"
    CliRunner().invoke(cli, ["merge", str(src), "-o", str(out), "-q"], catch_exceptions=False)
    folder = inspect([out]).files[0]
    assert folder.trainable == sum(kept for _, kept in CASES)
    assert folder.sources[0].trainable == folder.trainable
