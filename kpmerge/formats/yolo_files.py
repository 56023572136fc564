"""The files of a YOLO-pose dataset, found as Ultralytics finds them: a split's images, each image's label
file, and image sizes.

The yaml is taken as Ultralytics takes it: `path` is the dataset root (relative paths from the yaml's
folder; absent: that folder); a split (`train`, `val`, `test`, ...) is an image folder (searched
recursively), a `.txt` list of image paths (`./x` relative to the list's folder, other relative lines
from the dataset root) or a list of those, relative to `path`; only files with a suffix Ultralytics loads
count, sorted as Ultralytics sorts them. A label file is the image path with its last `/images/` folder
replaced by `/labels/` and its extension by `.txt`. Image sizes are measured as Ultralytics measures
them: Pillow's header size with the EXIF orientation applied.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from ..errors import KpmergeError, UsageError
from .yolo_yaml import DataYaml, find_yaml, load_yaml, parse_data_yaml

IMG_FORMATS = frozenset(
    {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"}
)
"""Image suffixes Ultralytics loads (ultralytics.data.utils.IMG_FORMATS, 8.4)."""
ROTATED = frozenset({5, 6, 7, 8})
"""EXIF orientations that turn the image by 90 degrees (width and height swap)."""


def img2label_path(image: str, sep: str = os.sep) -> str:
    """Where Ultralytics looks for an image's labels: its last `/images/` folder replaced by `/labels/`
    and its extension by `.txt` (`sep`: the separator of `image`; Ultralytics uses the OS's)."""
    sa, sb = f"{sep}images{sep}", f"{sep}labels{sep}"
    return sb.join(image.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt"


def label_name(image_name: str) -> str:
    """`img2label_path` of a relative `/`-separated image name, as Ultralytics sees it once the name is
    under some folder (a leading `images/` counts)."""
    return img2label_path("/" + image_name, "/")[1:]


def image_files(spec: DataYaml, split: str) -> list[str]:
    """The images of a split, as Ultralytics lists them (sorted path strings; duplicates kept).

    Raises:
        UsageError: for a split the yaml does not have, or an entry that does not exist.
        KpmergeError: for a split without images.
    """
    if split not in spec.splits:
        have = ", ".join(spec.splits) or "none"
        raise UsageError(
            f"{split}: no such split (the yaml has: {have}); choose one with --split", file=spec.file
        )
    found: list[str] = []
    for p in _split_entries(spec, split):
        if p.is_dir():
            found += glob.glob(str(Path(glob.escape(str(p))) / "**" / "*.*"), recursive=True)
        else:
            found += _listed(spec, p)
    images = sorted(x.replace("/", os.sep) for x in found if x.rpartition(".")[-1].lower() in IMG_FORMATS)
    if not images:
        raise KpmergeError(
            f"{split}: no images found (suffixes: {', '.join(sorted(IMG_FORMATS))})", spec.file
        )
    return images


def _split_entries(spec: DataYaml, split: str) -> list[Path]:
    """The folders and list files a split names, resolved; UsageError for one that does not exist."""
    value = spec.splits[split]
    paths = []
    for entry in value if isinstance(value, list) else [value]:
        p = (spec.root / entry).resolve()
        if not p.exists() and entry.startswith("../"):  # as Ultralytics: a leading ../ may be dropped
            p = (spec.root / entry[3:]).resolve()
        if not (p.is_dir() or p.is_file()):
            raise UsageError(f"{split}: {entry} not found ({p})", file=spec.file)
        paths.append(p)
    return paths


def _listed(spec: DataYaml, list_file: Path) -> list[str]:
    """The image paths a `.txt` image list names (`./x` from the list's folder, others from the root)."""
    try:
        lines = list_file.read_text("utf-8-sig").strip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KpmergeError(f"cannot read the image list: {exc}", file=list_file) from None
    parent = str(list_file.parent) + os.sep
    return [
        x.replace("./", parent, 1) if x.startswith("./") else str(spec.root.resolve() / x)
        for x in (line.strip() for line in lines)
        if x
    ]


def dataset_paths(path: str | Path, split: str = "train") -> tuple[Path | None, tuple[Path, ...]]:
    """The dataset root, and what one split of a YOLO dataset reads: its yaml, the split's folders and
    list files, the folders of the images the lists name, and the label folders beside them. What
    cannot be found is left out (reading the dataset reports it).

    Returns:
        (root, paths): the root is None when the yaml cannot be read.
    """
    try:
        yaml_file = find_yaml(path)
        spec = parse_data_yaml(load_yaml(yaml_file), yaml_file)
        entries = _split_entries(spec, split) if split in spec.splits else []
    except KpmergeError:
        return None, ()
    folders: dict[Path, None] = {yaml_file: None}
    for p in entries:
        images = [str(p / "x.jpg")]  # stands for the images of a folder (searched recursively)
        if p.is_file():
            folders[p] = None
            try:
                images = _listed(spec, p)
            except KpmergeError:
                images = []
        for image in images:
            folders[Path(image).parent] = None
            folders[Path(img2label_path(image.replace("/", os.sep))).parent] = None
    return spec.root.resolve(), tuple(folders)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image as Ultralytics measures it (`exif_size`): the header's size, turned
    when the EXIF orientation is 5-8. Only the header is read.

    A PNG's EXIF counts only when it comes before the image data, as in Ultralytics (which reads the
    size after `verify()`); TIFF sizes are taken from the tags (newer Pillow turns them itself); for
    WebP and TIFF Ultralytics decodes the image with OpenCV, which applies the orientation too.

    Raises:
        KpmergeError: when the image is missing or its header cannot be read.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.format == "TIFF":
                tags = im.tag_v2  # type: ignore[attr-defined]
                w, h = tags.get(256, w), tags.get(257, h)
                orientation = tags.get(274)
            elif im.format == "PNG" and "exif" not in im.info:
                orientation = None
            else:
                orientation = im.getexif().get(274)
    except FileNotFoundError:
        raise KpmergeError("image not found (listed by the dataset yaml)", file=path) from None
    except Exception as exc:  # Pillow raises many kinds for a broken header
        raise KpmergeError(f"cannot read the image header: {' '.join(str(exc).split())}", file=path) from None
    return (int(h), int(w)) if orientation in ROTATED else (int(w), int(h))
