"""Ultralytics YOLO pose export: one label text file per image and a data yaml (pure, no I/O).

The rows are the ones Ultralytics' own `convert_coco(use_keypoints=True)` (ultralytics/data/converter.py,
8.4) writes for the same COCO file, image by image (docs/exports.md says the same for users):

- Crowd people are left out; then people whose box has width or height <= 0; then people with no
  labelled keypoint (every `v` 0: COCO evaluation ignores them). Each is counted; `keep_empty` keeps
  the last kind as detection-only rows (their keypoints as they are, all `v` 0).
- A row is `0 cx cy w h` then K times `x y v`: the box centre `(x + w / 2) / width`, `(y + h / 2) /
  height` and size divided by the image size (not clipped), the keypoints divided by the image size with
  `v` as COCO has it (0, 1, 2), every number written `%g` (6 significant digits), in annotation order.
  A row equal to an earlier row of the same image is left out (counted as `duplicate`).
- Only where that row would make Ultralytics' loader reject the whole image as corrupt does kpmerge
  write something else: a keypoint whose written `x` or `y` is above 1.01 or below -0.01 is written
  `0 0 0` (counted when it was labelled), and a person whose box centre is below -0.01 is left out
  (counted as `box_outside_image`).

Layout of the files: `train.txt` lists `./images/<file_name>` and the label is `labels/<file_name>.txt`
(Ultralytics swaps the last `/images/` folder of an image path for `/labels/`), so linking the image data
root at `images/` is all it takes. A file name with an `images` folder of its own (PoseTrack's
`images/val/...`) would put its label inside that link; such an image is listed through `nested/`
instead: `nested/<head>images/<tail>` with the label at `nested/<head>labels/<tail>.txt`, where the user
links `nested/<head>images` to `<data root>/<head>images` (the data yaml lists the links to make).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field

import numpy as np

from ..build import Merged
from ..errors import UsageError
from ..formats.yolo import HIGH, LOW, repeats
from ..formats.yolo_files import IMG_FORMATS, label_name
from ..output import require_image_sizes, source_size_masks

FOLDER = "yolo"
DATA_YAML = "data.yaml"
IMAGE_LIST = "train.txt"
NESTED = "nested"
"""Folder of the images whose file names hold an `images` folder of their own."""
REASONS = ("crowd", "empty_box", "no_labelled_keypoints", "box_outside_image", "duplicate")
"""Why a person gets no row, in the order the rules apply."""


@dataclass(frozen=True)
class YoloExport:
    """The YOLO export of a merged dataset.

    Attributes:
        files: Relative file name (under the export folder) -> contents.
        rows: Label rows written.
        not_written: People left out, by reason (see REASONS).
        keypoints_outside: Labelled keypoints written as `0 0 0` because Ultralytics would reject them.
        sources: Per source name, its `rows`, `not_written` and `keypoints_outside`.
        links: `(link, target)` folders the user links: the data root at `images`, and one per nested head.
    """

    files: dict[str, bytes]
    rows: int
    not_written: dict[str, int] = field(default_factory=dict)
    keypoints_outside: int = 0
    sources: dict[str, dict[str, object]] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()

    def summary(self) -> dict[str, object]:
        """The counts for the manifest (`exports.yolo`)."""
        return {
            "rows": self.rows,
            "not_written": dict(self.not_written),
            "keypoints_outside": self.keypoints_outside,
            "links": [list(link) for link in self.links],
            "sources": self.sources,
        }


def _normalized(file_name: str) -> str:
    if any(c < " " or c == "\x7f" for c in file_name):  # NUL is no path; a newline would split train.txt
        raise UsageError(f"yolo export: image file name {file_name!r} holds a control character")
    norm = posixpath.normpath(file_name.replace("\\", "/"))
    if norm.startswith(("/", "../")) or norm == ".." or "./" in norm:
        raise UsageError(
            f"yolo export: image file name {file_name!r} must be a relative path inside the data root"
        )
    _, dot, ext = norm.rpartition(".")
    if not dot or "/" in ext or ext.lower() not in IMG_FORMATS:
        raise UsageError(
            f"yolo export: image file name {file_name!r} is not an image type Ultralytics loads "
            f"({', '.join(sorted(IMG_FORMATS))})"
        )
    return norm


def image_path(file_name: str) -> str:
    """Where `train.txt` lists an image, relative to the export folder.

    Raises:
        UsageError: for a file name that is absolute, leaves its folder or is not an image type
            Ultralytics loads.
    """
    norm = _normalized(file_name)
    head, sep, tail = ("/" + norm).rpartition("/images/")
    return f"{NESTED}{head}/images/{tail}" if sep else f"images/{norm}"


def label_path(file_name: str) -> str:
    """Where Ultralytics looks for the labels of an image listed at `image_path(file_name)`."""
    return label_name(image_path(file_name))


def yolo_export(merged: Merged, keep_empty: bool = False) -> YoloExport:
    """Ultralytics pose labels, image list and data yaml for a merged dataset.

    Args:
        merged: The merged dataset.
        keep_empty: Keep people with no labelled keypoint, as detection-only rows.

    Raises:
        UsageError: when an image has no width or height (naming the source and the count), when an image
            file name cannot be mapped to a label file, or when two images share a label file.
    """
    ds = merged.dataset
    images, inst = ds.images, ds.instances
    require_image_sizes(source_size_masks(merged), "--export yolo needs")  # it divides by them
    listed = [image_path(str(f)) for f in images.file_names]
    names = [label_path(str(f)) for f in images.file_names]
    _check_names(images.file_names, names)
    links = _links(listed, names)
    w = images.widths[inst.image_index]
    h = images.heights[inst.image_index]
    k = inst.k
    table = np.zeros((len(inst), 5 + 3 * k))
    bx, by, bw, bh = (inst.boxes[:, i] for i in range(4))
    table[:, 1] = (bx + bw / 2) / w
    table[:, 2] = (by + bh / 2) / h
    table[:, 3] = bw / w
    table[:, 4] = bh / h
    kp = inst.keypoints
    table[:, 5::3] = kp[:, :, 0] / w[:, None]
    table[:, 6::3] = kp[:, :, 1] / h[:, None]
    table[:, 7::3] = kp[:, :, 2]
    reason = np.zeros(len(inst), dtype=np.int64)  # 0: written, else 1 + index in REASONS
    crowd = inst.iscrowd > 0
    empty = ~crowd & ((table[:, 3] <= 0) | (table[:, 4] <= 0))
    no_kp = ~crowd & ~empty & ~(kp[:, :, 2] != 0).any(axis=1) & (not keep_empty)
    outside_box = ~crowd & ~empty & ~no_kp & _rejected(table[:, 1:3], low_only=True).any(axis=1)
    for i, mask in enumerate((crowd, empty, no_kp, outside_box)):
        reason[mask] = i + 1
    xy = table[:, 5:].reshape(len(inst), k, 3)[:, :, :2]
    bad_kp = _rejected(xy.reshape(len(inst), 2 * k)).reshape(len(inst), k, 2).any(axis=2)
    outside = bad_kp & (kp[:, :, 2] > 0) & (reason == 0)[:, None]
    keypoint_values = table[:, 5:]  # a view: zeroing it zeroes the table
    keypoint_values[np.repeat(bad_kp, 3, axis=1)] = 0.0
    table += 0.0  # -0.0 as 0.0, as Python compares them when Ultralytics drops repeated rows
    dup = (reason == 0) & repeats(inst.image_index, table, reason == 0)
    reason[dup] = len(REASONS)
    keep = reason == 0
    files = _label_files(names, inst.image_index[keep], table[keep])
    files[IMAGE_LIST] = "".join(f"./{p}\n" for p in listed).encode()
    not_written = {r: int(np.count_nonzero(reason == i + 1)) for i, r in enumerate(REASONS)}
    per_source = {}
    owner = np.asarray(merged.source_index)
    for s_i, s in enumerate(merged.sources):
        mine = owner == s_i
        per_source[s.name] = {
            "rows": int(np.count_nonzero(keep & mine)),
            "not_written": {
                r: int(np.count_nonzero((reason == i + 1) & mine)) for i, r in enumerate(REASONS)
            },
            "keypoints_outside": int(np.count_nonzero(outside[mine])),
        }
    result = YoloExport(
        files=files,
        rows=int(np.count_nonzero(keep)),
        not_written=not_written,
        keypoints_outside=int(np.count_nonzero(outside)),
        sources=per_source,
        links=links,
    )
    files[DATA_YAML] = data_yaml(merged, result).encode("utf-8")
    return result


def yolo_files(merged: Merged, keep_empty: bool = False) -> dict[str, bytes]:
    """The export's files under `yolo/`: name -> bytes."""
    return {f"{FOLDER}/{name}": data for name, data in yolo_export(merged, keep_empty).files.items()}


def _check_names(file_names: np.ndarray, names: list[str]) -> None:
    firsts: dict[str, int] = {}
    for i, n in enumerate(names):
        j = firsts.setdefault(n, i)
        if j != i:
            raise UsageError(
                f"yolo export: images {file_names[j]!r} and {file_names[i]!r} would share the "
                f"label file {n}; give the sources different --image-prefix values"
            )


def _links(listed: list[str], labels: list[str]) -> tuple[tuple[str, str], ...]:
    """The folders to link: `images` to the data root, and `nested/<head>images` to `<head>images` there.

    Raises:
        UsageError: when a link would hold a label folder of the export (file names whose `images`
            folders nest in each other).
    """
    links = {"images": "."} if any(p.startswith("images/") for p in listed) else {}
    for p in listed:
        if p.startswith(f"{NESTED}/"):
            link = p.rsplit("/images/", 1)[0] + "/images"
            links[link] = link.removeprefix(f"{NESTED}/")
    for link in links:
        if link == "images":
            continue
        inside = next((lb for lb in labels if lb.startswith(link + "/")), None)
        if inside is not None:
            raise UsageError(
                f"yolo export: the folder {link} would be a link to the images and also hold the label "
                f"file {inside}; give the sources --image-prefix values without nested images/ folders"
            )
    return tuple(sorted(links.items()))


def _rejected(values: np.ndarray, low_only: bool = False) -> np.ndarray:
    """Which values Ultralytics rejects once written with `%g`: below -0.01 (or above 1.01) as float32."""
    out = np.zeros(values.shape, dtype=bool)
    near = (values < -0.0099) if low_only else (values < -0.0099) | (values > 1.0099)
    if near.any():
        written = np.char.mod("%g", values[near]).astype(np.float64).astype(np.float32)
        out[near] = (written < LOW) if low_only else (written < LOW) | (written > HIGH)
    return out


def _format_rows(table: np.ndarray) -> bytes:
    """The rows, each written `%g` and ended by a newline."""
    if not len(table):
        return b""
    fmt = " ".join(["%g"] * table.shape[1]) + "\n"
    return ((fmt * len(table)) % tuple(table.ravel().tolist())).encode()


def _label_files(names: list[str], image_of_row: np.ndarray, table: np.ndarray) -> dict[str, bytes]:
    """Each image's label file: its rows in order, written at once and cut at the images' bounds."""
    order = np.argsort(image_of_row, kind="stable")
    text = _format_rows(table[order])
    row_ends = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == ord("\n")) + 1
    row_bounds = np.concatenate([[0], row_ends])
    counts = np.bincount(image_of_row, minlength=len(names))
    bounds = row_bounds[np.concatenate([[0], np.cumsum(counts)])].tolist()
    return {name: text[a:b] for name, a, b in zip(names, bounds[:-1], bounds[1:], strict=True)}


def data_yaml(merged: Merged, export: YoloExport) -> str:
    """The Ultralytics data yaml: image lists, `kpt_shape`, `flip_idx`, class and keypoint names."""
    lay = merged.layout
    sources = ", ".join(s.name for s in merged.sources)
    left_out = ", ".join(f"{v} {k}" for k, v in export.not_written.items())
    lines = [
        f"# Ultralytics pose dataset written by kpmerge {merged.mode} of {sources} (layout {lay.name}).",
        f"# {export.rows} label rows, as Ultralytics' convert_coco(use_keypoints=True) writes them.",
        f"# People left out: {left_out}.",
        f"# Labelled keypoints outside the image written as 0 0 0: {export.keypoints_outside}.",
        "# Keypoints: " + ", ".join(f"{i} {n}" for i, n in enumerate(lay.keypoints)),
        "#",
        "# path: left out, so Ultralytics takes the folder of this file as the dataset root.",
        "# train: image list, relative to this folder. Link your image data root (DATA) here so that the",
        "#   listed images exist (run in this folder):",
        *[
            f"#   ln -s DATA/{target} {link}" if target != "." else f"#   ln -s DATA {link}"
            for link, target in export.links
        ],
        "# Labels are in labels/ (and nested/): Ultralytics swaps the last /images/ folder of an image path",
        "#   for /labels/.",
        "# val: kpmerge does not split; this points at the same list. Point it at a held-out list.",
        f"train: {IMAGE_LIST}",
        f"val: {IMAGE_LIST}",
        "",
        f"kpt_shape: [{len(lay)}, 3]  # keypoints, dims (x, y, visibility 0/1/2)",
        f"flip_idx: [{', '.join(str(i) for i in lay.flip_indices)}]",
        "names:",
        "  0: person",
        "kpt_names:",
        f"  0: [{', '.join(json.dumps(n) for n in lay.keypoints)}]",
        "",
    ]
    return "\n".join(lines)
