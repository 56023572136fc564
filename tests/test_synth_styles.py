"""kpmerge.synth_styles: the small files the tests build are what their docstrings promise."""

from __future__ import annotations

from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest

from kpmerge.layouts import builtin_layout
from kpmerge.synth_styles import STYLES, synth_mpii, synth_raw_aic, synth_style

COUNTS = [(3, 6, 1, 0), (4, 14, 2, 1), (5, 3, 0, 0)]
"""(images, people, unlabelled, crowd)."""


@pytest.mark.parametrize(
    ("style", "images", "people", "unlabelled", "crowd"),
    [(s, *c) for s in STYLES for c in COUNTS if not (c[3] and s in ("aic", "jhmdb"))],  # no iscrowd there
)
def test_style_documents_keep_their_promises(style, images, people, unlabelled, crowd):
    doc = synth_style(style, images=images, people=people, seed=4, unlabelled=unlabelled, crowd=crowd)
    assert doc == synth_style(style, images=images, people=people, seed=4, unlabelled=unlabelled, crowd=crowd)
    assert len(doc["images"]) == images and len(doc["annotations"]) == people
    k = len(builtin_layout(style))
    size = {i["id"]: (i["width"], i["height"]) for i in doc["images"]}
    origin = 1 if style == "jhmdb" else 0
    for j, ann in enumerate(doc["annotations"]):
        w, h = size[ann["image_id"]]
        x, y, bw, bh = ann["bbox"]
        assert x - origin >= 1 and x + bw <= w and y - origin >= 1 and y + bh <= h and bw > 0 and bh > 0
        kp = np.array(ann["keypoints"]).reshape(k, 3)
        labelled = kp[:, 2] > 0
        assert (kp[~labelled, :2] == 0).all()
        assert ((kp[labelled, 0] >= x) & (kp[labelled, 0] <= x + bw)).all()
        assert ((kp[labelled, 1] >= y) & (kp[labelled, 1] <= y + bh)).all()
        is_crowd = j >= people - crowd
        assert bool(ann.get("iscrowd", 0)) == is_crowd
        assert labelled.any() == (not is_crowd and not 1 <= j <= unlabelled)
        if "num_keypoints" in ann:
            assert ann["num_keypoints"] == int(labelled.sum())
    names = doc["categories"][0]["keypoints"]
    assert len(names) == (0 if style == "halpe" else k)


@pytest.mark.parametrize(
    ("kwargs", "expectation"),
    [
        ({"dataset": "coco"}, does_not_raise()),
        ({"dataset": "mpii"}, pytest.raises(ValueError, match="dataset: expected one of coco, aic")),
        (
            {"dataset": "coco", "people": 2, "unlabelled": 1, "crowd": 1},
            pytest.raises(ValueError, match="at least 3"),
        ),
        ({"dataset": "aic", "crowd": 1}, pytest.raises(ValueError, match="aic files have no iscrowd field")),
        ({"dataset": "coco", "images": 0}, pytest.raises(ValueError)),
    ],
)
def test_bad_counts_are_refused(kwargs, expectation):
    with expectation:
        synth_style(**kwargs)


def test_raw_aic_and_mpii_records_fit_their_images():
    records, sizes = synth_raw_aic(images=3, people=7, seed=2)
    assert (records, sizes) == synth_raw_aic(images=3, people=7, seed=2)
    assert [f"{r['image_id']}.jpg" for r in records] == list(sizes)
    assert sum(len(r["keypoint_annotations"]) for r in records) == 7
    for rec in records:
        w, h = sizes[f"{rec['image_id']}.jpg"]
        assert list(rec["keypoint_annotations"]) == list(rec["human_annotations"])
        for x1, y1, x2, y2 in rec["human_annotations"].values():
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        for kp in rec["keypoint_annotations"].values():
            assert {v for v in kp[2::3]} <= {1, 2, 3}
    mpii, mpii_sizes = synth_mpii(images=2, people=5, seed=1)
    assert {r["image"] for r in mpii} == set(mpii_sizes)
    for rec in mpii:
        assert 1 in rec["joints_vis"]
        assert all(j == [-1.0, -1.0] for j, v in zip(rec["joints"], rec["joints_vis"], strict=True) if not v)
