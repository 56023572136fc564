import json
import struct
import zlib

import numpy as np
import pytest

from kpmerge.errors import KpmergeError
from kpmerge.formats.aic import aic_to_dataset, dataset_to_aic, read_aic
from kpmerge.synth_styles import synth_raw_aic
from tests.conftest import AIC_RAW, fixture, needs_fixtures
from tests.synthfiles import raw_aic_file


@needs_fixtures
def test_raw_aic_converts_to_mmpose_test_aic():
    """The raw records hold the same nine people as MMPose's converted test_aic.json."""
    ds = read_aic(AIC_RAW)
    ref = json.loads(fixture("aic/test_aic.json").read_text())
    anns = ref["annotations"]
    assert len(ds.instances) == len(anns) == 9
    np.testing.assert_array_equal(
        ds.instances.keypoints, np.array([a["keypoints"] for a in anns]).reshape(9, 14, 3)
    )
    np.testing.assert_array_equal(ds.instances.boxes, np.array([a["bbox"] for a in anns], dtype=float))
    assert ds.instances.labelled_counts().tolist() == [a["num_keypoints"] for a in anns]
    # images in file order, people of each image in numeric order of their humanN key
    ref_files = {i["id"]: i["file_name"] for i in ref["images"]}
    assert [ds.images.file_names[i] for i in ds.instances.image_index] == [
        ref_files[a["image_id"]] for a in anns
    ]
    assert list(ds.images.file_names) == [i["file_name"] for i in ref["images"]]
    assert np.isnan(ds.instances.areas).all()
    assert ds.notes and "width and height left out" in ds.notes[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_raw_aic_converts_to_coco_values(tmp_path, seed):
    """v 1 -> 2, 2 -> 1, 3 -> 0; [x1, y1, x2, y2] -> [x1, y1, x2 - x1, y2 - y1]; images in file order,
    people in numeric order of humanN; sizes from the image folder; no area."""
    path, images = raw_aic_file(tmp_path, images=4, people=11, seed=seed)
    records, sizes = synth_raw_aic(images=4, people=11, seed=seed)
    ds = read_aic(path, image_dir=images)
    kps, boxes, ids, image_rows = [], [], [], []
    for row, rec in enumerate(records):
        for human in sorted(rec["keypoint_annotations"], key=lambda h: int(h.removeprefix("human"))):
            kp = rec["keypoint_annotations"][human]
            kps.append([{1: 2, 2: 1, 3: 0}[v] if i % 3 == 2 else v for i, v in enumerate(kp)])
            x1, y1, x2, y2 = rec["human_annotations"][human]
            boxes.append([x1, y1, x2 - x1, y2 - y1])
            ids.append(f"{rec['image_id']}/{human}")
            image_rows.append(row)
    np.testing.assert_array_equal(ds.instances.keypoints, np.array(kps).reshape(-1, 14, 3))
    np.testing.assert_array_equal(ds.instances.boxes, boxes)
    assert list(ds.instances.ids) == ids
    assert ds.instances.image_index.tolist() == image_rows
    assert list(ds.images.file_names) == [f"{r['image_id']}.jpg" for r in records] == list(sizes)
    assert ds.images.widths.tolist() == [w for w, _ in sizes.values()]
    assert ds.images.heights.tolist() == [h for _, h in sizes.values()]
    assert np.isnan(ds.instances.areas).all() and ds.notes == ()
    assert ds.instances.labelled_counts().tolist() == [sum(v > 0 for v in kp[2::3]) for kp in kps]
    without = read_aic(path)
    assert np.isnan(without.images.widths).all()
    assert without.notes and "width and height left out" in without.notes[0]


def _record(humans):
    kps = {h: [1, 2, 1] * 13 + [0, 0, 3] for h in humans}
    boxes = {h: [0, 0, 10 + int(h[5:]), 20] for h in humans}
    return {"url": "u", "image_id": "abc", "keypoint_annotations": kps, "human_annotations": boxes}


def test_humans_in_numeric_order():
    data = json.dumps([_record(["human10", "human2", "human1"])]).encode()
    ds = aic_to_dataset(data)
    assert list(ds.instances.ids) == ["abc/human1", "abc/human2", "abc/human10"]
    assert ds.instances.boxes[:, 2].tolist() == [11, 12, 20]
    assert ds.instances.keypoints[0, 0].tolist() == [1, 2, 2]  # raw v 1 (visible) -> 2
    assert ds.instances.keypoints[0, 13].tolist() == [0, 0, 0]  # raw v 3 (unlabelled) -> 0


@pytest.mark.parametrize(
    ("humans", "order"),
    [
        (["human3", "human02"], ["human02", "human3"]),  # leading zeros read as numbers
        (["human" + "9" * 20, "human1"], ["human1", "human" + "9" * 20]),  # beyond 64 bits: one by one
    ],
)
def test_human_numbers_of_any_size_keep_numeric_order(humans, order):
    ds = aic_to_dataset(json.dumps([_record(humans)]).encode())
    assert list(ds.instances.ids) == [f"abc/{h}" for h in order]


@pytest.mark.parametrize("name", ["humanhuman1", "human", "human١", "human 1", "person1"])
def test_names_other_than_human_n_are_refused(name):
    with pytest.raises(KpmergeError, match="expected keys named humanN"):
        record = {
            "image_id": "abc",
            "keypoint_annotations": {name: [0] * 42},
            "human_annotations": {name: [0] * 4},
        }
        aic_to_dataset(json.dumps([record]).encode())


def test_round_trip_back_to_raw():
    records = [_record(["human1", "human2"])]
    ds = aic_to_dataset(json.dumps(records).encode())
    again = json.loads(dataset_to_aic(ds))
    assert again == records
    assert aic_to_dataset(dataset_to_aic(ds)).instances == ds.instances


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: r["keypoint_annotations"]["human1"].__setitem__(2, 4), "expected visibility 1, 2 or 3"),
        (lambda r: r["keypoint_annotations"]["human1"].pop(), "expected 42 numbers, got 41"),
        (lambda r: r["human_annotations"].pop("human1"), "expected a box for human1, got none"),
        (lambda r: r.pop("image_id"), "$[0].image_id: expected a value, got none (missing)"),
        (lambda r: r["human_annotations"].__setitem__("human1", [5, 5, 1, 1]), "x2 >= x1"),
        (
            lambda r: r["keypoint_annotations"]["human1"].__setitem__(0, "7"),
            "$[0].keypoint_annotations.human1[0]",
        ),
    ],
)
def test_bad_raw_aic(mutate, fragment):
    rec = _record(["human1"])
    mutate(rec)
    with pytest.raises(KpmergeError) as err:
        aic_to_dataset(json.dumps([rec]).encode(), file="x.json")
    assert fragment in str(err.value)
    assert str(err.value).startswith("x.json: ")


def _png(w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    )


def _jpeg(w, h):
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def test_image_sizes_from_image_folder(tmp_path):
    rec1, rec2 = _record(["human1"]), _record(["human1"])
    rec2["image_id"] = "def"
    (tmp_path / "abc.jpg").write_bytes(_jpeg(640, 480))
    (tmp_path / "def.jpg").write_bytes(_png(33, 44))  # a PNG behind a .jpg name is read by its header
    ds = aic_to_dataset(json.dumps([rec1, rec2]).encode(), image_dir=tmp_path)
    assert ds.images.widths.tolist() == [640, 33]
    assert ds.images.heights.tolist() == [480, 44]
    assert ds.notes == ()
    (tmp_path / "def.jpg").unlink()
    with pytest.raises(KpmergeError, match="image not found"):
        aic_to_dataset(json.dumps([rec1, rec2]).encode(), image_dir=tmp_path)


def test_lenient_reading_is_the_same_single_pass(monkeypatch):
    import msgspec

    from kpmerge.synth import synth_aic

    records = json.loads(synth_aic(scale=0.0005, seed=4))
    first = records[0]["keypoint_annotations"]
    first[next(iter(first))][2] = 9  # a visibility raw AIC does not have
    data = json.dumps(records).encode()
    calls: list[int] = []
    real = msgspec.json.decode

    def counting(buf, *args, **kwargs):
        calls.append(len(buf) == len(data))
        return real(buf, *args, **kwargs)

    monkeypatch.setattr(msgspec.json, "decode", counting)
    ds = aic_to_dataset(data, strict=False)
    assert [(p.kind, p.count) for p in ds.problems] == [("bad_visibility", 1)]
    assert calls.count(True) == 1


@pytest.mark.parametrize("irregular", [False, True])
def test_people_parsed_in_bulk_equal_people_parsed_one_by_one(irregular, monkeypatch):
    from kpmerge.formats import aic as module
    from kpmerge.synth import synth_aic

    records = json.loads(synth_aic(scale=0.0005, seed=6))
    if irregular:
        records[1]["keypoint_annotations"]["human1"][0] = 1.5  # still regular numbers
        records[2]["note"] = "a member typed records do not have"
    data = json.dumps(records).encode()
    bulk = aic_to_dataset(data)
    monkeypatch.setattr(module, "float_rows", lambda raws, width: None)
    one_by_one = aic_to_dataset(data)
    assert bulk.images == one_by_one.images and bulk.instances == one_by_one.instances
