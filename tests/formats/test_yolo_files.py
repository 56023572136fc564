"""Where a YOLO-pose dataset's files are and how big its images are (kpmerge.formats.yolo_files)."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
from PIL import Image

from kpmerge.formats.yolo_files import image_size, img2label_path, label_name


@pytest.mark.parametrize(
    ("size", "expected", "context"),
    [((30, 20), (30, 20), nullcontext()), ((30, 20, 5), (20, 30), nullcontext())],
)
def test_image_size(tmp_path, size, expected, context):
    exif = Image.Exif()
    if len(size) > 2:
        exif[274] = size[2]
    Image.new("RGB", size[:2]).save(tmp_path / "a.jpg", exif=exif)
    with context:
        assert image_size(tmp_path / "a.jpg") == expected


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("images/a.jpg", "labels/a.txt"),
        ("x/images/b/c.v1.png", "x/labels/b/c.v1.txt"),
        ("images/x/images/y.jpg", "images/x/labels/y.txt"),
        ("a.jpg", "a.txt"),
    ],
)
def test_label_name_is_img2label_path_under_a_folder(name, label):
    assert label_name(name) == label
    assert img2label_path(f"/d/{name}", "/") == f"/d/{label}"
