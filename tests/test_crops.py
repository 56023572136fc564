"""kpmerge.crops: regions around instances and cells cut from images (padded where the image ends)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kpmerge.crops import CANVAS, MARGIN, cut_cells, region
from kpmerge.instances import Instances

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _instances(box: list[float], points: list[tuple[float, float, float]]) -> Instances:
    return Instances(
        keypoints=np.array([points], dtype=float),
        boxes=np.array([box], dtype=float),
        areas=[np.nan],
        iscrowd=[0],
        image_index=[0],
        ids=[1],
        num_keypoints=[-1],
        extra=[b""],
    )


@pytest.mark.parametrize(
    ("box", "points", "expected"),
    [
        ([10, 20, 100, 50], [(0, 0, 0)], (10 - 100 * MARGIN, 45 - 50 - 100 * MARGIN, 100 * (1 + 2 * MARGIN))),
        # a labelled keypoint outside the box widens the region; an unlabelled one does not
        (
            [10, 20, 100, 50],
            [(210, 45, 2), (-500, -500, 0)],
            (10 - 200 * MARGIN, 45 - 100 - 200 * MARGIN, 240),
        ),
    ],
)
def test_region(box, points, expected):
    assert region(_instances(box, points), 0) == pytest.approx(expected)


def _halves(path, fmt="PNG", size=(100, 100)):
    im = Image.new("RGB", size, RED)
    im.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    im.save(path, format=fmt)
    return path


def test_cut_pads_outside_the_image(tmp_path):
    path = _halves(tmp_path / "a.png")
    cells, notes = cut_cells([((0, 0), path, (-50.0, 0.0, 200.0))], cell=100)
    assert notes == []
    px = np.asarray(cells[0, 0])
    assert px.shape == (100, 100, 3)
    assert tuple(px[10, 10]) == CANVAS and tuple(px[80, 40]) == CANVAS  # left of and below the image
    assert tuple(px[10, 30]) == RED and tuple(px[10, 70]) == BLUE and tuple(px[10, 90]) == CANVAS


def test_each_image_once_and_unreadable_ones_noted(tmp_path, monkeypatch):
    good = _halves(tmp_path / "big.jpg", "JPEG", (4000, 3000))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"no image")
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k))
    wanted = [
        ((0, 0), good, (0.0, 0.0, 2000.0)),
        ((0, 1), good, (2000.0, 0.0, 2000.0)),
        ((1, 0), bad, (0, 0, 9)),
    ]
    cells, notes = cut_cells(wanted, cell=50)
    assert sorted(cells) == [(0, 0), (0, 1)] and opened == [bad, good]
    assert len(notes) == 1 and notes[0].startswith(f"{bad}: cannot read the image")
    red = np.asarray(cells[0, 0]).reshape(-1, 3).astype(int)
    assert (np.abs(red - RED).max(axis=1) <= 8).mean() > 0.9
    assert np.abs(np.asarray(cells[0, 1])[20:30, 20:30].astype(int) - BLUE).max() <= 8
