"""Pick the reader for a file from its content (SPEC 1.3)."""

from __future__ import annotations

from pathlib import Path

from ..errors import KpmergeError, UsageError
from ..instances import Dataset
from ..jsonio import content_start, first_char, read_mapped
from ..jsonscan import nesting_checked
from . import aic, coco, mpii, wholebody, yolo
from .yolo_yaml import is_yolo_path  # i14 (YOLO): move into the format registry

FORMATS = ("coco", "aic", "mpii", "coco_wholebody", "yolo")
_WINDOW = 1 << 20
"""Bytes after `"annotations"` searched for a COCO-WholeBody part field."""


def detect_format(data: bytes, file: str | Path | None = None) -> str:
    """The format of a keypoint file from its content.

    `aic` for a JSON list of records with `keypoint_annotations`, `mpii` for a list of records with
    `joints` and `joints_vis` (MMPose's MPII JSON), `coco_wholebody` for an object whose first
    annotation has `foot_kpts`, `coco` for any other object.
    """
    c = first_char(data)
    if c == "{":
        at = data.find(b'"annotations"')
        if at >= 0 and data.find(b'"foot_kpts"', at, at + _WINDOW) >= 0:
            return "coco_wholebody"
        return "coco"
    if c == "[":
        start = content_start(data)
        head = data[start : start + 65536]
        after = content_start(data, start + 1)
        if b'"keypoint_annotations"' in head or data[after : after + 1] == b"]":  # or an empty list
            return "aic"
        if b'"joints_vis"' in head and b'"joints"' in head:
            return "mpii"
        raise KpmergeError(
            "a JSON list, but neither raw AI Challenger records (keypoint_annotations) "
            "nor MPII records (joints, joints_vis)",
            file,
            "$",
        )
    raise KpmergeError("not valid JSON: expected an object (COCO) or a list (raw AIC, MPII)", file, "$")


def read_dataset(
    path: str | Path,
    format: str | None = None,
    image_dir: str | Path | None = None,
    strict: bool = True,
    split: str | None = None,
    class_id: int | str | None = None,
) -> Dataset:
    """Read a keypoint file (plain or gzip) in the given format, or the one its content shows.

    A `.yaml`/`.yml` file or a folder holding a dataset yaml is a YOLO-pose dataset (`split` and
    `class_id` choose what to read from it). With `strict=False` the COCO, raw AIC and YOLO readers
    record rule violations in `Dataset.problems` instead of raising.
    """
    # i14 (YOLO): these lines move into the format registry (sniff by path, per-source split and class).
    if format == "yolo" or (format is None and is_yolo_path(path)):
        if image_dir is not None:
            raise UsageError("an image folder is not used for YOLO datasets (their yaml lists the images)")
        return yolo.read_yolo(path, split or "train", class_id, strict=strict)
    if split is not None or class_id is not None:
        raise UsageError("--split and --class are only used for YOLO datasets", file=path)
    data = read_mapped(path)
    with nesting_checked(data, path):
        return _read(data, path, format, image_dir, strict)


def _read(
    data: bytes, path: str | Path, format: str | None, image_dir: str | Path | None, strict: bool
) -> Dataset:
    fmt = format or detect_format(data, path)
    if fmt in ("coco", "coco_wholebody") and image_dir is not None:
        raise UsageError(
            "an image folder is only used for raw AIC and MPII files (COCO files hold image sizes)"
        )
    if fmt == "coco":
        return coco.coco_to_dataset(data, file=path, strict=strict)
    if fmt == "coco_wholebody":
        return wholebody.wholebody_to_dataset(data, file=path)
    if fmt == "aic":
        if image_dir is not None and not Path(image_dir).is_dir():
            raise UsageError("image folder not found", file=image_dir)
        return aic.aic_to_dataset(data, file=path, image_dir=image_dir, strict=strict)
    if fmt == "mpii":
        if image_dir is not None and not Path(image_dir).is_dir():
            raise UsageError("image folder not found", file=image_dir)
        return mpii.mpii_to_dataset(data, file=path, image_dir=image_dir)
    raise UsageError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
