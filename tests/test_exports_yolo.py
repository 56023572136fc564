"""The YOLO export, loaded back with Ultralytics' own rules (no ultralytics dependency)."""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import yaml

from kpmerge.build import Source, combine, merge
from kpmerge.errors import UsageError
from kpmerge.exports.yolo import label_path, yolo_export, yolo_files
from kpmerge.instances import Dataset, Images, Instances
from kpmerge.job import SourceSpec, load_source
from kpmerge.layouts import builtin_layout
from tests.conftest import AIC_RAW, fixture, needs_fixtures

# --- Ultralytics' loading rules, re-implemented from ultralytics/data/utils.py and data/base.py ---------


def img2label_paths(img_paths: list[str]) -> list[str]:
    """ultralytics.data.utils.img2label_paths."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return [sb.join(x.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt" for x in img_paths]


def load_yolo(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Parse data.yaml as Ultralytics does and read every image's label rows, checked like verify_image_label.

    Returns the yaml and, per image file (relative to images/), its (n, 5 + 3K) float32 label array.
    """
    data = yaml.safe_load((folder / "data.yaml").read_text("utf-8"))
    for key in ("train", "val"):
        assert key in data, f"'{key}:' key missing"
    assert "names" in data
    root = Path(data.get("path") or folder)  # no path: the yaml's folder
    nkpt, ndim = data["kpt_shape"]
    nc = len(data["names"])
    flip_idx = data["flip_idx"]
    assert len(flip_idx) == nkpt and sorted(flip_idx) == list(range(nkpt))
    listed = root / data["train"]
    parent = str(listed.parent) + os.sep
    lines = listed.read_text().splitlines()
    im_files = [x.replace("./", parent) if x.startswith("./") else x for x in lines]
    out = {}
    for im, lb in zip(im_files, img2label_paths(im_files), strict=True):
        assert os.path.isfile(lb), f"label missing for {im}"
        rows = [x.split() for x in Path(lb).read_text("utf-8").strip().splitlines() if len(x)]
        lab = (
            np.array(rows, dtype=np.float32).reshape(len(rows), -1)
            if rows
            else np.zeros((0, 5 + nkpt * ndim))
        )
        if len(lab):
            assert lab.shape[1] == 5 + nkpt * ndim
            points = lab[:, 5:].reshape(-1, ndim)[:, :2]
            assert points.max() <= 1.01, "non-normalized or out of bounds coordinates"
            assert lab.min() >= -0.01, "negative class labels or coordinate"
            assert lab[:, 0].max() < nc
            assert len(np.unique(lab, axis=0)) == len(lab), "duplicate rows would be removed"
        out[im.split(f"{os.sep}images{os.sep}", 1)[1]] = lab
    return data, out


def _write(files: dict[str, bytes], root: Path) -> Path:
    for name, blob in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(blob)
    return root / "yolo"


# --- builders --------------------------------------------------------------------------------------------


def _source(name, file_names, sizes, kps, boxes, image_index, iscrowd=None, layout="coco"):
    lay = builtin_layout(layout)
    n = len(kps)
    images = Images(
        ids=list(range(1, len(file_names) + 1)),
        file_names=file_names,
        widths=[s[0] for s in sizes],
        heights=[s[1] for s in sizes],
        extra=[b""] * len(file_names),
    )
    inst = Instances(
        keypoints=np.asarray(kps, dtype=float).reshape(n, len(lay), 3),
        boxes=np.asarray(boxes, dtype=float).reshape(n, 4),
        areas=[np.nan] * n,
        iscrowd=iscrowd or [0] * n,
        image_index=image_index,
        ids=list(range(1, n + 1)),
        num_keypoints=[-1] * n,
        extra=[b""] * n,
    )
    return Source(name=name, dataset=Dataset(images=images, instances=inst), layout=lay)


def _kp(points: dict[int, tuple[float, float, int]], k: int = 17) -> list[list[float]]:
    kp = [[0.0, 0.0, 0] for _ in range(k)]
    for i, p in points.items():
        kp[i] = list(p)
    return kp


# --- tests -----------------------------------------------------------------------------------------------


@needs_fixtures
def test_fixture_round_trip(tmp_path):
    merged = combine(
        [
            load_source(SourceSpec(fixture("coco/test_coco.json"), name="coco")),
            load_source(SourceSpec(fixture("aic/test_aic.json"), name="aic")),
        ]
    )
    data, labels = load_yolo(_write(yolo_files(merged), tmp_path))
    lay = merged.layout
    assert data["kpt_shape"] == [19, 3]
    assert data["flip_idx"] == lay.flip_indices
    assert data["names"] == {0: "person"}
    assert data["train"] == data["val"] == "train.txt"
    images, inst = merged.dataset.images, merged.dataset.instances
    assert sorted(labels) == sorted(images.file_names)
    for row, name in enumerate(images.file_names):
        lab = labels[name]
        mine = inst[inst.image_index == row]
        assert len(lab) == len(mine)
        w, h = images.widths[row], images.heights[row]
        kp = lab[:, 5:].reshape(len(lab), 19, 3).astype(np.float64)
        labelled = mine.keypoints[:, :, 2] > 0
        np.testing.assert_array_equal(kp[:, :, 2], mine.keypoints[:, :, 2])
        np.testing.assert_allclose(kp[:, :, 0] * w, np.where(labelled, mine.keypoints[:, :, 0], 0), atol=1e-3)
        np.testing.assert_allclose(kp[:, :, 1] * h, np.where(labelled, mine.keypoints[:, :, 1], 0), atol=1e-3)
        box = lab[:, 1:5].astype(np.float64) * [w, h, w, h]
        x1, y1 = np.clip(mine.boxes[:, 0], 0, w), np.clip(mine.boxes[:, 1], 0, h)
        x2 = np.clip(mine.boxes[:, 0] + mine.boxes[:, 2], 0, w)
        y2 = np.clip(mine.boxes[:, 1] + mine.boxes[:, 3], 0, h)
        np.testing.assert_allclose(
            box, np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1), atol=1e-3
        )


def test_rules_crowd_box_and_outside_keypoints(tmp_path):
    kps = [
        _kp({0: (10, 20, 2), 1: (-5, 20, 2), 2: (30, 40, 1)}),  # keypoint 1 is left of the image
        _kp({0: (50, 50, 2)}),  # crowd
        _kp({0: (50, 50, 2)}),  # box entirely outside: empty after clipping
        _kp({}),  # no labelled keypoint: kept as a box
    ]
    boxes = [[-10, 10, 60, 50], [0, 0, 10, 10], [200, 0, 10, 10], [10, 10, 20, 20]]
    src = _source("s", ["a.jpg"], [(100, 80)], kps, boxes, [0, 0, 0, 0], iscrowd=[0, 1, 0, 0])
    result = yolo_export(merge([src]))
    assert result.not_written == {"crowd": 1, "empty_box": 1}
    assert result.keypoints_dropped == 1
    assert result.rows == 2
    rows = [r.split() for r in result.files["labels/a.txt"].decode().splitlines()]
    assert rows[0][:5] == ["0", "0.25", "0.4375", "0.5", "0.625"]  # clipped to x 0..50
    assert rows[0][5:14] == ["0.1", "0.25", "2", "0", "0", "0", "0.3", "0.5", "1"]  # 1 is outside
    assert rows[1][5:] == ["0", "0", "0"] * 17
    assert "1 crowd, 1 empty_box" in result.files["data.yaml"].decode()
    _, labels = load_yolo(_write(yolo_files(merge([src])), tmp_path))
    assert labels["a.jpg"].shape == (2, 5 + 17 * 3)


@pytest.mark.parametrize(
    ("file_name", "expected", "context"),
    [
        ("x.jpg", "labels/x.txt", nullcontext()),
        ("coco/train2017/x.JPG", "labels/coco/train2017/x.txt", nullcontext()),
        (
            "images/val/012834_mpii_test/000000.jpg",
            "images/labels/val/012834_mpii_test/000000.txt",
            nullcontext(),
        ),
        ("a.b/c.png", "labels/a.b/c.txt", nullcontext()),
        ("./coco/x.jpg", "labels/coco/x.txt", nullcontext()),
        ("../x.jpg", None, pytest.raises(UsageError, match="relative path inside")),
        ("/abs/x.jpg", None, pytest.raises(UsageError, match="relative path inside")),
        ("x.gif", None, pytest.raises(UsageError, match="not an image type")),
        ("noext", None, pytest.raises(UsageError, match="not an image type")),
    ],
)
def test_label_path(file_name, expected, context):
    with context:
        got = label_path(file_name)
        assert got == expected
        # The same place Ultralytics computes for the listed image.
        assert img2label_paths([f"/root/yolo/images/{file_name.removeprefix('./')}"]) == [f"/root/yolo/{got}"]


def test_folders_in_file_names_load_back(tmp_path):
    names = ["images/val/v1/000000.jpg", "coco/a.jpg"]
    src = _source("s", names, [(100, 100)] * 2, [_kp({0: (10, 10, 2)}), _kp({})], [[0, 0, 5, 5]] * 2, [0, 1])
    _, labels = load_yolo(_write(yolo_files(merge([src])), tmp_path))
    assert sorted(labels) == sorted(names)
    assert len(labels["images/val/v1/000000.jpg"]) == 1


@pytest.mark.parametrize(
    ("names", "sizes", "message"),
    [
        (
            ["a.jpg", "b.jpg"],
            [(100, 80), (np.nan, np.nan)],
            r"source s has 1 of 2 images without width/height",
        ),
        (["a.jpg", "a.png"], [(100, 80)] * 2, r"would share the label file labels/a.txt"),
    ],
)
def test_errors(names, sizes, message):
    src = _source("s", names, sizes, [_kp({})], [[0, 0, 5, 5]], [0])
    with pytest.raises(UsageError, match=message):
        yolo_export(merge([src]))


@needs_fixtures
def test_raw_aic_without_sizes_names_the_source():
    merged = combine(
        [
            load_source(SourceSpec(fixture("coco/test_coco.json"), name="coco")),
            load_source(SourceSpec(AIC_RAW, name="aic")),
        ]
    )
    with pytest.raises(UsageError, match="source aic has 3 of 3 images without width/height"):
        yolo_files(merged)
