"""COCO keypoint JSON (and COCO-style files of other datasets): read and write.

The reading and writing themselves live in `coco_reader` and `coco_writer`, which COCO-WholeBody shares.
"""

from __future__ import annotations

from pathlib import Path

from ..instances import Dataset
from ..jsonio import first_char, read_bytes
from .checks import Sink
from .coco_reader import IMAGE_FIELDS, read_coco_records
from .coco_rows import ANNOTATION_FIELDS
from .coco_writer import dataset_to_coco, dataset_to_coco_chunks

__all__ = [
    "ANNOTATION_FIELDS",
    "IMAGE_FIELDS",
    "coco_to_dataset",
    "dataset_to_coco",
    "dataset_to_coco_chunks",
    "read_coco",
    "sniff_coco",
    "write_coco",
]


def sniff_coco(data: bytes) -> bool:
    """Whether the content looks like a COCO-style file: a JSON object."""
    return first_char(data) == "{"


def read_coco(path: str | Path) -> Dataset:
    """Read a COCO-style keypoint file.

    Raises:
        KpmergeError: naming the file and JSON path of the first problem.
    """
    return coco_to_dataset(read_bytes(path), file=path)


def coco_to_dataset(data: bytes, file: str | Path | None = None, strict: bool = True) -> Dataset:
    """Parse COCO keypoint JSON bytes into a Dataset; other fields are kept as raw JSON.

    Args:
        data: The file's bytes.
        file: The file name, for messages.
        strict: When False, duplicate ids, annotations of missing images (image_index -1), bad visibility
            values, negative box sizes and K differing from the category's names are recorded in
            `Dataset.problems` instead of raised. Unreadable files (not JSON, wrong types) still raise.

    Raises:
        KpmergeError: naming the file and JSON path of the first problem.
    """
    return read_coco_records(data, file, Sink(file, record=not strict)).dataset


def write_coco(dataset: Dataset, path: str | Path, names: list[str], skeleton: list[list[int]]) -> None:
    """Write a Dataset as COCO keypoint JSON (ids as they are in the Dataset)."""
    Path(path).write_bytes(dataset_to_coco(dataset, names, skeleton))
