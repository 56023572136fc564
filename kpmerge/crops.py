"""Cells cut from a dataset's images for contact sheets: each image read once, only the cells kept."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from .instances import Instances

MARGIN = 0.1
"""Margin around an instance's region, as a share of its larger side."""
CANVAS = (236, 236, 236)
"""Colour of a cell, or of the part of it, where there is no image."""

Cell = tuple[int, int]
"""(row, column) of a cell in a sheet."""
Region = tuple[float, float, float]
"""A square in image coordinates: x0, y0, side."""


def region(inst: Instances, j: int) -> Region:
    """The square around the box and labelled keypoints of instance j, with a margin."""
    x, y, w, h = inst.boxes[j].tolist()
    kp = inst.keypoints[j]
    on = kp[:, 2] > 0
    x0, y0, x1, y1 = x, y, x + w, y + h
    if on.any():
        x0, y0 = min(x0, kp[on, 0].min()), min(y0, kp[on, 1].min())
        x1, y1 = max(x1, kp[on, 0].max()), max(y1, kp[on, 1].max())
    size = max(x1 - x0, y1 - y0, 1.0) * (1 + 2 * MARGIN)
    return (x0 + x1 - size) / 2, (y0 + y1 - size) / 2, size


def cut_cells(
    wanted: Sequence[tuple[Cell, Path, Region]], cell: int
) -> tuple[dict[Cell, Image.Image], list[str]]:
    """`cell` x `cell` RGB images of the regions, each image file opened once.

    Returns:
        The cells cut, and a note for each image that could not be read (its cells are left out).
    """
    by_path: dict[Path, list[tuple[Cell, Region]]] = {}
    for key, path, square in wanted:
        by_path.setdefault(path, []).append((key, square))
    out: dict[Cell, Image.Image] = {}
    notes = []
    for path in sorted(by_path):
        cells = by_path[path]
        try:
            with Image.open(path) as im:
                width, height = im.size
                # A JPEG decodes at 1/2, 1/4 or 1/8 scale when every cell still gets enough pixels.
                reduce = max(1.0, min(square[2] for _, square in cells) / cell)
                im.draft("RGB", (math.ceil(width / reduce), math.ceil(height / reduce)))
                scale = im.size[0] / width
                cut = {key: _cut(im, square, scale, cell) for key, square in cells}
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            notes.append(f"{path}: cannot read the image ({exc}); drawn on a plain canvas")
            continue
        out.update(cut)
    return out, notes


def _cut(im: Image.Image, square: Region, scale: float, cell: int) -> Image.Image:
    """The square of the image (decoded at `scale`) as a cell, the canvas colour outside the image."""
    x0, y0, size = square
    width, height = im.size[0] / scale, im.size[1] / scale
    ix0, iy0 = max(0.0, x0), max(0.0, y0)
    ix1, iy1 = min(width, x0 + size), min(height, y0 + size)
    background = Image.new("RGB", (cell, cell), CANVAS)
    if ix1 <= ix0 or iy1 <= iy0:
        return background
    k = cell / size
    box = (round(ix0 * scale), round(iy0 * scale), round(ix1 * scale), round(iy1 * scale))
    target = (max(1, round((ix1 - ix0) * k)), max(1, round((iy1 - iy0) * k)))
    piece = im.crop(box).convert("RGB").resize(target, Image.Resampling.BILINEAR)
    background.paste(piece, (round((ix0 - x0) * k), round((iy0 - y0) * k)))
    return background
