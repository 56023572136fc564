"""Ultralytics' own loader on kpmerge's YOLO pose export: check_det_dataset and build_yolo_dataset.

Runs in the Ultralytics environment of `make test-trainers` (tests/trainers/requirements-ultralytics.txt),
offline (YOLO_OFFLINE=1), with its settings in a folder of the test's own.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.trainers.data import aic_file, coco_file, kpmerge_ok, need, read_json, write_jpeg

os.environ.setdefault("YOLO_OFFLINE", "1")  # no downloads, no online checks
if "YOLO_CONFIG_DIR" not in os.environ:
    os.environ["YOLO_CONFIG_DIR"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / "kpmerge-ultralytics")

need("ultralytics")
from ultralytics.cfg import get_cfg  # noqa: E402
from ultralytics.data import build_yolo_dataset  # noqa: E402
from ultralytics.data.utils import check_det_dataset, load_dataset_cache_file  # noqa: E402
from ultralytics.utils import DEFAULT_CFG  # noqa: E402


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """coco + raw AIC combined with --export yolo, the images (real JPEGs) at OUT/yolo/images/ through
    a symlink to the data root, as the README says. Some AIC people lie partly or wholly outside
    their image (their boxes are clipped, their outside keypoints written as 0 0 0)."""
    root = tmp_path_factory.mktemp("yolo")
    data_root = root / "data"
    coco = coco_file(root)
    for image in read_json(coco)["images"]:
        write_jpeg(data_root / "coco" / image["file_name"], image["width"], image["height"])
    aic, aic_dir = aic_file(root / "aic", shrink_every=3, jpeg=True)
    aic_dir.rename(data_root / "aic")
    out = root / "out"
    kpmerge_ok(
        "combine", f"coco={coco}", f"aic={aic}", "--image-prefix", "coco=coco/", "--image-prefix", "aic=aic/",
        "--image-dir", f"aic={data_root / 'aic'}", "--export", "yolo", "-o", out, "-q",
    )  # fmt: skip
    (out / "yolo" / "images").symlink_to(data_root, target_is_directory=True)
    return out


def test_ultralytics_loads_every_exported_instance(export: Path) -> None:
    yolo = export / "yolo"
    data = check_det_dataset(str(yolo / "data.yaml"))
    k = read_json(export / "manifest.json")["num_keypoints"]
    assert data["kpt_shape"] == [k, 3]
    assert data["nc"] == 1
    cfg = get_cfg(DEFAULT_CFG, overrides={"task": "pose", "imgsz": 64})
    dataset = build_yolo_dataset(cfg, data["train"], batch=4, data=data, mode="train")

    cache = load_dataset_cache_file(Path(dataset.label_files[0]).parent.with_suffix(".cache"))
    found, missing, _empty, corrupt, total = cache["results"]
    assert (missing, corrupt) == (0, 0), cache["msgs"]
    listed = (yolo / "train.txt").read_text().splitlines()
    assert found == total == len(listed) == len(dataset.labels)  # found: label files, empty or not

    loaded = {Path(lb["im_file"]).relative_to(yolo / "images").as_posix(): lb for lb in dataset.labels}
    written = {}
    for line in listed:
        name = line.removeprefix("./images/")
        text = (yolo / "labels" / name).with_suffix(".txt").read_text()
        written[name] = np.array([r.split() for r in text.splitlines()], dtype=np.float32)
    assert set(loaded) == set(written)
    for name, rows in written.items():
        label = loaded[name]
        assert len(label["cls"]) == len(rows), name  # no row dropped (Ultralytics drops duplicates)
        if not len(rows):
            continue
        np.testing.assert_array_equal(label["cls"][:, 0], rows[:, 0])
        np.testing.assert_allclose(label["bboxes"], rows[:, 1:5], rtol=0, atol=1e-6)
        np.testing.assert_allclose(
            label["keypoints"], rows[:, 5:].reshape(len(rows), k, 3), rtol=0, atol=1e-6
        )
    assert sum(len(r) for r in written.values()) > 0


def test_ultralytics_training_items_carry_the_keypoints(export: Path) -> None:
    """A few items through Ultralytics' own training transforms: images decode, keypoints come along."""
    data = check_det_dataset(str(export / "yolo" / "data.yaml"))
    cfg = get_cfg(DEFAULT_CFG, overrides={"task": "pose", "imgsz": 64})
    dataset = build_yolo_dataset(cfg, data["train"], batch=4, data=data, mode="train")
    k = data["kpt_shape"][0]
    for i in range(min(4, len(dataset))):
        item = dataset[i]
        assert item["img"].shape[0] == 3
        assert item["keypoints"].shape[1:] == (k, 3)
        assert len(item["keypoints"]) == len(item["cls"]) == len(item["bboxes"])
