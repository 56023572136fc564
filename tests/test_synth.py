from __future__ import annotations

import pytest

from kpmerge.imagesize import image_size
from kpmerge.synth import AIC_IMAGES, SAMPLE_AIC_IMAGES, synth_aic, synth_aic_sizes, tiny_png


@pytest.mark.parametrize(("width", "height"), [(1, 1), (7, 3), (640, 480), (950, 641), (4000, 3000)])
def test_tiny_png_has_the_size_and_is_a_valid_image(tmp_path, width, height):
    data = tiny_png(width, height)
    assert len(data) < 2000  # a few hundred bytes for the sample sizes
    path = tmp_path / "x.jpg"  # raw AIC names every image .jpg; readers go by the content
    path.write_bytes(data)
    assert image_size(path) == (width, height)
    image_module = pytest.importorskip("PIL.Image")
    with image_module.open(path) as im:
        im.load()  # decodes every row: the data is complete and the checksums are right
        assert im.size == (width, height) and im.format == "PNG"


def test_sample_aic_sizes_are_those_of_its_records():
    import json

    scale = SAMPLE_AIC_IMAGES / AIC_IMAGES
    records = json.loads(synth_aic(scale))
    sizes = synth_aic_sizes(scale)
    assert list(sizes) == [r["image_id"] for r in records]
    for r in records:
        w, h = sizes[r["image_id"]]
        for x1, y1, x2, y2 in r["human_annotations"].values():
            assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h
