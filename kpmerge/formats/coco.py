"""COCO keypoint JSON (and COCO-style files of other datasets): read and write."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import msgspec
import numpy as np

from ..errors import KpmergeError
from ..instances import Dataset, Images, Instances, Problem
from ..jsonio import (
    NULL,
    Raw,
    decode,
    decode_column,
    key_bytes,
    members,
    no_gc,
    number_list,
    number_rows,
    read_bytes,
)

Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""An integer that fits the 64-bit integers numpy and orjson take (ids, flags and counts)."""

IMAGE_FIELDS = frozenset({"id", "file_name", "width", "height"})
ANNOTATION_FIELDS = frozenset(
    {"id", "image_id", "category_id", "keypoints", "num_keypoints", "bbox", "area", "iscrowd"}
)


class _CocoFile(msgspec.Struct):
    images: list[dict[str, Raw]]
    annotations: list[dict[str, Raw]]
    categories: list[dict[str, Any]] = []


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
    """
    problems: list[Problem] | None = None if strict else []
    with no_gc():
        doc = decode(data, _CocoFile, file)
        cat_id, names = _keypoint_category(doc.categories, file)
        images = _images(doc.images, file)
        ds = _annotations(doc.annotations, images, cat_id, names, file, problems)
    return ds if problems is None else replace(ds, problems=tuple(problems))


def _keypoint_category(categories: list[dict[str, Any]], file: Any) -> tuple[Any, tuple[str, ...] | None]:
    with_kp = [(i, c) for i, c in enumerate(categories) if isinstance(c, dict) and "keypoints" in c]
    if not with_kp:
        raise KpmergeError(
            "expected a category with a `keypoints` list (the person category)", file, "$.categories"
        )
    if len(with_kp) > 1:
        people = [(i, c) for i, c in with_kp if c.get("name") == "person"]
        if len(people) != 1:
            raise KpmergeError(
                f"expected one keypoint category, found {len(with_kp)} and none or several named person",
                file,
                "$.categories",
            )
        with_kp = people
    i, cat = with_kp[0]
    if "id" not in cat:
        raise KpmergeError("expected a value, got none (missing)", file, f"$.categories[{i}].id")
    if isinstance(cat["id"], bool) or not isinstance(cat["id"], int | str):
        got = type(cat["id"]).__name__
        raise KpmergeError(f"expected an integer or a string, got {got}", file, f"$.categories[{i}].id")
    names = cat["keypoints"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise KpmergeError("expected a list of keypoint names", file, f"$.categories[{i}].keypoints")
    return cat["id"], (tuple(names) if names else None)


def _images(records: list[dict[str, Raw]], file: Any) -> Images:
    for i, rec in enumerate(records):
        for key in ("id", "file_name"):
            if key not in rec:
                raise KpmergeError("expected a value, got none (missing)", file, f"$.images[{i}].{key}")
    ids = decode_column([r["id"] for r in records], Int64 | str, file, "images", "id")
    names = decode_column([r["file_name"] for r in records], str, file, "images", "file_name")
    size = float | None
    widths = decode_column([r.get("width", NULL) for r in records], size, file, "images", "width")
    heights = decode_column([r.get("height", NULL) for r in records], size, file, "images", "height")
    for key, values in (("width", widths), ("height", heights)):
        _check_range(np.array(values, dtype=np.float64), 0, False, file, "images", key, range(len(records)))
    cache: dict[str, bytes] = {}
    extra = [members(r, IMAGE_FIELDS, cache) for r in records]
    return Images(
        ids=ids,
        file_names=names,
        widths=np.array(widths, dtype=np.float64),
        heights=np.array(heights, dtype=np.float64),
        extra=extra,
    )


def _check_range(
    values: np.ndarray, low: float, inclusive: bool, file: Any, container: str, name: str, where: Any
) -> None:
    """Raise for the first value below `low` (or equal, unless `inclusive`); NaN (missing) passes."""
    bad = values < low if inclusive else values <= low
    if bad.any():
        j = int(np.argmax(bad))
        op = ">=" if inclusive else ">"
        raise KpmergeError(
            f"expected a number {op} {low:g}, got {values[j]:g}", file, f"$.{container}[{where[j]}].{name}"
        )


def _annotations(
    records: list[dict[str, Raw]],
    images: Images,
    cat_id: Any,
    names: tuple[str, ...] | None,
    file: Any,
    problems: list[Problem] | None = None,
) -> Dataset:
    cats = decode_column(
        [r.get("category_id", NULL) for r in records], int | str | None, file, "annotations", "category_id"
    )
    keep = [i for i, c in enumerate(cats) if c == cat_id or c is None]
    skipped = {"other_category": len(records) - len(keep)} if len(keep) != len(records) else {}
    anns = [records[i] for i in keep] if skipped else records
    where = keep if skipped else range(len(records))
    for j, rec in enumerate(anns):
        for key in ("id", "image_id", "keypoints", "bbox"):
            if key not in rec:
                raise KpmergeError(
                    "expected a value, got none (missing)", file, f"$.annotations[{where[j]}].{key}"
                )
    try:
        ids = decode_column([r["id"] for r in anns], Int64 | str, file, "annotations", "id")
        image_ids = decode_column([r["image_id"] for r in anns], Int64 | str, file, "annotations", "image_id")
        kps = decode_column([r["keypoints"] for r in anns], list[float], file, "annotations", "keypoints")
        boxes = decode_column([r["bbox"] for r in anns], list[float], file, "annotations", "bbox")
        areas = decode_column([r.get("area", NULL) for r in anns], float | None, file, "annotations", "area")
        crowd = decode_column(
            [r.get("iscrowd", NULL) for r in anns], Int64 | bool | None, file, "annotations", "iscrowd"
        )
        nkp = decode_column(
            [r.get("num_keypoints", NULL) for r in anns], Int64 | None, file, "annotations", "num_keypoints"
        )
    except KpmergeError as err:
        raise _reindex(err, where) from None
    _check_range(np.array(areas, dtype=np.float64), 0, True, file, "annotations", "area", where)
    flags = np.array([int(c or 0) for c in crowd], dtype=np.int64)
    if ((flags != 0) & (flags != 1)).any():
        j = int(np.argmax((flags != 0) & (flags != 1)))
        raise KpmergeError(f"expected 0 or 1, got {flags[j]}", file, f"$.annotations[{where[j]}].iscrowd")
    k = len(names) if names else (len(kps[0]) // 3 if kps else 0)
    keypoints = _keypoint_array(kps, k, file, where, problems, ids)
    box = _box_array(boxes, file, where, problems, ids)
    index = _image_index(image_ids, images, file, where, problems)
    _check_unique(ids, file, "annotations", where, problems)
    if problems is not None and (index < 0).any():
        problems.append(
            _problem("missing_image", index < 0, ids, "annotations whose image_id is not in images")
        )
    cache: dict[str, bytes] = {}
    extra = [members(r, ANNOTATION_FIELDS, cache) for r in anns]
    instances = Instances(
        keypoints=keypoints,
        boxes=box,
        areas=np.array(areas, dtype=np.float64),
        iscrowd=flags,
        image_index=index,
        ids=ids,
        num_keypoints=np.array([-1 if n is None else n for n in nkp], dtype=np.int64),
        extra=extra,
    )
    return Dataset(images=images, instances=instances, keypoint_names=names, format="coco", skipped=skipped)


def _reindex(err: KpmergeError, where: Any) -> KpmergeError:
    """Map a position among kept annotations back to its position in the file."""
    path = err.json_path or ""
    prefix = "$.annotations["
    if isinstance(where, range) or not path.startswith(prefix):
        return err
    j, rest = path[len(prefix) :].split("]", 1)
    return KpmergeError(err.message, err.file, f"{prefix}{where[int(j)]}]{rest}")


def _problem(kind: str, mask: np.ndarray, ids: list[Any], message: str, severity: str = "error") -> Problem:
    """A Problem for the records where `mask` is true: count and first few ids."""
    rows = np.flatnonzero(mask)[:5].tolist()
    return Problem(kind, severity, int(np.count_nonzero(mask)), tuple(ids[j] for j in rows), message)


def _keypoint_array(
    kps: list[list[float]],
    k: int,
    file: Any,
    where: Any,
    problems: list[Problem] | None = None,
    ids: list[Any] | None = None,
) -> np.ndarray:
    n = len(kps)
    if k == 0 and n:
        raise KpmergeError(
            "expected keypoints, got an empty list", file, f"$.annotations[{where[0]}].keypoints"
        )
    try:
        arr = np.array(kps, dtype=np.float64).reshape(n, k, 3)
    except ValueError:
        if problems is None or ids is None:
            for j, row in enumerate(kps):
                if len(row) != 3 * k:
                    raise KpmergeError(
                        f"expected {3 * k} numbers ({k} keypoints x 3), got {len(row)}",
                        file,
                        f"$.annotations[{where[j]}].keypoints",
                    ) from None
            raise
        arr = _lenient_keypoints(kps, k, problems, ids)
    bad = ~np.isfinite(arr)
    if bad.any():
        j, kk, c = (int(x) for x in np.argwhere(bad)[0])
        raise KpmergeError(
            f"expected a finite number, got {arr[j, kk, c]}",
            file,
            f"$.annotations[{where[j]}].keypoints[{3 * kk + c}]",
        )
    vis = arr[:, :, 2]
    bad_v = (vis != 0) & (vis != 1) & (vis != 2)
    if bad_v.any() and problems is not None and ids is not None:
        problems.append(
            _problem("bad_visibility", bad_v.any(axis=1), ids, "visibility values other than 0, 1, 2")
        )
    elif bad_v.any():
        j, kk = (int(x) for x in np.argwhere(bad_v)[0])
        raise KpmergeError(
            f"expected visibility 0, 1 or 2, got {vis[j, kk]:g}",
            file,
            f"$.annotations[{where[j]}].keypoints[{3 * kk + 2}]",
        )
    return arr


def _lenient_keypoints(kps: list[list[float]], k: int, problems: list[Problem], ids: list[Any]) -> np.ndarray:
    """K from the rows when they all agree (else rows of another length become unlabelled), as a problem."""
    lengths = np.array([len(r) for r in kps])
    n = len(kps)
    if (lengths == lengths[0]).all() and lengths[0] % 3 == 0 and lengths[0]:
        k = int(lengths[0]) // 3
        bad = np.ones(n, dtype=bool)
        message = f"annotations have {k} keypoints, the category names a different number"
        arr = np.array(kps, dtype=np.float64).reshape(n, k, 3)
    else:
        bad = lengths != 3 * k
        arr = np.zeros((n, k, 3))
        good = np.flatnonzero(~bad)
        arr[good] = np.array([kps[j] for j in good], dtype=np.float64).reshape(len(good), k, 3)
        message = f"annotations without {3 * k} keypoint numbers ({k} keypoints x 3); read as unlabelled"
    problems.append(_problem("k_mismatch", bad, ids, message))
    return arr


def _box_array(
    boxes: list[list[float]],
    file: Any,
    where: Any,
    problems: list[Problem] | None = None,
    ids: list[Any] | None = None,
) -> np.ndarray:
    for j, b in enumerate(boxes):
        if len(b) != 4:
            raise KpmergeError(
                f"expected 4 numbers [x, y, w, h], got {len(b)}", file, f"$.annotations[{where[j]}].bbox"
            )
    arr = np.array(boxes, dtype=np.float64).reshape(len(boxes), 4)
    bad = ~np.isfinite(arr)
    if bad.any():
        j, c = (int(x) for x in np.argwhere(bad)[0])
        raise KpmergeError(
            f"expected a finite number, got {arr[j, c]}", file, f"$.annotations[{where[j]}].bbox[{c}]"
        )
    neg = (arr[:, 2] < 0) | (arr[:, 3] < 0)
    if neg.any() and problems is not None and ids is not None:
        problems.append(_problem("negative_box", neg, ids, "boxes with a negative width or height"))
    elif neg.any():
        j = int(np.argmax(neg))
        raise KpmergeError(
            f"expected a box with width and height >= 0, got {arr[j, 2]:g} x {arr[j, 3]:g}",
            file,
            f"$.annotations[{where[j]}].bbox",
        )
    return arr


def _check_unique(
    ids: list[Any], file: Any, container: str, where: Any, problems: list[Problem] | None = None
) -> None:
    if len(set(ids)) == len(ids):
        return
    if problems is not None:
        counts = Counter(ids)
        dupes = tuple(v for v, c in counts.items() if c > 1)[:5]
        kind = "duplicate_image_id" if container == "images" else "duplicate_annotation_id"
        problems.append(
            Problem(kind, "error", len(ids) - len(counts), dupes, f"{container} whose id appeared before")
        )
        return
    seen: dict[Any, int] = {}
    for j, v in enumerate(ids):
        if v in seen:
            raise KpmergeError(
                f"expected unique ids, got {v!r} again (also at {container}[{where[seen[v]]}])",
                file,
                f"$.{container}[{where[j]}].id",
            )
        seen[v] = j


def _image_index(
    image_ids: list[Any], images: Images, file: Any, where: Any, problems: list[Problem] | None = None
) -> np.ndarray:
    """Row of each annotation's image; with `problems` (lenient), -1 for a missing image."""
    ids = list(images.ids)
    _check_unique(ids, file, "images", range(len(ids)), problems)
    row = {v: i for i, v in enumerate(ids)}
    out = np.empty(len(image_ids), dtype=np.int64)
    for j, v in enumerate(image_ids):
        r = row.get(v)
        if r is None and problems is not None:
            r = -1
        elif r is None:
            raise KpmergeError(
                f"expected the id of an image in images, got {v!r}",
                file,
                f"$.annotations[{where[j]}].image_id",
            )
        out[j] = r
    return out


def write_coco(dataset: Dataset, path: str | Path, names: list[str], skeleton: list[list[int]]) -> None:
    """Write a Dataset as COCO keypoint JSON (ids as they are in the Dataset)."""
    Path(path).write_bytes(dataset_to_coco(dataset, names, skeleton))


def dataset_to_coco(
    dataset: Dataset,
    names: list[str],
    skeleton: list[list[int]],
    info: dict[str, Any] | None = None,
    image_ids: list[Any] | None = None,
    annotation_ids: list[Any] | None = None,
) -> bytes:
    """COCO keypoint JSON bytes for a Dataset.

    Args:
        dataset: Images and instances to write.
        names: The person category's keypoint names.
        skeleton: Links as 1-based index pairs (COCO's convention).
        info: An optional `info` object.
        image_ids: Ids to write for the images (default: their own ids).
        annotation_ids: Ids to write for the annotations (default: their own ids).
    """
    import orjson

    images, inst = dataset.images, dataset.instances
    img_ids = [orjson.dumps(v) for v in (image_ids if image_ids is not None else images.ids)]
    ann_ids = [orjson.dumps(v) for v in (annotation_ids if annotation_ids is not None else inst.ids)]
    cache: dict[str, bytes] = {}
    k_id, k_file, k_w, k_h = (key_bytes(x, cache) for x in ("id", "file_name", "width", "height"))
    widths, heights = number_list(images.widths), number_list(images.heights)
    out_images = []
    for i in range(len(images)):
        parts = [k_id + img_ids[i], k_file + orjson.dumps(images.file_names[i])]
        if widths[i] != b"null":
            parts.append(k_w + widths[i])
        if heights[i] != b"null":
            parts.append(k_h + heights[i])
        if images.extra[i]:
            parts.append(images.extra[i])
        out_images.append(b"{" + b",".join(parts) + b"}")
    n = len(inst)
    kp = number_rows(inst.keypoints.reshape(n, inst.k * 3))
    boxes = number_rows(inst.boxes)
    areas = number_list(inst.areas)
    labelled = inst.labelled_counts().tolist()
    crowd = inst.iscrowd.tolist()
    img_of = inst.image_index.tolist()
    out_anns = []
    for j in range(n):
        parts = [
            b'"id":' + ann_ids[j],
            b'"image_id":' + img_ids[img_of[j]],
            b'"category_id":1',
            b'"keypoints":[' + kp[j] + b"]",
            b'"num_keypoints":%d' % labelled[j],
            b'"bbox":[' + boxes[j] + b"]",
        ]
        if areas[j] != b"null":
            parts.append(b'"area":' + areas[j])
        parts.append(b'"iscrowd":%d' % crowd[j])
        if inst.extra[j]:
            parts.append(inst.extra[j])
        out_anns.append(b"{" + b",".join(parts) + b"}")
    category = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": names,
        "skeleton": skeleton,
    }
    head = b"{"
    if info is not None:
        head += b'"info":' + orjson.dumps(info) + b","
    return (
        head
        + b'"images":['
        + b",\n".join(out_images)
        + b'],\n"annotations":['
        + b",\n".join(out_anns)
        + b'],\n"categories":['
        + orjson.dumps(category)
        + b"]}\n"
    )
