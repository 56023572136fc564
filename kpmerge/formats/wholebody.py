"""COCO-WholeBody keypoint JSON (COCO plus foot, face and hand keypoints): read and write.

A COCO-WholeBody file is a COCO keypoint file whose annotations also carry `foot_kpts` (6 x 3),
`face_kpts` (68 x 3), `lefthand_kpts` (21 x 3) and `righthand_kpts` (21 x 3). They are read into the
133-keypoint `coco_wholebody` layout in MMPose's order: 17 body, 6 foot, 68 face, 21 left hand,
21 right hand. The foot order (left big toe, left small toe, left heel, then the right ones) is the
one of MMPose's `configs/_base_/datasets/coco_wholebody.py` (ids 17-22), which the official format
description (github.com/jin-s13/COCO-WholeBody, data_format.md) leaves to that keypoint list.

The official description allows non-integer visibilities in the whole-body parts, where `v > 0`
means reliable: such a value is read as 2 (labelled), and `v <= 0` as `(0, 0, 0)`; the count of
changed values is reported as a note. The body is read and written by the shared COCO reader and writer
(`coco_reader`, `coco_writer`); the four part fields are taken out of (and put back into) each annotation's
members, parsed in bulk like `keypoints`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import KpmergeError
from ..instances import Dataset
from ..jsonio import Raw, decode_column, first_char, float_rows, read_bytes
from ..jsonwrite import key_bytes, number_rows
from ..layouts import builtin_layout
from ..parallel import in_parts, shared_empty
from .checks import Sink, check_finite
from .coco_reader import read_coco_records
from .coco_writer import dataset_to_coco

BODY = 17
PARTS = (("foot_kpts", 6), ("face_kpts", 68), ("lefthand_kpts", 21), ("righthand_kpts", 21))
"""The part fields in layout order, with their keypoint counts."""
K = BODY + sum(n for _, n in PARTS)
PART_FIELDS = frozenset(name for name, _ in PARTS)
_POSITION = re.compile(r"^\$\[(\d+)\](.*)$")
_WINDOW = 1 << 20
"""Bytes after `"annotations"` searched for a part field when sniffing."""
PARALLEL_MIN_ROWS = 20_000
"""Annotations per process from which the part fields are parsed by more than one (`parallel.in_parts`)."""


def sniff_wholebody(data: bytes) -> bool:
    """Whether the content looks like COCO-WholeBody: an object whose first annotation has `foot_kpts`."""
    if first_char(data) != "{":
        return False
    at = data.find(b'"annotations"')
    return at >= 0 and data.find(b'"foot_kpts"', at, at + _WINDOW) >= 0


def read_wholebody(path: str | Path) -> Dataset:
    """Read a COCO-WholeBody file into a Dataset in the 133-keypoint coco_wholebody layout.

    Raises:
        KpmergeError: naming the file and JSON path of the first problem.
    """
    return wholebody_to_dataset(read_bytes(path), file=path)


def wholebody_to_dataset(data: bytes, file: str | Path | None = None, strict: bool = True) -> Dataset:
    """Parse COCO-WholeBody JSON bytes into a Dataset (keypoints (N, 133, 3)).

    The body is read as COCO (with `strict=False`, its rule violations are recorded as for COCO); the
    part fields are parsed in bulk like `keypoints`.

    Raises:
        KpmergeError: naming the file and JSON path of the first problem.
    """
    read = read_coco_records(data, file, Sink(file, record=not strict), take=[name for name, _ in PARTS])
    body, inst = read.dataset, read.dataset.instances
    if len(inst) and inst.k != BODY:
        raise KpmergeError(f"expected {BODY} body keypoints per annotation, got {inst.k}", file)
    ids = list(inst.ids)
    n = len(inst)
    missing = [
        (read.taken[name].index(None), p) for p, (name, _) in enumerate(PARTS) if None in read.taken[name]
    ]
    if missing:  # the first annotation without a part, and its first missing part
        j, p = min(missing)
        name = PARTS[p][0]
        raise KpmergeError(f"missing `{name}`", file, f"$.annotations[id={ids[j]}].{name}")
    keypoints = shared_empty((n, K, 3), np.float64)
    changed = shared_empty((n,), np.int64)  # per annotation: visibilities read other than as written
    keypoints[:, :BODY] = inst.keypoints
    flat = keypoints.reshape(n, 3 * K)  # a view: slices of it are the parts' rows, in place
    parts: list[tuple[str, int, int, list[Raw]]] = []  # name, first keypoint, keypoints, raw rows
    start = BODY
    for name, k in PARTS:
        parts.append((name, start, k, read.taken.pop(name)))  # type: ignore[arg-type]
        start += k

    def fill(lo: int, hi: int) -> bool:
        """Rows lo..hi of every part, in bulk and in place, visibilities made COCO's; False when a row is
        irregular or not finite (the parts are then read again one by one, to report it)."""
        for _, first, k, raws in parts:
            rows = flat[lo:hi, 3 * first : 3 * (first + k)]
            if float_rows(raws[lo:hi], 3 * k, out=rows) is None or not np.isfinite(rows).all():
                return False
        changed[lo:hi] = sum(
            _visibility_to_coco(keypoints[lo:hi, first : first + k]) for _, first, k, _ in parts
        )
        return True

    if not in_parts(fill, n, [keypoints, changed], PARALLEL_MIN_ROWS):
        changed[:] = 0
        for name, first, k, raws in parts:
            rows = flat[:, 3 * first : 3 * (first + k)]
            if float_rows(raws, 3 * k, out=rows) is None:
                rows[...] = _part_rows(raws, name, k, ids, file)
            check_finite(rows, Sink(file), lambda j: f"$.annotations[id={ids[j]}]", name)
            changed += _visibility_to_coco(keypoints[:, first : first + k])
    count = int(changed.sum())
    notes = body.notes
    if count:
        notes += (f"{count} whole-body visibilities other than 0, 1, 2 read as 2 (v > 0) or 0",)
    instances = inst.with_keypoints(keypoints)
    return replace(body, instances=instances, keypoint_names=None, format="coco_wholebody", notes=notes)


def _visibility_to_coco(part: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Make a part's (N, k, 3) visibilities 0 or 2 in place (unlabelled points zeroed); how many changed
    in each row."""
    v = part[:, :, 2]
    labelled = v > 0
    odd = (v != 0) & (v != 1) & (v != 2)
    changed = np.count_nonzero(odd, axis=1)
    if not labelled.all():
        np.copyto(part, 0.0, where=~labelled[:, :, None])
    if odd.any():
        part[:, :, 2] = np.where((v == 1) | (v == 2), v, np.where(labelled, 2.0, 0.0))
    return changed


def _part_rows(raws: list[Raw], name: str, k: int, ids: list[object], file: str | Path | None) -> np.ndarray:
    """A part's rows decoded one by one, raising KpmergeError at the first that is not 3 * k numbers."""
    try:
        rows = decode_column(raws, list[float], file, "", name)
    except KpmergeError as err:
        raise KpmergeError(err.message, file, _by_id(err.json_path or "", ids)) from None
    for j, row in enumerate(rows):
        if len(row) != 3 * k:
            raise KpmergeError(
                f"expected {3 * k} numbers ({k} keypoints x 3), got {len(row)}",
                file,
                f"$.annotations[id={ids[j]}].{name}",
            )
    return np.array(rows, dtype=np.float64)


def _by_id(path: str, ids: list[object]) -> str:
    """`$[3].foot_kpts` (position among person annotations) -> `$.annotations[id=..].foot_kpts`."""
    m = _POSITION.match(path)
    return f"$.annotations[id={ids[int(m.group(1))]}]{m.group(2)}" if m else path


def write_wholebody(dataset: Dataset, path: str | Path) -> None:
    """Write a Dataset in the coco_wholebody layout as COCO-WholeBody JSON."""
    Path(path).write_bytes(dataset_to_wholebody(dataset))


def dataset_to_wholebody(dataset: Dataset) -> bytes:
    """COCO-WholeBody JSON bytes for a Dataset in the coco_wholebody layout (inverse of the reader).

    The body keypoints go to `keypoints` (and `num_keypoints` counts them), the rest to the part fields.
    """
    inst = dataset.instances
    if inst.k != K:
        raise KpmergeError(f"COCO-WholeBody holds {K} keypoints per person, got {inst.k}")
    n = len(inst)
    cache: dict[str, bytes] = {}
    parts: list[list[bytes]] = []
    start = BODY
    for name, k in PARTS:
        rows = number_rows(inst.keypoints[:, start : start + k].reshape(n, 3 * k))
        parts.append([key_bytes(name, cache) + b"[" + r + b"]" for r in rows])
        start += k
    extra = [
        b",".join(([bytes(inst.extra[j])] if inst.extra[j] else []) + [p[j] for p in parts]) for j in range(n)
    ]
    body = replace(inst.with_keypoints(inst.keypoints[:, :BODY]), extra=extra)
    coco = builtin_layout("coco")
    skeleton = [[a + 1, b + 1] for a, b in coco.skeleton_ids]
    return dataset_to_coco(replace(dataset, instances=body), list(coco.keypoints), skeleton)
