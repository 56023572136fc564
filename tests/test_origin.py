"""Per-layout coordinate origin: 1-based layouts (JHMDB, MPII) are shifted to 0-based on read."""

from __future__ import annotations

import json
from contextlib import nullcontext

import numpy as np
import pytest

from kpmerge.errors import UsageError
from kpmerge.formats.coco import coco_to_dataset
from kpmerge.job import Job, SourceSpec, load_source, run_job, to_zero_based
from kpmerge.layouts import builtin_layout, layout_from_dict
from tests.conftest import fixture, needs_fixtures
from tests.synthfiles import mpii_file, style_file

JHMDB = "jhmdb/test_jhmdb_sub1.json"
MPII = "mpii/test_mpii.json"


@pytest.mark.parametrize(
    ("name", "origin"), [("jhmdb", 1), ("mpii", 1), ("coco", 0), ("aic", 0), ("halpe26", 0)]
)
def test_builtin_origins(name, origin):
    assert builtin_layout(name).origin == origin


@pytest.mark.parametrize(
    ("value", "expectation"),
    [
        (0, nullcontext()),
        (1, nullcontext()),
        (2, pytest.raises(UsageError, match="origin must be 0 or 1, got 2")),
        ("1", pytest.raises(UsageError, match="origin must be 0 or 1")),
        (True, pytest.raises(UsageError, match="origin must be 0 or 1")),
    ],
)
def test_layout_json_origin(value, expectation):
    data = builtin_layout("jhmdb").to_dict() | {"origin": value}
    with expectation:
        lay = layout_from_dict(data)
        assert lay.origin == value
        assert lay.to_dict().get("origin", 0) == value  # written back only when not 0


def test_only_labelled_keypoints_shift():
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
        "annotations": [
            {"id": 1, "image_id": 1, "keypoints": [5, 6, 2, 7, 8, 1, 0, 0, 0], "bbox": [1, 2, 3, 4]},
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": ["a", "b", "c"]}],
    }
    ds = coco_to_dataset(json.dumps(doc).encode())
    out = to_zero_based(ds, 1)
    assert out.instances.keypoints.tolist() == [[[4, 5, 2], [6, 7, 1], [0, 0, 0]]]
    assert out.instances.boxes.tolist() == [[0, 1, 3, 4]]
    assert ds.instances.keypoints.tolist() == [[[5, 6, 2], [7, 8, 1], [0, 0, 0]]]  # input untouched


def _check_jhmdb_shifted_by_one(path):
    doc = json.loads(path.read_text())
    src = load_source(SourceSpec(path=path))
    assert src.layout.name == "jhmdb" and src.layout.origin == 0
    assert src.meta["coordinate_origin"] == 1
    kp = np.array([a["keypoints"] for a in doc["annotations"]]).reshape(-1, 15, 3)
    labelled = kp[:, :, 2] > 0
    kp[labelled, :2] -= 1  # unlabelled keypoints stay (0, 0)
    assert np.array_equal(src.dataset.instances.keypoints, kp)
    boxes = np.array([a["bbox"] for a in doc["annotations"]])
    boxes[:, :2] -= 1
    assert np.array_equal(src.dataset.instances.boxes, boxes)


def test_jhmdb_style_file_shifted_by_one(tmp_path):
    _check_jhmdb_shifted_by_one(style_file(tmp_path, "jhmdb", people=6, unlabelled=1))


def _check_mpii_box_is_mmpose_1x_box(path):
    records = json.loads(path.read_text())
    src = load_source(SourceSpec(path=path))
    assert src.layout.name == "mpii" and src.meta["coordinate_origin"] == 1
    for r, box, kp in zip(records, src.dataset.instances.boxes, src.dataset.instances.keypoints, strict=True):
        # MMPose 1.x: centre + (0, 15 s), minus 1; square of side 200 s
        side = r["scale"] * 200.0
        cx, cy = r["center"][0] - 1, r["center"][1] + 15.0 * r["scale"] - 1
        assert box.tolist() == pytest.approx([cx - side / 2, cy - side / 2, side, side], abs=1e-9)
        vis = np.array(r["joints_vis"]) == 1
        assert np.array_equal(kp[vis, :2], np.array(r["joints"])[vis] - 1)
        assert (kp[~vis] == 0).all()


def test_mpii_style_file_box_is_mmpose_1x_box(tmp_path):
    _check_mpii_box_is_mmpose_1x_box(mpii_file(tmp_path, people=7)[0])


@needs_fixtures
def test_mmpose_files_jhmdb_shifted_by_one_and_mpii_box_is_mmpose_1x_box():
    _check_jhmdb_shifted_by_one(fixture(JHMDB))
    _check_mpii_box_is_mmpose_1x_box(fixture(MPII))


def test_manifest_records_origin_and_output_layout_is_zero_based(tmp_path):
    out = tmp_path / "out"
    jhmdb = style_file(tmp_path, "jhmdb")
    job = Job(
        "merge",
        (SourceSpec(path=jhmdb, name="jhmdb"), SourceSpec(path=style_file(tmp_path, "coco"), name="coco")),
        out,
        target="jhmdb",
    )
    run_job(job)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["coordinate_origin"] for s in manifest["sources"]] == [1, 0]
    meta = json.loads((out / "metainfo.json").read_text())
    assert "origin" not in meta["layout"]
    ann = json.loads((out / "annotations.json").read_text())["annotations"][0]
    first = json.loads(jhmdb.read_text())["annotations"][0]
    assert ann["bbox"][:2] == [first["bbox"][0] - 1, first["bbox"][1] - 1]
