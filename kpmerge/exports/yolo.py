"""Ultralytics YOLO pose export: one label text file per image and a data yaml (pure, no I/O).

Rules (the README's "Exports and evaluation files" section says the same for users):

- A label row is `0 cx cy w h` then K times `x y v`: the box centre and size and the keypoints divided
  by the image width and height. `v` is written as COCO has it (0 unlabelled, 1 occluded, 2 visible),
  as Ultralytics' own COCO converter does; Ultralytics treats any `v != 0` as labelled.
- Unlabelled keypoints, and labelled ones outside the image, are written `0 0 0` (the latter counted).
- Numbers are written with 6 significant digits (`%.6g`, as Ultralytics' own COCO converter writes `%g`).
- The box is clipped to the image; an instance whose clipped box is empty is left out (counted).
- Crowd instances are left out (counted): the format has no ignore regions.
- Images are listed in `train.txt` as `./images/<file_name>`; Ultralytics finds each label by replacing
  the last `/images/` folder of the image path with `/labels/` and the extension with `.txt`, and the
  export writes every label exactly there.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

import numpy as np

from ..build import Merged
from ..errors import UsageError

FOLDER = "yolo"
DATA_YAML = "data.yaml"
IMAGE_LIST = "train.txt"
IMAGE_FORMATS = frozenset({"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic"})
"""Image suffixes Ultralytics loads (ultralytics.data.utils.IMG_FORMATS)."""


@dataclass(frozen=True)
class YoloExport:
    """The YOLO export of a merged dataset.

    Attributes:
        files: Relative file name (under the export folder) -> contents.
        rows: Label rows written (one per instance).
        not_written: Instances left out, by reason (`crowd`, `empty_box`).
        keypoints_dropped: Labelled keypoints written as `0 0 0` because they lie outside the image.
    """

    files: dict[str, bytes]
    rows: int
    not_written: dict[str, int] = field(default_factory=dict)
    keypoints_dropped: int = 0


def label_path(file_name: str) -> str:
    """Where Ultralytics looks for the labels of `images/<file_name>`, relative to the export folder.

    Raises:
        UsageError: for a file name that is absolute, leaves its folder or is not an image type
            Ultralytics loads.
    """
    norm = posixpath.normpath(file_name.replace("\\", "/"))
    if norm.startswith(("/", "../")) or norm == ".." or "./" in norm:
        raise UsageError(
            f"yolo export: image file name {file_name!r} must be a relative path inside the data root"
        )
    _, dot, ext = norm.rpartition(".")
    if not dot or "/" in ext or ext.lower() not in IMAGE_FORMATS:
        raise UsageError(
            f"yolo export: image file name {file_name!r} is not an image type Ultralytics loads "
            f"({', '.join(sorted(IMAGE_FORMATS))})"
        )
    image = "/images/" + norm
    return "/labels/".join(image.rsplit("/images/", 1)).rsplit(".", 1)[0].lstrip("/") + ".txt"


def yolo_export(merged: Merged) -> YoloExport:
    """Ultralytics pose labels, image list and data yaml for a merged dataset.

    Raises:
        UsageError: when an image has no width or height (naming the source and the count), when an image
            file name cannot be mapped to a label file, or when two images share a label file.
    """
    ds = merged.dataset
    images, inst = ds.images, ds.instances
    _check_sizes(merged)
    names = [label_path(str(f)) for f in images.file_names]
    firsts: dict[str, int] = {}
    for i, n in enumerate(names):
        j = firsts.setdefault(n, i)
        if j != i:
            raise UsageError(
                f"yolo export: images {images.file_names[j]!r} and {images.file_names[i]!r} would share the "
                f"label file {n}; give the sources different --image-prefix values"
            )
    w = images.widths[inst.image_index]
    h = images.heights[inst.image_index]
    x1 = np.clip(inst.boxes[:, 0], 0, w)
    y1 = np.clip(inst.boxes[:, 1], 0, h)
    x2 = np.clip(inst.boxes[:, 0] + inst.boxes[:, 2], 0, w)
    y2 = np.clip(inst.boxes[:, 1] + inst.boxes[:, 3], 0, h)
    crowd = inst.iscrowd > 0
    empty = ~crowd & ((x2 <= x1) | (y2 <= y1))
    keep = ~crowd & ~empty
    kp = inst.keypoints
    nx, ny = kp[:, :, 0] / w[:, None], kp[:, :, 1] / h[:, None]
    labelled = kp[:, :, 2] > 0
    inside = (nx >= 0) & (nx <= 1) & (ny >= 0) & (ny <= 1)
    use = labelled & inside
    k = kp.shape[1]
    table = np.zeros((len(inst), 5 + 3 * k))
    table[:, 1] = (x1 + x2) / 2 / w
    table[:, 2] = (y1 + y2) / 2 / h
    table[:, 3] = (x2 - x1) / w
    table[:, 4] = (y2 - y1) / h
    table[:, 5::3] = np.where(use, nx, 0.0)
    table[:, 6::3] = np.where(use, ny, 0.0)
    table[:, 7::3] = np.where(use, kp[:, :, 2], 0.0)
    rows = _format_rows(table[keep], k)
    files = _label_files(names, inst.image_index[keep], rows)
    not_written = {"crowd": int(crowd.sum()), "empty_box": int(empty.sum())}
    dropped = int((labelled & ~inside)[keep].sum())
    listed = [f"./images/{posixpath.normpath(str(f).replace(chr(92), '/'))}\n" for f in images.file_names]
    files[IMAGE_LIST] = "".join(listed).encode()
    files[DATA_YAML] = data_yaml(merged, len(rows), not_written, dropped).encode("utf-8")
    return YoloExport(files=files, rows=len(rows), not_written=not_written, keypoints_dropped=dropped)


def yolo_files(merged: Merged) -> dict[str, bytes]:
    """The export's files under `yolo/`: name -> bytes."""
    return {f"{FOLDER}/{name}": data for name, data in yolo_export(merged).files.items()}


def _check_sizes(merged: Merged) -> None:
    images = merged.dataset.images
    w, h = images.widths, images.heights
    bad = ~(np.isfinite(w) & np.isfinite(h) & (w > 0) & (h > 0))
    if not bad.any():
        return
    for s in merged.sources:
        a, b = s.image_range
        n = int(bad[a:b].sum())
        if n:
            raise UsageError(
                f"yolo export needs image sizes: source {s.name} has {n} of {b - a} images without "
                "width/height (give --image-dir NAME=FOLDER to read them from the image headers)"
            )


def _format_rows(table: np.ndarray, k: int) -> list[str]:
    if not len(table):
        return []
    fmt = " ".join(["%d", "%.6g", "%.6g", "%.6g", "%.6g"] + ["%.6g %.6g %d"] * k)
    text = ("\n".join([fmt] * len(table))) % tuple(table.ravel().tolist())
    return text.split("\n")


def _label_files(names: list[str], image_of_row: np.ndarray, rows: list[str]) -> dict[str, bytes]:
    order = np.argsort(image_of_row, kind="stable")
    counts = np.bincount(image_of_row, minlength=len(names))
    files = {}
    start = 0
    for i, name in enumerate(names):
        stop = start + int(counts[i])
        files[name] = "".join(rows[j] + "\n" for j in order[start:stop]).encode()
        start = stop
    return files


def data_yaml(merged: Merged, rows: int, not_written: dict[str, int], dropped: int) -> str:
    """The Ultralytics data yaml: roots, image lists, `kpt_shape`, `flip_idx` and class names."""
    lay = merged.layout
    sources = ", ".join(s.name for s in merged.sources)
    left_out = ", ".join(f"{v} {k}" for k, v in sorted(not_written.items()))
    lines = [
        f"# Ultralytics pose dataset written by kpmerge {merged.mode} of {sources} (layout {lay.name}).",
        f"# {rows} label rows; instances left out: {left_out}; labelled keypoints outside the image "
        f"written as 0 0 0: {dropped}.",
        "# Keypoints: " + ", ".join(f"{i} {n}" for i, n in enumerate(lay.keypoints)),
        "#",
        "# path: the dataset root. Left out, so Ultralytics takes the folder of this file. Put (or symlink)",
        "#   your image data root at images/ beside this file, so that images/<file_name> exists.",
        "# train: image list, one ./images/<file_name> per line, relative to this folder. Labels are in",
        "#   labels/ (Ultralytics swaps the last /images/ folder of an image path for /labels/).",
        "# val: kpmerge does not split; this points at the same list. Point it at a held-out list.",
        f"train: {IMAGE_LIST}",
        f"val: {IMAGE_LIST}",
        "",
        f"kpt_shape: [{len(lay)}, 3]  # keypoints, dims (x, y, visibility 0/1/2)",
        f"flip_idx: [{', '.join(str(i) for i in lay.flip_indices)}]",
        "names:",
        "  0: person",
        "",
    ]
    return "\n".join(lines)
