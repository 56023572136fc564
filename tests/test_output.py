"""kpmerge.output.write_output: the library's writer keeps the CLI's image-size rule."""

from __future__ import annotations

import json

import pytest

from kpmerge.build import combine
from kpmerge.errors import UsageError
from kpmerge.job import SourceSpec, load_source
from kpmerge.output import write_output
from tests.synthfiles import raw_aic_file, style_file


def _sources(tmp_path, image_dir: bool):
    coco = style_file(tmp_path / "in", "coco", images=2, people=3)
    aic, images = raw_aic_file(tmp_path / "in", images=3, people=4)
    return [
        load_source(SourceSpec(coco, name="coco")),
        load_source(SourceSpec(aic, name="aic", image_dir=images if image_dir else None)),
    ]


def test_write_output_refuses_images_without_sizes(tmp_path):
    merged = combine(_sources(tmp_path, image_dir=False))
    with pytest.raises(UsageError) as caught:
        write_output(merged, tmp_path / "out")
    assert str(caught.value) == (
        "source aic: 3 of 3 images have no width/height, which MMPose and Detectron2 need: give --image-dir "
        "aic=DIR (recipe key image_dir) to read them from the images, or write without them with "
        "--allow-missing-sizes (recipe key allow_missing_sizes)"
    )
    assert not (tmp_path / "out").exists()
    out = write_output(merged, tmp_path / "out", allow_missing_sizes=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["missing_image_sizes"]["sources"] == {"aic": 3}


def test_write_output_with_the_image_folder(tmp_path):
    published: list = []
    out = write_output(combine(_sources(tmp_path, image_dir=True)), tmp_path / "out", published=published)
    assert published == [out]
    doc = json.loads((out / "annotations.json").read_text())
    assert all(isinstance(i["width"], int) for i in doc["images"])
