"""Readers and writers, one module per format: `read_<fmt>` / `write_<fmt>` over pure converters.

`FORMATS` is the registry: for each format its name, how its content is recognised, its converter, the
layout its files always hold (None: detected from keypoint names or K, or given by the dataset) and whether
image sizes are in the file. Formats read from a path rather than one file's bytes (a YOLO dataset: a
yaml, or a folder holding one) are recognised and read by path. A new format is one module plus one line
here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import KpmergeError, UsageError
from ..instances import Dataset
from ..jsonio import first_char, read_mapped
from ..jsonscan import nesting_checked
from . import aic, coco, mpii, wholebody, yolo
from .yolo_yaml import is_yolo_path


@dataclass(frozen=True)
class Format:
    """One input format.

    Attributes:
        name: The name users give (`--format`, recipes) and `Dataset.format` holds.
        sniff: Whether a file's content is in this format (tried in registry order); None for a format
            read from a path.
        convert: The format's `<fmt>_to_dataset(data, file, strict=...)`; formats that take an image
            folder also take `image_dir=`. None for a format read from a path.
        layout: The built-in layout every file of the format holds, or None (detected or given).
        sizes_in_file: Whether image sizes are in the annotation file.
        no_image_dir: Why an image folder is refused for this format ("" when it takes one, for sizes).
        sniff_path: For a format read from a path: whether a path is in this format.
        read_path: For a format read from a path: `read(path, split, class_id, strict=...)`.
    """

    name: str
    sniff: Callable[[bytes], bool] | None
    convert: Callable[..., Dataset] | None
    layout: str | None
    sizes_in_file: bool
    no_image_dir: str = ""
    sniff_path: Callable[[str | Path], bool] | None = None
    read_path: Callable[..., Dataset] | None = None


_COCO_SIZES = "an image folder is only used for raw AIC and MPII files (COCO files hold image sizes)"
_YOLO_IMAGES = "an image folder is not used for YOLO datasets (their yaml lists the images)"


FORMATS: tuple[Format, ...] = (
    Format("yolo", None, None, None, False, _YOLO_IMAGES, is_yolo_path, yolo.read_yolo),
    Format(
        "coco_wholebody",
        wholebody.sniff_wholebody,
        wholebody.wholebody_to_dataset,
        "coco_wholebody",
        True,
        _COCO_SIZES,
    ),
    Format("coco", coco.sniff_coco, coco.coco_to_dataset, None, True, _COCO_SIZES),
    Format("aic", aic.sniff_aic, aic.aic_to_dataset, "aic", False),
    Format("mpii", mpii.sniff_mpii, mpii.mpii_to_dataset, "mpii", False),
)
"""The registry, in the order content is tried (the more specific format first)."""


def format_names() -> tuple[str, ...]:
    """The names of the formats, in documentation order (tests/formats/test_registry.py: all of them)."""
    return ("coco", "aic", "mpii", "coco_wholebody", "yolo")


def find_format(name: str) -> Format | None:
    """The registry entry of a format name, or None."""
    return next((fmt for fmt in FORMATS if fmt.name == name), None)


def get_format(name: str) -> Format:
    """The registry entry of a format name.

    Raises:
        UsageError: for a name that is not in the registry.
    """
    fmt = find_format(name)
    if fmt is None:
        raise UsageError(f"unknown format {name!r} (known: {', '.join(format_names())})")
    return fmt


def default_layout(name: str) -> str | None:
    """The layout every file of format `name` holds (None: detected, or not a registered format)."""
    fmt = find_format(name)
    return fmt.layout if fmt is not None else None


def detect_format(data: bytes, file: str | Path | None = None) -> str:
    """The name of the first format of the registry whose sniff accepts the content.

    Raises:
        KpmergeError: when no format does.
    """
    for fmt in FORMATS:
        if fmt.sniff is not None and fmt.sniff(data):
            return fmt.name
    if first_char(data) == "[":
        raise KpmergeError(
            "a JSON list, but neither raw AI Challenger records (keypoint_annotations) "
            "nor MPII records (joints, joints_vis)",
            file,
            "$",
        )
    raise KpmergeError("not valid JSON: expected an object (COCO) or a list (raw AIC, MPII)", file, "$")


def path_format(path: str | Path) -> str | None:
    """The name of the format read from a path that `path` is in (e.g. a YOLO dataset), else None."""
    return next((f.name for f in FORMATS if f.sniff_path is not None and f.sniff_path(path)), None)


def read_dataset(
    path: str | Path,
    format: str | None = None,
    image_dir: str | Path | None = None,
    strict: bool = True,
    split: str | None = None,
    class_id: int | str | None = None,
    image_dir_optional: bool = False,
) -> Dataset:
    """Read a keypoint file (plain or gzip) in the given format, or the one its content shows.

    A `.yaml`/`.yml` file or a folder holding a dataset yaml is a YOLO-pose dataset (`split` and
    `class_id` choose what to read from it). With `strict=False` rule violations are recorded in
    `Dataset.problems` instead of raised. With `image_dir_optional` (an image folder given for every
    source), a format whose sizes do not come from an image folder leaves `image_dir` unused.

    Raises:
        UsageError: an unknown format, an image folder for a format that does not take one, an image
            folder that does not exist, `split` or `class_id` for a single file.
        KpmergeError: naming the file and JSON path of the first problem.
    """
    by_path = format if format is not None else path_format(path)
    fmt = next((f for f in FORMATS if f.name == by_path and f.read_path is not None), None)
    if fmt is not None and fmt.read_path is not None:
        if image_dir is not None and not image_dir_optional:
            raise UsageError(fmt.no_image_dir)
        return fmt.read_path(path, split or "train", class_id, strict=strict)
    if split is not None or class_id is not None:
        raise UsageError("--split and --class are only used for YOLO datasets", file=path)
    data = read_mapped(path)
    fmt = get_format(format if format is not None else detect_format(data, path))
    if fmt.convert is None:
        raise UsageError(f"format {fmt.name} is read from a dataset path", file=path)
    if image_dir is None or (image_dir_optional and (fmt.sizes_in_file or fmt.no_image_dir)):
        with nesting_checked(data, path):
            return fmt.convert(data, file=path, strict=strict)
    if fmt.no_image_dir:
        raise UsageError(fmt.no_image_dir)
    if not Path(image_dir).is_dir():
        raise UsageError("image folder not found", file=image_dir)
    with nesting_checked(data, path):
        return fmt.convert(data, file=path, image_dir=image_dir, strict=strict)
