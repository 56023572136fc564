"""kpmerge.formats.mpii: MMPose's MPII JSON, read against the file parsed independently, and back."""

from __future__ import annotations

import json
from contextlib import nullcontext

import numpy as np
import pytest

from kpmerge.errors import KpmergeError
from kpmerge.formats import detect_format, read_dataset
from kpmerge.formats.mpii import dataset_to_mpii, mpii_to_dataset, read_mpii, write_mpii
from kpmerge.instances import Dataset, Images, Instances
from tests.conftest import fixture, needs_fixtures
from tests.synthfiles import mpii_file

MPII = "mpii/test_mpii.json"


def _expected(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints and boxes by the documented rules, in plain Python."""
    kps, boxes = [], []
    for r in records:
        kps.append(
            [
                [x, y, 2.0] if v == 1 else [0.0, 0.0, 0.0]
                for (x, y), v in zip(r["joints"], r["joints_vis"], strict=True)
            ]
        )
        (cx, cy), s = r["center"], r["scale"]
        side = s * 200.0
        cy = cy + 15.0 * s if cx != -1 else cy
        boxes.append([cx - side / 2, cy - side / 2, side, side])
    return np.array(kps), np.array(boxes)


def _record(**changes: object) -> dict:
    rec = {
        "joints_vis": [1] * 16,
        "joints": [[10.0 + i, 20.0 + i] for i in range(16)],
        "image": "000001.jpg",
        "scale": 1.5,
        "center": [100.0, 120.0],
    }
    rec.update(changes)
    return rec


def _check_read(path):
    records = json.loads(path.read_text())
    ds = read_mpii(path)
    kp, boxes = _expected(records)
    assert ds.format == "mpii"
    assert np.array_equal(ds.instances.keypoints, kp)
    assert np.array_equal(ds.instances.boxes, boxes)
    names = list(dict.fromkeys(r["image"] for r in records))
    assert list(ds.images.ids) == names
    assert list(ds.images.file_names) == names
    assert [names[i] for i in ds.instances.image_index] == [r["image"] for r in records]
    assert list(ds.instances.ids) == list(range(len(records)))
    assert np.isnan(ds.instances.areas).all() and np.isnan(ds.images.widths).all()
    assert ds.notes and "no image sizes" in ds.notes[0]
    return records, ds


def _check_round_trip(path, tmp_path):
    ds = read_mpii(path)
    out = tmp_path / "written_mpii.json"
    write_mpii(ds, out)
    again = read_mpii(out)
    assert again.instances == ds.instances
    assert again.images == ds.images
    # the written file holds the original values
    assert json.loads(out.read_text()) == json.loads(path.read_text())


def _check_detected(path):
    assert detect_format(path.read_bytes()) == "mpii"
    assert read_dataset(path).instances == read_mpii(path).instances


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_read_round_trip_and_detection(tmp_path, seed):
    path, images = mpii_file(tmp_path, images=3, people=7, seed=seed)
    records, _ds = _check_read(path)
    assert any(0 in r["joints_vis"] for r in records)  # some joints unlabelled: (-1, -1) in the file
    _check_round_trip(path, tmp_path)
    _check_detected(path)
    sized = read_mpii(path, image_dir=images)
    assert sized.images.widths.tolist() == [1280.0] * 3 and sized.notes == ()


@needs_fixtures
def test_mmpose_file(tmp_path):
    records, ds = _check_read(fixture(MPII))
    # the two unlabelled joints of record 2 are (-1, -1) in the file and (0, 0, 0) here
    assert records[2]["joints_vis"].count(0) == 2
    assert (ds.instances.keypoints[2, :, 2] == 0).sum() == 2
    _check_round_trip(fixture(MPII), tmp_path)
    _check_detected(fixture(MPII))


def test_extra_fields_and_multiple_people_per_image():
    records = [_record(), _record(image="000002.jpg", track=7), _record(center=[-1.0, -1.0])]
    ds = mpii_to_dataset(json.dumps(records).encode())
    assert list(ds.images.ids) == ["000001.jpg", "000002.jpg"]
    assert ds.instances.image_index.tolist() == [0, 1, 0]
    assert ds.instances.extra[1] == b'"track":7'
    # no 15 px shift when the centre is -1 (MMPose's rule)
    assert ds.instances.boxes[2].tolist() == [-151.0, -151.0, 300.0, 300.0]
    assert ds.instances.boxes[0].tolist() == [-50.0, 120.0 + 22.5 - 150.0, 300.0, 300.0]
    assert json.loads(dataset_to_mpii(ds)) == records


def test_writer_takes_the_longer_side_and_unlabelled_as_minus_one():
    kp = np.zeros((1, 16, 3))
    kp[0, 0] = [5, 6, 1]
    inst = Instances(
        keypoints=kp,
        boxes=[[0.0, 0.0, 100.0, 400.0]],
        areas=[np.nan],
        iscrowd=[0],
        image_index=[0],
        ids=[1],
        num_keypoints=[-1],
        extra=[b""],
    )
    images = Images(ids=[1], file_names=["a.jpg"], widths=[np.nan], heights=[np.nan], extra=[b""])
    (rec,) = json.loads(dataset_to_mpii(Dataset(images=images, instances=inst)))
    assert rec["scale"] == 2.0
    assert rec["center"] == [50.0, 200.0 - 30.0]
    assert rec["joints"][0] == [5, 6] and rec["joints"][1] == [-1, -1]
    assert rec["joints_vis"] == [1] + [0] * 15
    with pytest.raises(KpmergeError, match="16 keypoints per person, got 3"):
        dataset_to_mpii(Dataset(images=images, instances=inst.with_keypoints(kp[:, :3])))


@pytest.mark.parametrize(
    ("record", "expectation"),
    [
        (_record(), nullcontext()),
        (
            {k: v for k, v in _record().items() if k != "scale"},
            pytest.raises(KpmergeError, match=r"\$\[0\]\.scale"),
        ),
        (
            _record(joints=[[1.0, 2.0]] * 15),
            pytest.raises(KpmergeError, match=r"\$\[0\]\.joints: expected 16"),
        ),
        (
            _record(joints_vis=[1] * 15 + [3]),
            pytest.raises(KpmergeError, match=r"joints_vis\[15\]: expected 0 or 1"),
        ),
        (_record(scale=0), pytest.raises(KpmergeError, match=r"\$\[0\]\.scale: expected a scale > 0")),
        (_record(center=[1.0]), pytest.raises(KpmergeError, match=r"\$\[0\]\.center")),
        (_record(image=5), pytest.raises(KpmergeError, match=r"\$\[0\]\.image")),
    ],
)
def test_errors_name_the_place(record, expectation):
    with expectation:
        mpii_to_dataset(json.dumps([record]).encode(), file="m.json")
