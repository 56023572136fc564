"""The YOLO export and reader against the real Ultralytics (run by `make test-trainers`; skipped without it).

- The export of a COCO file equals what Ultralytics' own `convert_coco(use_keypoints=True)` writes, file by
  file, on the COCO fixtures and on a file built here (people without keypoints, crowd people, boxes partly
  outside the image); where they differ, Ultralytics' loader rejects convert_coco's file and takes kpmerge's.
- A YOLO dataset made by `convert_coco` is read by kpmerge, combined with raw AIC, exported, and
  Ultralytics' `build_yolo_dataset` loads the export with no corrupt label.
- kpmerge measures images as Ultralytics' `exif_size` does and finds labels where `img2label_paths` does.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
ultralytics = pytest.importorskip("ultralytics", reason="ultralytics is not installed (make test-trainers)")

from PIL import Image  # noqa: E402
from ultralytics.data.converter import convert_coco  # noqa: E402
from ultralytics.data.utils import exif_size, img2label_paths, verify_image_label  # noqa: E402

from kpmerge.build import combine, merge  # noqa: E402
from kpmerge.exports.yolo import label_path, yolo_export, yolo_files  # noqa: E402
from kpmerge.formats.yolo_files import image_size, img2label_path  # noqa: E402
from kpmerge.job import SourceSpec, load_source  # noqa: E402
from kpmerge.layouts import builtin_layout  # noqa: E402
from kpmerge.synth import synth_aic  # noqa: E402
from tests.conftest import fixture, needs_fixtures  # noqa: E402

COCO_FIXTURES = [
    "coco/test_coco.json",
    "aic/test_aic.json",
    "crowdpose/test_crowdpose.json",
    "ochuman/test_ochuman.json",
    "posetrack18/test_posetrack18_val.json",
]


def _convert(coco_file: Path, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """Ultralytics' convert_coco output for one COCO file: its save folder and label files by file name."""
    src = tmp_path / "coco_in"
    src.mkdir()
    shutil.copy(coco_file, src / coco_file.name)
    save = convert_coco(str(src), str(tmp_path / "converted"), use_keypoints=True, cls91to80=True)
    save = save if save is not None else tmp_path / "converted"
    labels = Path(save) / "labels" / coco_file.stem.replace("instances_", "")
    return Path(save), {p.relative_to(labels).as_posix(): p.read_bytes() for p in labels.rglob("*.txt")}


def _export(coco_file: Path) -> dict[str, bytes]:
    merged = merge([load_source(SourceSpec(coco_file, name="c"))])
    return {name.removeprefix("yolo/"): blob for name, blob in yolo_files(merged).items()}


def _verify(lb_file: Path, k: int, tmp_path: Path) -> int:
    """Ultralytics' verdict on one label file: 1 when it drops the image as corrupt."""
    im = tmp_path / "verify" / "images" / "x.jpg"
    im.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64)).save(im)
    return verify_image_label((str(im), str(lb_file), "", True, 1, k, 3, False))[8]


def _compare(coco_file: Path, tmp_path: Path) -> int:
    """Check kpmerge's export against convert_coco's output, file by file; returns the files compared."""
    _, theirs = _convert(coco_file, tmp_path)
    mine = _export(coco_file)
    doc = json.loads(coco_file.read_text())
    k = len(doc["annotations"][0]["keypoints"]) // 3
    names = {img["file_name"] for img in doc["images"]}
    for rel, blob in theirs.items():
        name = next(n for n in names if n.rsplit(".", 1)[0] + ".txt" == rel)
        ours = mine[label_path(name)]
        if ours != blob:  # only where Ultralytics would drop convert_coco's file as corrupt
            (tmp_path / "theirs.txt").write_bytes(blob)
            (tmp_path / "ours.txt").write_bytes(ours)
            assert _verify(tmp_path / "theirs.txt", k, tmp_path) == 1, (rel, blob, ours)
            assert _verify(tmp_path / "ours.txt", k, tmp_path) == 0, (rel, ours)
    without = {label_path(n) for n in names} - {
        label_path(n) for n in names if n.rsplit(".", 1)[0] + ".txt" in theirs
    }
    assert all(mine[p] == b"" for p in without)  # images without annotations: convert_coco writes no file
    return len(theirs)


@needs_fixtures
@pytest.mark.parametrize("rel", COCO_FIXTURES)
def test_export_equals_convert_coco_on_fixtures(rel, tmp_path):
    assert _compare(fixture(rel), tmp_path) > 0


def _built_coco(path: Path) -> Path:
    """People without keypoints, crowd people, boxes partly outside the image, repeated people."""
    names = list(builtin_layout("coco").keypoints)
    rng = np.random.default_rng(7)
    images, annotations = [], []
    for i in range(6):
        w, h = int(rng.integers(300, 700)), int(rng.integers(200, 500))
        images.append({"id": i + 1, "file_name": f"{i:012d}.jpg", "width": w, "height": h})
        for j in range(5):
            v = rng.choice([0, 1, 2], 17) if j != 1 else np.zeros(17, dtype=int)
            xy = np.round(rng.uniform(0, 1, (17, 2)) * [w, h], 2)
            kp = np.concatenate([np.where(v[:, None] > 0, xy, 0), v[:, None]], axis=1).ravel()
            x, y = float(rng.uniform(-50, w - 20)), float(rng.uniform(-50, h - 20))
            annotations.append(
                {
                    "id": 10 * i + j,
                    "image_id": i + 1,
                    "category_id": 1,
                    "keypoints": [int(a) if a == int(a) else float(a) for a in kp],
                    "num_keypoints": int((v > 0).sum()),
                    "bbox": [round(x, 2), round(y, 2), round(float(rng.uniform(20, 200)), 2), 150],
                    "area": 100.0,
                    "iscrowd": int(j == 2 and i % 2 == 0),
                }
            )
        annotations.append(dict(annotations[-1], id=10 * i + 9))  # the same person twice
    images.append({"id": 99, "file_name": "none.jpg", "width": 10, "height": 10})
    doc = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "keypoints": names}],
    }
    path.write_text(json.dumps(doc))
    return path


def test_export_equals_convert_coco_on_a_built_file(tmp_path):
    coco = _built_coco(tmp_path / "person_keypoints_built.json")
    _, theirs = _convert(coco, tmp_path)
    mine = _export(coco)
    assert theirs and all(
        mine[label_path(rel.replace(".txt", ".jpg"))] == blob for rel, blob in theirs.items()
    )


def test_convert_coco_dataset_plus_raw_aic_loads_in_build_yolo_dataset(tmp_path):
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset
    from ultralytics.utils import DEFAULT_CFG

    coco = _built_coco(tmp_path / "person_keypoints_built.json")
    save, _ = _convert(coco, tmp_path)
    for img in json.loads(coco.read_text())["images"]:
        p = save / "images" / "person_keypoints_built" / img["file_name"]
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (img["width"], img["height"])).save(p)
    flip = builtin_layout("coco").flip_indices
    (save / "data.yaml").write_text(
        f"train: images/person_keypoints_built\nval: images/person_keypoints_built\nkpt_shape: [17, 3]\n"
        f"flip_idx: {flip}\nnames:\n  0: person\n"
    )
    aic_file = tmp_path / "aic.json"
    aic_file.write_bytes(synth_aic(scale=0.00003, seed=1))
    aic_images = tmp_path / "aic_images"
    aic_images.mkdir()
    for rec in json.loads(aic_file.read_text()):
        Image.new("RGB", (1920, 1080)).save(aic_images / f"{rec['image_id']}.jpg")
    merged = combine(
        [
            load_source(SourceSpec(save / "data.yaml", name="yolo")),
            load_source(SourceSpec(aic_file, name="aic", image_dir=aic_images, image_prefix="aic/")),
        ]
    )
    out = tmp_path / "out"
    for name, blob in yolo_files(merged).items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(blob)
    data_root = tmp_path / "data_root"
    data_root.mkdir()
    (data_root / "aic").symlink_to(aic_images)
    (data_root / "images").symlink_to(save / "images")
    (out / "yolo" / "images").symlink_to(data_root)
    (out / "yolo" / "nested").mkdir(exist_ok=True)
    (out / "yolo" / "nested" / "images").symlink_to(data_root / "images")
    data = check_det_dataset(str(out / "yolo" / "data.yaml"))
    cfg = get_cfg(DEFAULT_CFG, {"task": "pose", "imgsz": 64})
    dataset = build_yolo_dataset(cfg, data["train"], 2, data, mode="val")
    listed = (out / "yolo" / "train.txt").read_text().splitlines()
    assert len(dataset.labels) == len(listed)  # no image dropped as corrupt
    assert sum(len(lb["cls"]) for lb in dataset.labels) == yolo_export(merged).rows > 0
    assert all(lb["keypoints"].shape[1:] == (19, 3) for lb in dataset.labels if len(lb["cls"]))


@pytest.mark.parametrize("suffix", ["jpg", "png", "webp", "tif"])
@pytest.mark.parametrize("orientation", [None, 3, 6, 8])
def test_image_sizes_as_exif_size(tmp_path, suffix, orientation):
    exif = Image.Exif()
    if orientation:
        exif[274] = orientation
    p = tmp_path / f"a.{suffix}"
    Image.new("RGB", (40, 24)).save(p, exif=exif)
    with Image.open(p) as im:
        im.verify()
        assert image_size(p) == tuple(exif_size(im))


@pytest.mark.parametrize(
    "path", ["/d/images/a/x.jpg", "/d/images/a/images/b/y.png", "/d/x/y.jpeg", "/d/images/x.v1.jpg"]
)
def test_label_paths_as_img2label_paths(path):
    assert img2label_path(path) == img2label_paths([path])[0]
