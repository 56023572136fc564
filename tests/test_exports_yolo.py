"""The YOLO export, loaded back with Ultralytics' own rules (no ultralytics dependency here; the
comparisons with the real Ultralytics are in tests/trainers/test_ultralytics_yolo.py)."""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from kpmerge.build import Source, combine, merge
from kpmerge.errors import UsageError
from kpmerge.exports.yolo import image_path, label_path, yolo_export, yolo_files
from kpmerge.instances import Dataset, Images, Instances
from kpmerge.job import SourceSpec, load_source
from kpmerge.layouts import builtin_layout
from tests.synthfiles import raw_aic_file, style_file

# --- Ultralytics' loading rules, re-implemented from ultralytics/data/utils.py and data/base.py ---------


def img2label_paths(img_paths: list[str]) -> list[str]:
    """ultralytics.data.utils.img2label_paths."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return [sb.join(x.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt" for x in img_paths]


def load_yolo(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Parse data.yaml as Ultralytics does and read every image's label rows, checked like verify_image_label.

    Returns the yaml and, per image file name (as exported), its (n, 5 + 3K) float32 label array.
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
    im_files = [x.replace("./", parent, 1) if x.startswith("./") else x for x in lines]
    out = {}
    for im, lb in zip(im_files, img2label_paths(im_files), strict=True):
        assert os.path.isfile(lb), f"label missing for {im}"
        assert Path(folder).resolve() in Path(lb).resolve().parents
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
            assert lab.min() >= 0 or (lab.min() >= -0.01 and lab[:, 3:5].min() >= 0), "negative values"
            assert lab[:, 0].max() < nc
        rel = Path(im).relative_to(folder).as_posix()
        out[rel.removeprefix("images/").removeprefix("nested/")] = lab
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


def test_round_trip(tmp_path):
    merged = combine(
        [
            load_source(SourceSpec(style_file(tmp_path / "in", "coco", people=9, crowd=1), name="coco")),
            load_source(SourceSpec(style_file(tmp_path / "in", "aic", people=7), name="aic")),
        ]
    )
    data, labels = load_yolo(_write(yolo_files(merged), tmp_path))
    lay = merged.layout
    assert data["kpt_shape"] == [19, 3]
    assert data["flip_idx"] == lay.flip_indices
    assert data["names"] == {0: "person"}
    assert data["kpt_names"] == {0: list(lay.keypoints)}
    assert data["train"] == data["val"] == "train.txt"
    images, inst = merged.dataset.images, merged.dataset.instances
    assert sorted(labels) == sorted(images.file_names)
    for row, name in enumerate(images.file_names):
        lab = labels[name]
        mine = inst[
            (inst.image_index == row) & (inst.iscrowd == 0) & (inst.keypoints[:, :, 2] > 0).any(axis=1)
        ]
        assert len(lab) == len(mine)
        w, h = images.widths[row], images.heights[row]
        kp = lab[:, 5:].reshape(len(lab), 19, 3).astype(np.float64)
        np.testing.assert_array_equal(kp[:, :, 2], mine.keypoints[:, :, 2])
        np.testing.assert_allclose(kp[:, :, 0] * w, mine.keypoints[:, :, 0], atol=1e-3)
        np.testing.assert_allclose(kp[:, :, 1] * h, mine.keypoints[:, :, 1], atol=1e-3)
        box = lab[:, 1:5].astype(np.float64) * [w, h, w, h]
        b = mine.boxes
        np.testing.assert_allclose(
            box, np.stack([b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2, b[:, 2], b[:, 3]], 1), atol=1e-3
        )


def test_rows_as_ultralytics_convert_coco_writes_them(tmp_path):
    kps = [
        _kp({0: (10, 20, 2), 2: (30, 40, 1), 4: (33.333, 7, 2)}),  # box partly outside: not clipped
        _kp({0: (50, 50, 2)}),  # crowd
        _kp({0: (50, 50, 2)}),  # box of width 0
        _kp({}),  # no labelled keypoint (COCO evaluation ignores it)
        _kp(
            {0: (10, 20, 2), 2: (30, 40, 1), 4: (33.333, 7, 2)}
        ),  # the first again: Ultralytics writes it once
        _kp({0: (-5, 20, 2), 1: (101.5, 20, 2), 2: (100.9, 80, 1)}),  # 0 and 1 are outside by more than 1%
        _kp({0: (1, 1, 2)}),  # box centre left of the image by more than 1%
    ]
    boxes = [[-10, 10, 60, 50], [0, 0, 10, 10], [5, 5, 0, 10], [10, 10, 20, 20], [-10, 10, 60, 50]]
    boxes += [[10, 10, 20, 20], [-30, 0, 20, 20]]
    src = _source("s", ["a.jpg"], [(100, 80)], kps, boxes, [0] * 7, iscrowd=[0, 1, 0, 0, 0, 0, 0])
    result = yolo_export(merge([src]))
    assert result.not_written == {
        "crowd": 1,
        "empty_box": 1,
        "no_labelled_keypoints": 1,
        "box_outside_image": 1,
        "duplicate": 1,
    }
    assert result.keypoints_outside == 2
    assert result.rows == 2
    rows = [r.split() for r in result.files["labels/a.txt"].decode().splitlines()]
    assert rows[0][:5] == ["0", "0.2", "0.4375", "0.6", "0.625"]  # (x + w / 2) / width, not clipped
    assert rows[0][5:20] == [
        "0.1",
        "0.25",
        "2",
        "0",
        "0",
        "0",
        "0.3",
        "0.5",
        "1",
        "0",
        "0",
        "0",
        "0.33333",
        "0.0875",
        "2",
    ]
    assert rows[1][5:14] == ["0", "0", "0", "0", "0", "0", "1.009", "1", "1"]  # 1.009 is inside the 1% margin
    header = result.files["data.yaml"].decode()
    assert "1 crowd, 1 empty_box, 1 no_labelled_keypoints, 1 box_outside_image, 1 duplicate" in header
    assert "written as 0 0 0: 2" in header
    assert result.sources == {"s": {"rows": 2, "not_written": result.not_written, "keypoints_outside": 2}}
    _, labels = load_yolo(_write(yolo_files(merge([src])), tmp_path))
    assert labels["a.jpg"].shape == (2, 5 + 17 * 3)


def test_keep_empty_writes_people_without_keypoints_as_boxes():
    src = _source("s", ["a.jpg"], [(100, 80)], [_kp({}), _kp({0: (1, 2, 2)})], [[10, 10, 20, 20]] * 2, [0, 0])
    assert yolo_export(merge([src])).rows == 1
    kept = yolo_export(merge([src]), keep_empty=True)
    assert kept.rows == 2 and kept.not_written["no_labelled_keypoints"] == 0
    first = kept.files["labels/a.txt"].decode().splitlines()[0].split()
    assert first[:5] == ["0", "0.2", "0.25", "0.2", "0.25"] and first[5:] == ["0"] * 51


def test_numbers_are_written_like_percent_g():
    kps = [_kp({0: (123.456789, 0.000123, 2)})]
    src = _source("s", ["a.jpg"], [(1000, 1)], kps, [[1 / 3, 0, 500, 1]], [0])
    row = yolo_export(merge([src])).files["labels/a.txt"].decode().split()
    expect = [0, (1 / 3 + 250) / 1000, 0.5, 0.5, 1.0, 123.456789 / 1000, 0.000123, 2]
    assert row[:8] == [f"{v:g}" for v in expect]


@pytest.mark.parametrize(
    ("file_name", "listed", "label", "context"),
    [
        ("x.jpg", "images/x.jpg", "labels/x.txt", nullcontext()),
        ("coco/train2017/x.JPG", "images/coco/train2017/x.JPG", "labels/coco/train2017/x.txt", nullcontext()),
        (
            "images/val/012834_mpii_test/000000.jpg",
            "nested/images/val/012834_mpii_test/000000.jpg",
            "nested/labels/val/012834_mpii_test/000000.txt",
            nullcontext(),
        ),
        (
            "posetrack/images/val/a/000000.jpg",
            "nested/posetrack/images/val/a/000000.jpg",
            "nested/posetrack/labels/val/a/000000.txt",
            nullcontext(),
        ),
        ("a.b/c.png", "images/a.b/c.png", "labels/a.b/c.txt", nullcontext()),
        ("./coco/x.jpg", "images/coco/x.jpg", "labels/coco/x.txt", nullcontext()),
        ("myimages/x.webp", "images/myimages/x.webp", "labels/myimages/x.txt", nullcontext()),
        ("../x.jpg", None, None, pytest.raises(UsageError, match="relative path inside")),
        ("/abs/x.jpg", None, None, pytest.raises(UsageError, match="relative path inside")),
        ("x.gif", None, None, pytest.raises(UsageError, match="not an image type")),
        ("noext", None, None, pytest.raises(UsageError, match="not an image type")),
    ],
)
def test_image_and_label_paths(file_name, listed, label, context):
    with context:
        assert image_path(file_name) == listed
        assert label_path(file_name) == label
        # The place Ultralytics computes for the listed image, inside the export and outside the link.
        assert img2label_paths([f"{os.sep}out{os.sep}yolo{os.sep}{listed}".replace("/", os.sep)]) == [
            f"{os.sep}out{os.sep}yolo{os.sep}{label}".replace("/", os.sep)
        ]
        link = listed.rsplit("/images/", 1)[0] + "/images"
        assert not label.startswith(link + "/")


def test_file_names_with_images_folders_keep_the_data_root_link_free(tmp_path):
    names = ["posetrack/images/val/v1/000000.jpg", "coco/a.jpg", "images/b.jpg"]
    kps = [_kp({0: (10, 10, 2)}), _kp({1: (1, 1, 2)}), _kp({1: (2, 2, 2)})]
    src = _source("s", names, [(100, 100)] * 3, kps, [[0, 0, 5, 5]] * 3, [0, 1, 2])
    files = yolo_files(merge([src]))
    assert not any(f.startswith("yolo/images/") for f in files)  # the data root link stays free
    data = root = tmp_path / "data"
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (100, 100)).save(root / n)
    out = _write(files, tmp_path)
    header = (out / "data.yaml").read_text()
    links = [line.split()[3:] for line in header.splitlines() if line.startswith("#   ln -s")]
    assert links == [
        ["DATA", "images"],
        ["DATA/images", "nested/images"],
        ["DATA/posetrack/images", "nested/posetrack/images"],
    ]
    for target, link in links:
        (out / link).parent.mkdir(parents=True, exist_ok=True)
        (out / link).symlink_to(Path(target.replace("DATA", str(data))).resolve())
    _, labels = load_yolo(out)
    assert sorted(labels) == sorted(names)
    assert all(len(labels[n]) == 1 for n in names)


def test_nested_links_that_would_hold_labels_are_refused():
    names = ["a/images/x.jpg", "a/images/b/images/y.jpg"]
    src = _source("s", names, [(100, 100)] * 2, [_kp({0: (1, 1, 2)})], [[0, 0, 5, 5]], [0])
    with pytest.raises(UsageError, match="the folder nested/a/images would be a link"):
        yolo_export(merge([src]))


def test_data_yaml_keypoint_names_read_back():
    names = ["a.jpg"]
    src = _source("s", names, [(100, 100)], [_kp({0: (1, 1, 2)})], [[0, 0, 5, 5]], [0])
    data = yaml.safe_load(yolo_export(merge([src])).files["data.yaml"])
    assert data["kpt_names"] == {0: list(builtin_layout("coco").keypoints)}
    assert data["names"] == {0: "person"} and data["kpt_shape"] == [17, 3]
    assert "path" not in data


@pytest.mark.parametrize(
    ("names", "sizes", "message"),
    [
        (
            ["a.jpg", "b.jpg"],
            [(100, 80), (np.nan, np.nan)],
            r"source s: 1 of 2 images have no width/height, which --export yolo needs: add them",
        ),
        (["a.jpg", "a.png"], [(100, 80)] * 2, r"would share the label file labels/a.txt"),
    ],
)
def test_errors(names, sizes, message):
    src = _source("s", names, sizes, [_kp({})], [[0, 0, 5, 5]], [0])
    with pytest.raises(UsageError, match=message):
        yolo_export(merge([src]))


def test_raw_aic_without_sizes_names_the_source(tmp_path):
    merged = combine(
        [
            load_source(SourceSpec(style_file(tmp_path, "coco"), name="coco")),
            load_source(SourceSpec(raw_aic_file(tmp_path, images=3, people=5)[0], name="aic")),
        ]
    )
    with pytest.raises(
        UsageError,
        match="source aic: 3 of 3 images have no width/height, which --export yolo needs: give --image-dir",
    ):
        yolo_files(merged)


def test_manifest_counts_what_the_export_leaves_out(tmp_path):
    from click.testing import CliRunner

    from kpmerge.cli import cli

    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
        "annotations": [
            {"id": i, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "iscrowd": c, "keypoints": kp}
            for i, (c, kp) in enumerate([(0, [5, 5, 2] * 17), (1, [0, 0, 0] * 17), (0, [0, 0, 0] * 17)], 1)
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": list(builtin_layout("coco").keypoints)}],
    }
    (tmp_path / "c.json").write_text(json.dumps(doc))
    for flag, rows in (([], 1), (["--yolo-keep-empty"], 2)):
        out = tmp_path / f"out{rows}"
        result = CliRunner().invoke(
            cli,
            ["merge", str(tmp_path / "c.json"), "--export", "yolo", "-o", str(out), *flag],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.stderr
        counts = json.loads((out / "manifest.json").read_text())["exports"]["yolo"]
        assert counts["rows"] == rows
        assert counts["not_written"]["crowd"] == 1
        assert counts["not_written"]["no_labelled_keypoints"] == 2 - rows
        assert counts["sources"]["c"]["rows"] == rows
        assert counts["links"] == [["images", "."]]


@pytest.mark.parametrize("low_only", [False, True])
def test_rejected_values_are_the_ones_written_outside_the_margin(low_only):
    from kpmerge.exports.yolo import _rejected

    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.uniform(-0.0102, -0.0098, 2000),
            rng.uniform(1.0098, 1.0102, 2000),
            [-0.01, 1.01, -0.0100001, 1.0100001, -0.00999999, 1.00999999, -0.0100005, 1.0100005, 0.5],
        ]
    ).reshape(-1, 1)
    written = np.array([np.float32(float(f"{v:g}")) for v in values.ravel()]).reshape(-1, 1)
    expected = (written < np.float32(-0.01)) | (~low_only & (written > np.float32(1.01)))
    assert (_rejected(values, low_only) == expected).all()
