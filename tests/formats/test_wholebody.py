"""kpmerge.formats.wholebody: COCO-WholeBody into the 133-keypoint layout, back, and on to halpe26."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from kpmerge import parallel
from kpmerge.build import merge
from kpmerge.errors import KpmergeError
from kpmerge.formats import detect_format, read_dataset, wholebody
from kpmerge.formats.wholebody import K, dataset_to_wholebody, read_wholebody, wholebody_to_dataset
from kpmerge.job import SourceSpec, load_source
from kpmerge.layouts import builtin_layout
from tests.synthfiles import style_file

PARTS = (("foot_kpts", 6), ("face_kpts", 68), ("lefthand_kpts", 21), ("righthand_kpts", 21))
FOOT = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")


def _triplets(k: int, start: float, v: float = 2) -> list[float]:
    out: list[float] = []
    for i in range(k):
        out += [start + i, start + 100 + i, v]
    return out


def _annotation(ann_id: int, image_id: int, base: float) -> dict:
    ann = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "keypoints": _triplets(17, base),
        "num_keypoints": 17,
        "bbox": [base, base, 50, 80],
        "area": 4000,
        "iscrowd": 0,
        "face_box": [1, 2, 3, 4],
        "foot_valid": True,
    }
    for i, (name, k) in enumerate(PARTS):
        ann[name] = _triplets(k, base + 1000 * (i + 1))
    return ann


def _doc() -> dict:
    anns = [_annotation(1, 10, 0.5), _annotation(2, 10, 7), _annotation(3, 11, 20)]
    anns[1]["foot_kpts"][3:6] = [0, 0, 0]  # one unlabelled foot keypoint
    anns[2]["righthand_kpts"][2] = 1  # an occluded one keeps v = 1
    return {
        "images": [
            {"id": 10, "file_name": "a.jpg", "width": 640, "height": 480},
            {"id": 11, "file_name": "b.jpg", "width": 640, "height": 480},
        ],
        "annotations": anns,
        "categories": [
            {"id": 1, "name": "person", "keypoints": list(builtin_layout("coco").keypoints), "skeleton": []}
        ],
    }


def _write(tmp_path, doc: dict):
    path = tmp_path / "coco_wholebody_val.json"
    path.write_text(json.dumps(doc))
    return path


def test_layout_matches_mmpose():
    lay = builtin_layout("coco_wholebody")
    assert len(lay) == K == 133
    assert lay.keypoints[17:23] == FOOT
    assert lay.sigmas[17:23] == (0.068, 0.066, 0.066, 0.092, 0.094, 0.094)
    assert lay.keypoints[23] == "face-0" and lay.keypoints[91] == "left_hand_root"
    assert lay.keypoints[112] == "right_hand_root" and lay.keypoints[-1] == "right_pinky_finger4"
    assert len(lay.skeleton) == 65


def test_read_concatenates_parts_in_layout_order(tmp_path):
    doc = _doc()
    ds = read_wholebody(_write(tmp_path, doc))
    assert ds.format == "coco_wholebody" and ds.instances.k == K
    for j, ann in enumerate(doc["annotations"]):
        rows = ann["keypoints"] + [x for name, _ in PARTS for x in ann[name]]
        assert np.array_equal(ds.instances.keypoints[j].reshape(-1), np.array(rows, dtype=float))
    # other fields pass through, the part fields do not stay in them
    assert json.loads(b"{" + ds.instances.extra[0] + b"}") == {"face_box": [1, 2, 3, 4], "foot_valid": True}


def test_round_trip(tmp_path):
    ds = read_wholebody(_write(tmp_path, _doc()))
    again = wholebody_to_dataset(dataset_to_wholebody(ds))
    assert again.instances == ds.instances
    assert again.images == ds.images
    written = json.loads(dataset_to_wholebody(ds))["annotations"]
    assert [a["num_keypoints"] for a in written] == [17, 17, 17]  # body keypoints only, as the format says
    assert written[1]["foot_kpts"] == _doc()["annotations"][1]["foot_kpts"]


def test_float_visibility_is_labelled_and_noted(tmp_path):
    doc = _doc()
    doc["annotations"][0]["lefthand_kpts"][2] = 0.31
    doc["annotations"][0]["lefthand_kpts"][5] = -0.5
    ds = read_wholebody(_write(tmp_path, doc))
    hand = ds.instances.keypoints[0, 91:93]
    assert hand[0, 2] == 2 and hand[1].tolist() == [0, 0, 0]
    assert ds.notes == ("2 whole-body visibilities other than 0, 1, 2 read as 2 (v > 0) or 0",)


def test_detected_and_loaded_as_coco_wholebody(tmp_path):
    path = _write(tmp_path, _doc())
    assert detect_format(path.read_bytes()) == "coco_wholebody"
    assert read_dataset(path).instances.k == K
    src = load_source(SourceSpec(path=path))
    assert src.layout.name == "coco_wholebody" and src.meta["format"] == "coco_wholebody"


def test_plain_coco_is_not_wholebody(tmp_path):
    assert detect_format(style_file(tmp_path, "coco").read_bytes()) == "coco"


def test_auto_reaches_halpe26_feet(tmp_path):
    src = load_source(SourceSpec(path=_write(tmp_path, _doc()), name="wb"))
    halpe26 = builtin_layout("halpe26")
    merged = merge([src], halpe26)
    (report,) = merged.sources
    names = {s: t for s, t in report.mapping.name_pairs()}
    assert all(names[n] == n for n in FOOT)
    assert len(report.mapping.pairs) == 17 + 6  # head, neck, hip stay unmapped
    out = merged.dataset.instances.keypoints
    wb = src.dataset.instances.keypoints
    for n in FOOT:
        assert np.array_equal(out[:, halpe26.index(n)], wb[:, src.layout.index(n)])
    assert out[1, halpe26.index("left_small_toe")].tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("face_kpts"), r"\$\.annotations\[id=1\]\.face_kpts: missing `face_kpts`"),
        (lambda a: a["foot_kpts"].pop(), r"\$\.annotations\[id=1\]\.foot_kpts: expected 18 numbers"),
        (
            lambda a: a.__setitem__("righthand_kpts", "x"),
            r"\$\.annotations\[id=1\]\.righthand_kpts: expected array",
        ),
    ],
)
def test_errors_name_the_place(tmp_path, change, message):
    doc = _doc()
    change(doc["annotations"][0])
    with pytest.raises(KpmergeError, match=message):
        read_wholebody(_write(tmp_path, doc))


def test_parts_are_read_in_the_same_single_pass_as_the_body(monkeypatch):
    import msgspec

    doc = _doc()
    for a in doc["annotations"]:  # the official files carry part boxes and valid flags as well
        a["lefthand_box"], a["face_valid"] = [0, 0, 1, 1], False
    data = json.dumps(doc, separators=(",", ":")).encode()
    calls: list[int] = []
    real = msgspec.json.decode

    def counting(buf, *args, **kwargs):
        calls.append(len(buf))
        return real(buf, *args, **kwargs)

    monkeypatch.setattr(msgspec.json, "decode", counting)
    ds = wholebody_to_dataset(data)
    assert calls.count(len(data)) == 1
    assert sum(calls) < 2 * len(data)  # nothing (e.g. the members) is decoded a second time
    assert (
        ds.instances.extra[0]
        == b'"face_box":[1,2,3,4],"foot_valid":true,"lefthand_box":[0,0,1,1],"face_valid":false'
    )


def test_synthetic_wholebody_file_reads_as_wholebody(tmp_path):
    from kpmerge.synth import write_synth_wholebody

    path = write_synth_wholebody(tmp_path / "wb.json", scale=0.0005, seed=1)
    doc = json.loads(path.read_text())
    ds = read_dataset(path)
    assert ds.format == "coco_wholebody" and ds.instances.keypoints.shape == (len(doc["annotations"]), K, 3)
    first = doc["annotations"][0]
    assert list(first)[-2:] == ["foot_kpts", "foot_valid"] and len(first["face_kpts"]) == 68 * 3
    face = ds.instances.keypoints[:, 23:91]
    valid = np.array([a["face_valid"] for a in doc["annotations"]])
    assert ((face[:, :, 2] > 0).all(axis=1) == valid).all()
    assert ds.instances.extra[0].startswith(b'"segmentation":') and b'"foot_valid":' in ds.instances.extra[0]


_forks = pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="helpers are forked on Linux only")


def _odd_doc() -> dict:
    doc = _doc()
    doc["annotations"][2]["face_kpts"][5] = 0.5  # a float visibility in the last annotation's rows
    return doc


@_forks
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a["foot_kpts"].pop(), r"\$\.annotations\[id=3\]\.foot_kpts: expected 18 numbers"),
        (lambda a: a["face_kpts"].__setitem__(0, 1e999), r"\$\.annotations\[id=3\]\.face_kpts\[0\]"),
    ],
)
def test_parts_read_by_helpers_give_the_same_dataset_and_errors(monkeypatch, tmp_path, change, message):
    monkeypatch.setattr(wholebody, "PARALLEL_MIN_ROWS", 1)
    data = json.dumps(_odd_doc()).encode()
    alone = wholebody_to_dataset(data)
    with parallel.processes(3):  # the last annotation's rows are a helper's
        together = wholebody_to_dataset(data)
        assert parallel._is_shared(together.instances.keypoints)
    np.testing.assert_array_equal(together.instances.keypoints, alone.instances.keypoints)
    assert (
        together.notes
        == alone.notes
        == ("1 whole-body visibilities other than 0, 1, 2 read as 2 (v > 0) or 0",)
    )
    doc = _odd_doc()
    change(doc["annotations"][2])
    bad = json.dumps(doc).encode().replace(b"Infinity", b"1e999")
    with parallel.processes(3), pytest.raises(KpmergeError, match=message):
        wholebody_to_dataset(bad)
