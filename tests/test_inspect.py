"""kpmerge.inspect: statistics checked against plain-Python counts, one built file per problem kind."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from kpmerge.errors import KpmergeError, UsageError
from kpmerge.formats.aic import aic_to_dataset
from kpmerge.formats.coco import coco_to_dataset
from kpmerge.inspect import inspect, inspect_dataset
from kpmerge.inspect_report import BOX_MARGIN
from kpmerge.layouts import load_layout
from kpmerge.synth_styles import STYLES
from tests.conftest import AIC_RAW, fixture, needs_fixtures
from tests.synthfiles import raw_aic_file, style_file

COCO_NAMES = list(load_layout("coco").keypoints)
K = len(COCO_NAMES)


def _kps(x0: float = 20, y0: float = 20) -> list[float]:
    """17 labelled keypoints well inside the default box [10, 10, 100, 200]."""
    return [v for i in range(K) for v in (x0 + 4 * i, y0 + 10 * i, 2)]


def _ann(ann_id: Any, image_id: Any, **fields: Any) -> dict[str, Any]:
    ann = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "keypoints": _kps(),
        "num_keypoints": K,
        "bbox": [10, 10, 100, 200],
        "area": 20000,
        "iscrowd": 0,
    }
    ann.update(fields)
    return ann


def clean_doc() -> dict[str, Any]:
    """Two images, three annotations, no problem of any kind."""
    return {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
            {"id": 2, "file_name": "b.jpg", "width": 640, "height": 480},
        ],
        "annotations": [_ann(1, 1), _ann(2, 1), _ann(3, 2)],
        "categories": [{"id": 1, "name": "person", "keypoints": COCO_NAMES, "skeleton": []}],
    }


def _set_kp(doc: dict[str, Any], ann: int, k: int, triplet: list[float]) -> None:
    doc["annotations"][ann]["keypoints"][3 * k : 3 * k + 3] = triplet


def _dup_image(d):
    d["images"].append({"id": 1, "file_name": "c.jpg", "width": 640, "height": 480})


def _dup_ann(d):
    d["annotations"].append(_ann(2, 2))


def _missing_image(d):
    d["annotations"][2]["image_id"] = 99
    d["annotations"].append(_ann(4, 2))


def _unknown_category(d):
    d["annotations"][1]["category_id"] = 9  # no category has id 9


def _bad_v(d):
    _set_kp(d, 1, 3, [40, 40, 3])


def _negative_box(d):
    d["annotations"][2]["bbox"] = [10, 10, -5, 200]


def _k_all(d):
    for a in d["annotations"]:
        a["keypoints"] = a["keypoints"][: 14 * 3]
        a["num_keypoints"] = 14


def _k_one(d):
    d["annotations"][1]["keypoints"] = d["annotations"][1]["keypoints"][:-3]


def _num_kp(d):
    d["annotations"][1]["num_keypoints"] = 5


def _outside_box(d):
    # box [10, 10, 100, 200]: x beyond 110 + 10 (10% of 100) is outside, 119 is inside the margin
    _set_kp(d, 0, 0, [110 + 100 * BOX_MARGIN + 1, 50, 2])
    _set_kp(d, 1, 0, [110 + 100 * BOX_MARGIN - 1, 50, 1])
    _set_kp(d, 2, 0, [50, 210 + 200 * BOX_MARGIN + 1, 1])


def _outside_image(d):
    d["images"][1]["width"] = 100  # inside the box and its margin, beyond the image
    _set_kp(d, 2, 16, [105, 50, 2])


def _zero(d):
    _set_kp(d, 0, 5, [0, 0, 2])
    _set_kp(d, 2, 5, [0, 0, 1])


def _unlabelled_xy(d):
    _set_kp(d, 1, 2, [30, 0, 0])
    d["annotations"][1]["num_keypoints"] = K - 1


def _empty_box(d):
    d["annotations"][0]["bbox"] = [10, 10, 0, 200]


def _no_anns(d):
    d["images"].append({"id": "x", "file_name": "x.jpg", "width": 640, "height": 480})


# kind, change, count, examples, severity, raised by the strict reader; other kinds the change causes are
# listed in ALSO (a duplicated image id leaves one copy without annotations; a row of the wrong length
# reads as unlabelled, so its num_keypoints no longer fits)
ALSO = {_dup_image: ["images_without_annotations"], _k_one: ["num_keypoints_mismatch"]}
KINDS = [
    ("duplicate_image_id", _dup_image, 1, (1,), "error", True),
    ("duplicate_annotation_id", _dup_ann, 1, (2,), "error", True),
    ("missing_image", _missing_image, 1, (3,), "error", True),
    ("unknown_category", _unknown_category, 1, (2,), "error", True),
    ("bad_visibility", _bad_v, 1, (2,), "error", True),
    ("negative_box", _negative_box, 1, (3,), "error", True),
    ("k_mismatch", _k_all, 3, (1, 2, 3), "error", True),
    ("k_mismatch", _k_one, 1, (2,), "error", True),
    ("num_keypoints_mismatch", _num_kp, 1, (2,), "warning", False),
    ("outside_box", _outside_box, 2, (1, 3), "warning", False),
    ("outside_image", _outside_image, 1, (3,), "warning", False),
    ("zero_labelled", _zero, 2, (1, 3), "warning", False),
    ("unlabelled_with_coordinates", _unlabelled_xy, 1, (2,), "warning", False),
    ("empty_box", _empty_box, 1, (1,), "warning", False),
    ("images_without_annotations", _no_anns, 1, ("x",), "info", False),
]


def test_clean_doc_has_no_problems():
    ds = coco_to_dataset(json.dumps(clean_doc()).encode(), strict=False)
    report = inspect_dataset(ds)
    assert report.problems == ()
    assert (report.layout, report.images, report.annotations, report.trainable) == ("coco", 2, 3, 3)


@pytest.mark.parametrize(("kind", "change", "count", "examples", "severity", "raises"), KINDS)
def test_each_problem_kind_is_found(kind, change, count, examples, severity, raises):
    doc = clean_doc()
    change(doc)
    data = json.dumps(doc).encode()
    with pytest.raises(KpmergeError) if raises else nullcontext():
        coco_to_dataset(data, file="x.json")
    report = inspect_dataset(coco_to_dataset(data, file="x.json", strict=False), "x.json")
    found = [(p.kind, p.severity, p.count, p.examples) for p in report.problems]
    assert [f for f in found if f[0] == kind] == [(kind, severity, count, examples)]
    assert sorted(f[0] for f in found if f[0] != kind) == ALSO.get(change, [])


def test_lenient_reader_marks_missing_images():
    doc = clean_doc()
    _missing_image(doc)
    ds = coco_to_dataset(json.dumps(doc).encode(), strict=False)
    assert ds.instances.image_index.tolist() == [0, 0, -1, 1]


def test_k_mismatch_reads_rows_of_other_length_as_unlabelled():
    doc = clean_doc()
    _k_one(doc)
    ds = coco_to_dataset(json.dumps(doc).encode(), strict=False)
    assert ds.instances.keypoints.shape == (3, K, 3)
    assert (ds.instances.keypoints[1] == 0).all()
    assert (ds.instances.keypoints[0, :, 2] == 2).all()


def test_unreadable_files_still_raise():
    doc = clean_doc()
    doc["annotations"][0]["keypoints"] = "nope"
    with pytest.raises(KpmergeError, match=r"annotations\[0\]\.keypoints"):
        coco_to_dataset(json.dumps(doc).encode(), strict=False)
    with pytest.raises(KpmergeError):
        coco_to_dataset(b"{not json", strict=False)


def _aic_record(image_id: str, humans: dict[str, tuple[list[float], list[float]]]) -> dict[str, Any]:
    return {
        "url": "http://x",
        "image_id": image_id,
        "keypoint_annotations": {h: kp for h, (kp, _) in humans.items()},
        "human_annotations": {h: box for h, (_, box) in humans.items()},
    }


def test_lenient_aic_reader_records_bad_visibility_and_boxes():
    good = [v for i in range(14) for v in (10 + i, 20 + i, 1)]
    bad = [*good[:-1], 7]
    records = [
        _aic_record("a", {"human1": (good, [0, 0, 50, 50]), "human2": (bad, [0, 0, 50, 50])}),
        _aic_record("b", {"human1": (good, [50, 0, 40, 50])}),
    ]
    data = json.dumps(records).encode()
    with pytest.raises(KpmergeError):
        aic_to_dataset(data)
    ds = aic_to_dataset(data, strict=False)
    found = [(p.kind, p.count, p.examples) for p in ds.problems]
    assert found == [("bad_visibility", 1, ("a/human2",)), ("negative_box", 1, ("b/human1",))]
    assert ds.instances.keypoints[1, 13, 2] == 7  # kept as read
    assert ds.instances.keypoints[0, 0, 2] == 2  # raw 1 (visible) -> COCO 2


# ---------------------------------------------------------------------------------------- fixtures


def plain_stats(anns: list[dict[str, Any]], images: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """Statistics and problem counts computed with plain Python, independently of kpmerge."""
    sizes = {im["id"]: (im.get("width"), im.get("height")) for im in images}
    out: dict[str, Any] = {
        "labelled": [0] * k,
        "visible": [0] * k,
        "occluded": [0] * k,
        "unlabelled": [0] * k,
        "trainable": 0,
        "crowd": 0,
    }
    bad: dict[str, list[Any]] = {}
    for a in anns:
        kp, (bx, by, bw, bh) = a["keypoints"], a["bbox"]
        trip = [kp[3 * i : 3 * i + 3] for i in range(k)]
        n_lab = sum(1 for _, _, v in trip if v > 0)
        for i, (_, _, v) in enumerate(trip):
            out["labelled"][i] += v > 0
            out["visible"][i] += v == 2
            out["occluded"][i] += v == 1
            out["unlabelled"][i] += v == 0
        crowd = bool(a.get("iscrowd", 0))
        out["crowd"] += crowd
        out["trainable"] += (not crowd) and n_lab > 0 and bw > 0 and bh > 0
        w, h = sizes[a["image_id"]]
        m = BOX_MARGIN
        checks = {
            "num_keypoints_mismatch": "num_keypoints" in a and a["num_keypoints"] != n_lab,
            "outside_box": bw > 0
            and bh > 0
            and any(
                v > 0
                and (x, y) != (0, 0)
                and not (bx - m * bw <= x <= bx + bw + m * bw and by - m * bh <= y <= by + bh + m * bh)
                for x, y, v in trip
            ),
            "outside_image": w is not None
            and any(v > 0 and (x, y) != (0, 0) and not (0 <= x <= w and 0 <= y <= h) for x, y, v in trip),
            "zero_labelled": any(v > 0 and x == 0 and y == 0 for x, y, v in trip),
            "unlabelled_with_coordinates": any(v == 0 and (x, y) != (0, 0) for x, y, v in trip),
            "empty_box": bw == 0 or bh == 0,
        }
        for kind, hit in checks.items():
            if hit:
                bad.setdefault(kind, []).append(a["id"])
    used = {a["image_id"] for a in anns}
    empty = [im["id"] for im in images if im["id"] not in used]
    if empty:
        bad["images_without_annotations"] = empty
    out["problems"] = {kind: (len(ids), tuple(ids[:5])) for kind, ids in bad.items()}
    return out


COCO_FIXTURES = [
    ("coco/test_coco.json", "coco"),
    ("aic/test_aic.json", "aic"),
    ("crowdpose/test_crowdpose.json", "crowdpose"),
    ("halpe/test_halpe.json", "halpe"),
    ("ochuman/test_ochuman.json", "coco"),
    ("posetrack18/test_posetrack18_val.json", "posetrack18"),
    ("jhmdb/test_jhmdb_sub1.json", "jhmdb"),
]


def _check(report: Any, expected: dict[str, Any], names: list[str]) -> None:
    assert [k.name for k in report.keypoints] == names
    for field in ("labelled", "visible", "occluded", "unlabelled"):
        assert [getattr(k, field) for k in report.keypoints] == expected[field], field
    assert report.trainable == expected["trainable"]
    assert report.crowd == expected["crowd"]
    assert {p.kind: (p.count, p.examples) for p in report.problems} == expected["problems"]


def _check_exact_numbers(path: Path, layout: str) -> None:
    doc = json.loads(path.read_text())
    names = doc["categories"][0]["keypoints"]
    k = len(doc["annotations"][0]["keypoints"]) // 3
    report = inspect([path]).files[0]
    assert (report.format, report.layout) == ("coco", layout)
    assert (report.images, report.annotations) == (len(doc["images"]), len(doc["annotations"]))
    _check(
        report,
        plain_stats(doc["annotations"], doc["images"], k),
        names or list(load_layout(layout).keypoints),
    )


def _check_raw_aic_exact_numbers(path: Path) -> None:
    records = json.loads(path.read_text())
    to_coco = {1: 2, 2: 1, 3: 0}
    anns, images = [], []
    for rec in records:
        images.append({"id": rec["image_id"]})
        humans = sorted(rec["keypoint_annotations"], key=lambda h: int(h.removeprefix("human")))
        for human in humans:
            kp = rec["keypoint_annotations"][human]
            x1, y1, x2, y2 = rec["human_annotations"][human]
            kp = [to_coco[v] if i % 3 == 2 else v for i, v in enumerate(kp)]
            anns.append(
                {"id": f"{rec['image_id']}/{human}", "image_id": rec["image_id"], "keypoints": kp}
                | {"bbox": [x1, y1, x2 - x1, y2 - y1]}
            )
    report = inspect([path]).files[0]
    assert (report.format, report.layout, report.images, report.annotations) == (
        "aic",
        "aic",
        len(images),
        len(anns),
    )
    expected = plain_stats(anns, images, 14)
    _check(report, expected, list(load_layout("aic").keypoints))
    assert report.notes  # no image sizes in raw AIC


@pytest.mark.parametrize("style", STYLES)
def test_coco_style_exact_numbers(tmp_path, style):
    path = style_file(
        tmp_path, style, images=4, people=11, unlabelled=2, crowd=0 if style in ("aic", "jhmdb") else 1
    )
    _check_exact_numbers(path, "coco" if style == "ochuman" else style)


def test_raw_aic_exact_numbers(tmp_path):
    _check_raw_aic_exact_numbers(raw_aic_file(tmp_path, images=4, people=10)[0])


@needs_fixtures
def test_mmpose_files_exact_numbers():
    for rel, layout in COCO_FIXTURES:
        _check_exact_numbers(fixture(rel), layout)
    _check_raw_aic_exact_numbers(AIC_RAW)


def test_layout_option_must_fit(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(clean_doc()))
    assert inspect([path], layout="ochuman").files[0].layout == "ochuman"
    with pytest.raises(UsageError, match="has 14 keypoints but the file has 17"):
        inspect([path], layout="aic")


def test_empty_raw_aic_file():
    ds = aic_to_dataset(b"[]", strict=False)
    report = inspect_dataset(ds)
    assert (report.format, report.layout, report.annotations, report.problems) == ("aic", "aic", 0, ())
