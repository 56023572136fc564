"""Drawing a contact sheet (see `kpmerge.show`): the legend, each source's header and each instance's
cell, with links and keypoints coloured by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .crops import CANVAS, region
from .instances import Instances
from .layouts import Layout
from .leftright import side

if TYPE_CHECKING:
    from .show import SheetRow

SIDE_COLORS: dict[str, tuple[int, int, int]] = {
    "left": (0, 114, 178),
    "right": (230, 97, 0),
    "": (0, 158, 115),
}
"""Colour of links and keypoints by side (left, right, centre), the same in every sheet."""
BOX = (128, 128, 128)
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
PAD, GAP, LINE = 8, 4, 13
"""Sheet border, space between cells, height of a text line (pixels)."""
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _fit(draw: ImageDraw.ImageDraw, text: str, width: float, font: Font, middle: bool = False) -> str:
    """`text`, cut with `...` at its end (or in its middle, which keeps both ends of an id) to fit."""
    if draw.textlength(text, font=font) <= width:
        return text
    head, tail = text, ""
    if middle:
        head, tail = text[: len(text) // 2], text[len(text) // 2 :]
    while head and draw.textlength(head + "..." + tail, font=font) > width:
        head = head[:-1]
        if middle and tail:
            tail = tail[1:]
    return head + "..." + tail


def _header(row: SheetRow, seed: int) -> tuple[str, str]:
    lay, k = row.layout, len(row.layout)
    first = (
        f"{row.name}: {row.annotations} annotations, {row.pool} trainable, {len(row.instances)} drawn "
        f"(seed {seed}); layout {lay.name} ({k} keypoints)"
    )
    missing = [n for i, n in enumerate(lay.keypoints) if i not in set(row.defined)]
    if not missing:
        second = f"defines all {k} keypoints"
    elif len(missing) < len(row.defined):
        second = f"defines {len(row.defined)} of {k}; not: {', '.join(missing)}"
    else:
        second = f"defines {len(row.defined)} of {k}: {', '.join(lay.keypoints[i] for i in row.defined)}"
    return first, second


def draw_sheet(
    rows: Sequence[SheetRow],
    backgrounds: Mapping[tuple[int, int], Image.Image],
    cell: int,
    names: bool,
    seed: int,
) -> Image.Image:
    """The contact sheet of `rows`: a legend, then per row its header and one cell per instance, drawn on
    its image cut (`backgrounds`, by row and column) or on a plain canvas."""
    font = ImageFont.load_default()  # built into Pillow: no system fonts, the same pixels everywhere
    columns = max(len(r.instances) for r in rows)
    width = max(2 * PAD + columns * cell + (columns - 1) * GAP, 560)
    row_height = [2 * LINE + (LINE + cell if len(r.instances) else LINE) + GAP * 2 for r in rows]
    height = PAD + 2 * LINE + GAP + sum(row_height) + PAD
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    _legend(draw, font, width)
    top = PAD + 2 * LINE + GAP
    for r, (row, h) in enumerate(zip(rows, row_height, strict=True)):
        draw.line([(PAD, top), (width - PAD, top)], fill=BOX, width=1)
        for i, text in enumerate(_header(row, seed)):
            draw.text(
                (PAD, top + GAP + i * LINE), _fit(draw, text, width - 2 * PAD, font), fill=TEXT, font=font
            )
        y = top + GAP + 2 * LINE
        if not len(row.instances):
            draw.text((PAD, y), "no trainable instance", fill=BOX, font=font)
        for c in range(len(row.instances)):
            x = PAD + c * (cell + GAP)
            label = _fit(draw, f"id {row.ids[c]}", cell, font, middle=True)
            draw.text((x, y), label, fill=TEXT, font=font)
            tile = backgrounds.get((r, c))
            tile = tile.copy() if tile is not None else Image.new("RGB", (cell, cell), CANVAS)
            _instance(tile, row.instances, c, row.layout, names, font, on_image=(r, c) in backgrounds)
            sheet.paste(tile, (x, y + LINE))
        top += h
    return sheet


def _legend(draw: ImageDraw.ImageDraw, font: Font, width: int) -> None:
    draw.text((PAD, PAD), "kpmerge show", fill=TEXT, font=font)
    x, y = PAD, PAD + LINE + 2
    for label, key in (("left", "left"), ("right", "right"), ("centre", "")):
        draw.line([(x, y + 5), (x + 18, y + 5)], fill=SIDE_COLORS[key], width=3)
        draw.text((x + 22, y), label, fill=TEXT, font=font)
        x += 22 + int(draw.textlength(label, font=font)) + 14
    for label, filled in (("visible", True), ("occluded", False)):
        draw.ellipse([x, y + 1, x + 8, y + 9], fill=TEXT if filled else None, outline=TEXT, width=2)
        draw.text((x + 12, y), label, fill=TEXT, font=font)
        x += 12 + int(draw.textlength(label, font=font)) + 14
    draw.text((x, y), "(unlabelled: not drawn; rectangle: box)", fill=BOX, font=font)


def _instance(
    tile: Image.Image,
    inst: Instances,
    j: int,
    layout: Layout,
    names: bool,
    font: Font,
    on_image: bool,
) -> None:
    """Draw instance j on its cell: box outline, links by side, keypoints by visibility."""
    draw = ImageDraw.Draw(tile)
    cell = tile.size[0]
    x0, y0, size = region(inst, j)
    k = cell / size
    bx, by, bw, bh = inst.boxes[j].tolist()
    draw.rectangle(
        [(bx - x0) * k, (by - y0) * k, (bx + bw - x0) * k, (by + bh - y0) * k],
        outline=(255, 255, 255) if on_image else BOX,
        width=1,
    )
    kp = inst.keypoints[j]
    px, py, v = (kp[:, 0] - x0) * k, (kp[:, 1] - y0) * k, kp[:, 2]
    sides = [side(n) for n in layout.keypoints]
    line = max(1, cell // 80)
    for a, b in layout.skeleton_ids:
        if v[a] > 0 and v[b] > 0:
            color = SIDE_COLORS[sides[a] if sides[a] == sides[b] else ""]
            draw.line([(px[a], py[a]), (px[b], py[b])], fill=color, width=line)
    r = max(2, cell // 40)
    for i in np.flatnonzero(v > 0).tolist():
        color = SIDE_COLORS[sides[i]]
        dot = [px[i] - r, py[i] - r, px[i] + r, py[i] + r]
        if v[i] >= 2:
            draw.ellipse(dot, fill=color, outline=(255, 255, 255), width=1)
        else:
            draw.ellipse(dot, fill=None, outline=color, width=max(2, r // 2))
        if names:
            draw.text(
                (px[i] + r + 1, py[i] - r - 2),
                layout.keypoints[i],
                fill=color,
                font=font,
                stroke_width=1,
                stroke_fill=(255, 255, 255),
            )
