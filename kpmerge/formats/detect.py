"""Pick the reader for a file from its content (SPEC 1.3)."""

from __future__ import annotations

from pathlib import Path

from ..errors import KpmergeError, UsageError
from ..instances import Dataset
from ..jsonio import first_char, read_mapped
from . import aic, coco

FORMATS = ("coco", "aic")


def detect_format(data: bytes, file: str | Path | None = None) -> str:
    """`aic` for a JSON list of records with `keypoint_annotations`, `coco` for an object with images."""
    c = first_char(data)
    if c == "{":
        return "coco"
    if c == "[":
        head = data[:65536]
        if b'"keypoint_annotations"' in head or bytes(data).strip() in (b"[]",):
            return "aic"
        raise KpmergeError(
            "a JSON list, but not raw AI Challenger records (no keypoint_annotations)", file, "$"
        )
    raise KpmergeError("not valid JSON: expected an object (COCO) or a list (raw AIC)", file, "$")


def read_dataset(path: str | Path, format: str | None = None, image_dir: str | Path | None = None) -> Dataset:
    """Read a keypoint file in the given format, or the one its content shows."""
    data = read_mapped(path)
    fmt = format or detect_format(data, path)
    if fmt == "coco":
        if image_dir is not None:
            raise UsageError("an image folder is only used for raw AIC files (COCO files hold image sizes)")
        return coco.coco_to_dataset(data, file=path)
    if fmt == "aic":
        return aic.aic_to_dataset(data, file=path, image_dir=image_dir)
    raise UsageError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
