import json

import numpy as np
import pytest

from kpmerge.errors import KpmergeError
from kpmerge.formats.coco import coco_to_dataset, dataset_to_coco, read_coco
from kpmerge.synth_styles import STYLES
from tests.conftest import COCO_STYLE, fixture, needs_fixtures
from tests.synthfiles import style_file

CROWD = {s: 0 if s in ("aic", "jhmdb") else 1 for s in STYLES}


def _check_read(path):
    ref = json.loads(path.read_text())
    ds = read_coco(path)
    anns = ref["annotations"]
    k = len(anns[0]["keypoints"]) // 3
    assert len(ds.images) == len(ref["images"]) and len(ds.instances) == len(anns)
    np.testing.assert_array_equal(
        ds.instances.keypoints, np.array([a["keypoints"] for a in anns]).reshape(-1, k, 3)
    )
    np.testing.assert_array_equal(ds.instances.boxes, np.array([a["bbox"] for a in anns]))
    assert list(ds.instances.ids) == [a["id"] for a in anns]
    image_row = {img["id"]: i for i, img in enumerate(ref["images"])}
    assert ds.instances.image_index.tolist() == [image_row[a["image_id"]] for a in anns]
    names = ref["categories"][0]["keypoints"]
    assert ds.keypoint_names == (tuple(names) if names else None)
    np.testing.assert_array_equal(ds.images.widths, [i["width"] for i in ref["images"]])
    np.testing.assert_array_equal(ds.instances.iscrowd, [int(a.get("iscrowd", 0)) for a in anns])
    areas = [a.get("area", np.nan) for a in anns]
    np.testing.assert_array_equal(ds.instances.areas, areas)
    assert ds.instances.num_keypoints.tolist() == [a.get("num_keypoints", -1) for a in anns]


def _check_round_trip(path):
    ref = json.loads(path.read_text())
    ds = read_coco(path)
    names = ref["categories"][0]["keypoints"]
    out = json.loads(dataset_to_coco(ds, names, ref["categories"][0]["skeleton"]))
    assert [{k: v for k, v in i.items()} for i in out["images"]] == ref["images"]
    for got, want in zip(out["annotations"], ref["annotations"], strict=True):
        want = dict(want)
        want["num_keypoints"] = sum(1 for v in want["keypoints"][2::3] if v > 0)
        want.setdefault("iscrowd", 0)
        want["iscrowd"] = int(want["iscrowd"])
        want["category_id"] = 1
        assert got == want
        assert list(got)[:4] == ["id", "image_id", "category_id", "keypoints"]
    again = coco_to_dataset(dataset_to_coco(ds, names, []))
    assert again.images == ds.images
    # num_keypoints is written as the count of v > 0, whatever the source said
    assert again.instances.num_keypoints.tolist() == ds.instances.labelled_counts().tolist()
    assert again.instances[:] == type(ds.instances)(
        **{**vars(ds.instances), "num_keypoints": again.instances.num_keypoints}
    )


@pytest.mark.parametrize("style", STYLES)
def test_read_matches_plain_json(tmp_path, style):
    _check_read(style_file(tmp_path, style, images=3, people=7, crowd=CROWD[style]))


@pytest.mark.parametrize("style", STYLES)
def test_write_then_read_keeps_everything(tmp_path, style):
    _check_round_trip(style_file(tmp_path, style, images=3, people=7, crowd=CROWD[style]))


@needs_fixtures
def test_mmpose_files_read_as_plain_json_and_round_trip():
    for rel in COCO_STYLE:
        _check_read(fixture(rel))
        _check_round_trip(fixture(rel))


def test_integers_stay_integers():
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
        "annotations": [
            {
                "id": 7,
                "image_id": 1,
                "category_id": 1,
                "keypoints": [313, 201.5, 2, 0, 0, 0],
                "bbox": [1, 2.25, 3, 4],
                "area": 12,
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": ["a", "b"]}],
    }
    text = dataset_to_coco(coco_to_dataset(json.dumps(doc).encode()), ["a", "b"], [])
    assert b'"keypoints":[313,201.5,2,0,0,0]' in text
    assert b'"bbox":[1,2.25,3,4],"area":12' in text
    assert b'"width":640,"height":480' in text


def test_other_categories_are_counted_not_lost():
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "keypoints": [1, 1, 2], "bbox": [0, 0, 2, 2]},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [0, 0, 2, 2]},
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": ["a"]}, {"id": 3, "name": "car"}],
    }
    ds = coco_to_dataset(json.dumps(doc).encode())
    assert len(ds.instances) == 1 and ds.skipped == {"other_category": 1} and ds.annotations_read == 2


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            lambda d: d["annotations"][0].__setitem__("keypoints", [1, 1]),
            "$.annotations[0].keypoints: expected 3",
        ),
        (
            lambda d: d["annotations"][0]["keypoints"].__setitem__(2, 3),
            "expected visibility 0, 1 or 2, got 3",
        ),
        (lambda d: d["annotations"][0]["keypoints"].__setitem__(0, None), "$.annotations[0].keypoints[0]"),
        (
            lambda d: d["annotations"][0].__setitem__("image_id", 9),
            "expected the id of an image in images, got 9",
        ),
        (lambda d: d["annotations"][0].__setitem__("bbox", [0, 0, -1, 2]), "width and height >= 0"),
        (
            lambda d: d["images"].append({"id": 1, "file_name": "b.jpg"}),
            "expected unique ids, got 1 again (also at images[0])",
        ),
        (lambda d: d.pop("annotations"), "annotations"),
        (lambda d: d["categories"][0].pop("keypoints"), "expected a category with a `keypoints` list"),
    ],
)
def test_bad_coco_names_file_and_path(change, fragment):
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "keypoints": [1, 1, 2], "bbox": [0, 0, 2, 2]}
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": ["a"]}],
    }
    change(doc)
    with pytest.raises(KpmergeError) as err:
        coco_to_dataset(json.dumps(doc).encode(), file="f.json")
    assert fragment in str(err.value)
    assert str(err.value).startswith("f.json: $")


def _full_decodes(monkeypatch, data: bytes) -> list[int]:
    """Count the msgspec decodes of the whole document (appended to the returned list)."""
    import msgspec

    calls: list[int] = []
    real = msgspec.json.decode

    def counting(buf, *args, **kwargs):
        if len(buf) == len(data):
            calls.append(1)
        return real(buf, *args, **kwargs)

    monkeypatch.setattr(msgspec.json, "decode", counting)
    return calls


def _synth_doc() -> dict:
    from kpmerge.synth import synth_coco

    return json.loads(synth_coco(scale=0.0005, seed=2))


@pytest.mark.parametrize(
    ("change", "kinds"),
    [
        (lambda d: None, []),
        (lambda d: d["annotations"][3]["keypoints"].__setitem__(2, 5), ["bad_visibility"]),
        (lambda d: d["annotations"][4]["bbox"].__setitem__(3, -2), ["negative_box"]),
        (
            lambda d: d["annotations"][5].__setitem__("id", d["annotations"][0]["id"]),
            ["duplicate_annotation_id"],
        ),
    ],
)
def test_lenient_reading_is_the_same_single_pass(change, kinds, monkeypatch):
    doc = _synth_doc()
    change(doc)
    data = json.dumps(doc).encode()
    calls = _full_decodes(monkeypatch, data)
    ds = coco_to_dataset(data, strict=False)
    assert [p.kind for p in ds.problems] == kinds
    assert len(calls) == 1


def test_members_the_first_annotation_has_are_read_typed_in_their_order(monkeypatch):
    doc = _synth_doc()
    for i, a in enumerate(doc["annotations"]):
        a["track_id"] = i
        a["source"] = "s"  # after segmentation in these records: their order is kept
    del doc["annotations"][1]["segmentation"]  # the first member absent: no leading comma
    del doc["annotations"][2]["track_id"]
    data = json.dumps(doc, separators=(",", ":")).encode()
    calls = _full_decodes(monkeypatch, data)
    ds = coco_to_dataset(data)
    assert len(calls) == 1
    seg = json.dumps(doc["annotations"][0]["segmentation"], separators=(",", ":")).encode()
    assert ds.instances.extra[0] == b'"segmentation":' + seg + b',"track_id":0,"source":"s"'
    assert ds.instances.extra[1] == b'"track_id":1,"source":"s"'
    assert ds.instances.extra[2].endswith(b'],"source":"s"')


def test_a_row_of_another_shape_is_read_the_same_as_regular_rows():
    doc = _synth_doc()
    regular = coco_to_dataset(json.dumps(doc, separators=(",", ":")).encode())
    doc["annotations"][-1]["late"] = [1, {"x": None}]  # a member the first annotation lacks
    other = coco_to_dataset(json.dumps(doc, separators=(",", ":")).encode())
    assert other.images == regular.images
    assert other.instances.extra[-1] == regular.instances.extra[-1] + b',"late":[1,{"x":null}]'
    assert (other.instances.keypoints == regular.instances.keypoints).all()
