"""COCO keypoint JSON (and COCO-style files of other datasets): read and write."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from itertools import repeat
from operator import attrgetter, is_, itemgetter, methodcaller
from pathlib import Path
from typing import Annotated, Any

import msgspec
import numpy as np
import orjson

from ..errors import KpmergeError
from ..instances import Dataset, Images, Instances, Problem
from ..jsonio import (
    NULL,
    Chunks,
    Raw,
    compact,
    decode,
    decode_column,
    float_rows,
    has_layout_space,
    json_values,
    members_all,
    no_gc,
    number_list,
    number_rows,
    read_bytes,
)
from ..jsonscan import check_unique_keys

Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""An integer that fits the 64-bit integers numpy and orjson take (ids, flags and counts)."""

MISSING = "expected a value, got none (missing)"

IMAGE_FIELDS = frozenset({"id", "file_name", "width", "height"})
ANNOTATION_FIELDS = frozenset(
    {"id", "image_id", "category_id", "keypoints", "num_keypoints", "bbox", "area", "iscrowd"}
)


class _CocoFile(msgspec.Struct):
    images: list[dict[str, Raw]]
    annotations: list[dict[str, Raw]]
    categories: list[dict[str, Any]] = []


_ABSENT = msgspec.Raw(b"null")


class _Annotation(msgspec.Struct, forbid_unknown_fields=True):
    """An annotation of the usual shape, decoded in one pass (anything else takes the checked path)."""

    id: Int64 | str
    image_id: Int64 | str
    keypoints: Raw
    bbox: Raw
    category_id: int | str | None = None
    num_keypoints: Int64 | None = None
    area: float | None = None
    iscrowd: Int64 | bool | None = None
    source: Raw = _ABSENT
    source_id: Raw = _ABSENT
    segmentation: Raw = _ABSENT


# Pass-through members the fast path knows, in the order it writes them back (kpmerge's own outputs
# carry source and source_id before segmentation).
_FAST_EXTRA = (("source", b'"source":'), ("source_id", b'"source_id":'), ("segmentation", b'"segmentation":'))


class _CocoFast(msgspec.Struct):
    images: list[dict[str, Raw]]
    annotations: list[_Annotation]
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
    if not strict:
        try:  # a file that breaks no rule reads as fast as in strict mode
            return coco_to_dataset(data, file)
        except KpmergeError:
            pass  # read it again, recording what is wrong instead of stopping at it
    spaced = has_layout_space(data)
    if not strict:
        problems: list[Problem] = []
        with no_gc():
            doc = decode(data, _CocoFile, file)
            _check_keys(data, doc.images, doc.annotations, file)
            cat_id, names = _keypoint_category(doc.categories, file)
            images = _images(doc.images, file, spaced, problems)
            category = (cat_id, doc.categories)
            ds = _annotations(doc.annotations, images, category, names, file, spaced, problems)
        return replace(ds, problems=tuple(problems))
    with no_gc():
        try:
            fast = msgspec.json.decode(data, type=_CocoFast)
        except msgspec.DecodeError:
            fast = None  # the checked path below finds and reports the problem
        if fast is not None:
            _check_keys(data, fast.images, fast.annotations, file)
            cat_id, names = _keypoint_category(fast.categories, file)
            images = _images(fast.images, file, spaced)
            category = (cat_id, fast.categories)
            dataset = _annotations_fast(fast.annotations, images, category, names, file, spaced)
            if dataset is not None:
                return dataset
            del fast
        doc = decode(data, _CocoFile, file)
        _check_keys(data, doc.images, doc.annotations, file)
        cat_id, names = _keypoint_category(doc.categories, file)
        images = _images(doc.images, file, spaced)
        return _annotations(doc.annotations, images, (cat_id, doc.categories), names, file, spaced)


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
        raise KpmergeError(MISSING, file, f"$.categories[{i}].id")
    if isinstance(cat["id"], bool) or not isinstance(cat["id"], int | str):
        got = type(cat["id"]).__name__
        raise KpmergeError(f"expected an integer or a string, got {got}", file, f"$.categories[{i}].id")
    names = cat["keypoints"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise KpmergeError("expected a list of keypoint names", file, f"$.categories[{i}].keypoints")
    return cat["id"], (tuple(names) if names else None)


def _check_keys(data: bytes, images: list[Any], annotations: list[Any], file: Any) -> None:
    """KpmergeError for a key given twice in the top-level object (the decoder kept only the last)."""

    def ends(records: list[Any]) -> list[Raw]:  # raw members of the first and the last record
        if not records:
            return []
        ends = (records[0], records[-1])
        return [v for r in ends for v in (r.values() if isinstance(r, dict) else (r.keypoints, r.bbox))]

    check_unique_keys(data, [ends(images), ends(annotations)], file)


def _other_categories(
    cats: list[Any], category: tuple[Any, list[dict[str, Any]]], file: Any, records: list[Any] | None = None
) -> tuple[list[int], dict[str, int], Problem | None]:
    """The annotations to keep (of the keypoint category, or without one), the counts of those left out,
    and, when `records` are given (lenient reading), the problem of category ids that name no category.

    Raises:
        KpmergeError: for a category_id that names no category (without `records`).
    """
    cat_id, categories = category
    keep = [i for i, c in enumerate(cats) if c == cat_id or c is None]
    if len(keep) == len(cats):
        return keep, {}, None
    known = {c.get("id") for c in categories if isinstance(c, dict) and isinstance(c.get("id"), int | str)}
    unknown = [i for i, c in enumerate(cats) if c is not None and c != cat_id and c not in known]
    skipped = {"other_category": len(cats) - len(keep) - len(unknown)}
    if not unknown:
        return keep, skipped, None
    if records is None:
        i = unknown[0]
        message = f"expected the id of a category in categories, got {cats[i]!r}"
        raise KpmergeError(message, file, f"$.annotations[{i}].category_id")
    skipped = {"unknown_category": len(unknown), **({} if not skipped["other_category"] else skipped)}
    examples = tuple(msgspec.json.decode(records[i].get("id", NULL)) for i in unknown[:5])
    message = "annotations whose category_id names no category"
    return keep, skipped, Problem("unknown_category", "error", len(unknown), examples, message)


_IMAGE_REQUIRED = frozenset({"id", "file_name"})


def _get(key: str) -> Callable[[dict[str, Raw]], Raw]:
    """`record.get(key, null)` as one C call per record."""
    return methodcaller("get", key, NULL)


def _images(
    records: list[dict[str, Raw]], file: Any, spaced: bool = True, problems: list[Problem] | None = None
) -> Images:
    if not all(rec.keys() >= _IMAGE_REQUIRED for rec in records):
        for i, rec in enumerate(records):
            for key in ("id", "file_name"):
                if key not in rec:
                    raise KpmergeError(MISSING, file, f"$.images[{i}].{key}")
    ids = decode_column(list(map(itemgetter("id"), records)), Int64 | str, file, "images", "id")
    names = decode_column(list(map(itemgetter("file_name"), records)), str, file, "images", "file_name")
    size = float | None
    widths = decode_column(list(map(_get("width"), records)), size, file, "images", "width")
    heights = decode_column(list(map(_get("height"), records)), size, file, "images", "height")
    for key, values in (("width", widths), ("height", heights)):
        _check_range(np.array(values, dtype=np.float64), 0, False, file, "images", key, range(len(records)))
    _check_unique(ids, file, "images", range(len(ids)), problems)
    cache: dict[str, bytes] = {}
    extra = members_all(records, IMAGE_FIELDS, cache, spaced)
    return Images(
        ids=ids,
        file_names=names,
        widths=np.array(widths, dtype=np.float64),
        heights=np.array(heights, dtype=np.float64),
        extra=extra,
    )


def _annotations(
    records: list[dict[str, Raw]],
    images: Images,
    category: tuple[Any, list[dict[str, Any]]],
    names: tuple[str, ...] | None,
    file: Any,
    spaced: bool = True,
    problems: list[Problem] | None = None,
) -> Dataset:
    """The checked path: every field decoded and checked column by column (with `problems`: leniently)."""
    cats = decode_column(
        [r.get("category_id", NULL) for r in records], int | str | None, file, "annotations", "category_id"
    )
    keep, skipped, unknown = _other_categories(cats, category, file, None if problems is None else records)
    if unknown is not None and problems is not None:
        problems.append(unknown)
    anns = [records[i] for i in keep] if skipped else records
    where = keep if skipped else range(len(records))
    for j, rec in enumerate(anns):
        for key in ("id", "image_id", "keypoints", "bbox"):
            if key not in rec:
                raise KpmergeError(MISSING, file, f"$.annotations[{where[j]}].{key}")
    try:
        ids = decode_column([r["id"] for r in anns], Int64 | str, file, "annotations", "id")
        image_ids = decode_column([r["image_id"] for r in anns], Int64 | str, file, "annotations", "image_id")
        # Fast path: every row parsed in one bulk step; anything irregular takes the checked path below.
        kp_raws = [r["keypoints"] for r in anns]
        k_fast = len(names) if names else _row_length(kp_raws) // 3
        kp_fast = float_rows(kp_raws, 3 * k_fast) if k_fast and problems is None else None
        del kp_raws
        kps = (
            decode_column([r["keypoints"] for r in anns], list[float], file, "annotations", "keypoints")
            if kp_fast is None
            else []
        )
        box_fast = float_rows([r["bbox"] for r in anns], 4)
        boxes = (
            decode_column([r["bbox"] for r in anns], list[float], file, "annotations", "bbox")
            if box_fast is None
            else []
        )
        areas = decode_column([r.get("area", NULL) for r in anns], float | None, file, "annotations", "area")
        crowd = decode_column(
            [r.get("iscrowd", NULL) for r in anns], Int64 | bool | None, file, "annotations", "iscrowd"
        )
        nkp = decode_column(
            [r.get("num_keypoints", NULL) for r in anns], Int64 | None, file, "annotations", "num_keypoints"
        )
    except KpmergeError as err:
        raise _reindex(err, where) from None
    areas_arr = np.array(areas, dtype=np.float64)
    flags = _check_scalars(areas_arr, crowd, file, where)
    if kp_fast is None:
        k = len(names) if names else (len(kps[0]) // 3 if kps else 0)
        keypoints = _keypoint_array(kps, k, file, where, problems, ids)
    else:
        keypoints = _check_keypoints(kp_fast.reshape(len(anns), k_fast, 3), file, where)
    if box_fast is None:
        box = _box_array(boxes, file, where, problems, ids)
    else:
        box = _check_boxes(box_fast, file, where, problems, ids)
    extra = members_all(anns, ANNOTATION_FIELDS, {}, spaced)
    columns = (keypoints, box, areas_arr, flags, ids, image_ids, nkp, extra)
    return _dataset(images, names, skipped, columns, file, where, problems)


def _dataset(
    images: Images,
    names: tuple[str, ...] | None,
    skipped: dict[str, int],
    columns: tuple[Any, ...],
    file: Any,
    where: Any,
    problems: list[Problem] | None = None,
) -> Dataset:
    """The Dataset of checked annotation columns, once their ids and image ids are checked too.

    `columns` are keypoints, boxes, areas, iscrowd, ids, image ids, num_keypoints (None where absent)
    and extra members.
    """
    keypoints, box, areas, flags, ids, image_ids, nkp, extra = columns
    index = _image_index(image_ids, images, file, where, problems)
    _check_unique(ids, file, "annotations", where, problems)
    if problems is not None and (index < 0).any():
        problems.append(
            _problem("missing_image", index < 0, ids, "annotations whose image_id is not in images")
        )
    instances = Instances(
        keypoints=keypoints,
        boxes=box,
        areas=areas,
        iscrowd=flags,
        image_index=index,
        ids=ids,
        num_keypoints=np.array([-1 if n is None else n for n in nkp] if None in nkp else nkp, dtype=np.int64),
        extra=extra,
    )
    return Dataset(images=images, instances=instances, keypoint_names=names, format="coco", skipped=skipped)


def _annotations_fast(
    records: list[_Annotation],
    images: Images,
    category: tuple[Any, list[dict[str, Any]]],
    names: tuple[str, ...] | None,
    file: Any,
    spaced: bool,
) -> Dataset | None:
    """`_annotations` for typed records; None when a row needs the checked path's error report."""
    cats = list(map(attrgetter("category_id"), records))
    keep: list[int] | range = range(len(records))
    skipped: dict[str, int] = {}
    if cats.count(category[0]) != len(cats):
        keep, skipped, _ = _other_categories(cats, category, file)
    anns = [records[i] for i in keep] if skipped else records
    where = keep if skipped else range(len(records))

    def column(name: str) -> list[Any]:
        return list(map(attrgetter(name), anns))

    kp_raws = column("keypoints")
    k = len(names) if names else _row_length(kp_raws) // 3
    kp = float_rows(kp_raws, 3 * k) if k else None
    del kp_raws
    box = float_rows(column("bbox"), 4)
    if kp is None or box is None:
        return None
    keypoints = _check_keypoints(kp.reshape(len(anns), k, 3), file, where)
    box = _check_boxes(box, file, where)
    areas = np.array(column("area"), dtype=np.float64)
    flags = _check_scalars(areas, column("iscrowd"), file, where)
    extra: list[bytes] | None = None
    for name, key in _FAST_EXTRA:
        values = column(name)
        absent = list(map(is_, values, repeat(_ABSENT)))
        if all(absent):
            continue
        if spaced:
            values = [v if a else compact(v) for v, a in zip(values, absent, strict=True)]
        if extra is not None:  # after other members (one pass: values such as polygons are large)
            pairs = zip(extra, values, absent, strict=True)
            extra = [e if a else (e + b"," if e else b"") + key + v for e, v, a in pairs]
        elif any(absent):
            extra = [b"" if a else key + v for v, a in zip(values, absent, strict=True)]
        else:
            extra = list(map(key.__add__, values))
    columns = (keypoints, box, areas, flags, column("id"), column("image_id"), column("num_keypoints"))
    columns += (extra if extra is not None else [b""] * len(anns),)
    return _dataset(images, names, skipped, columns, file, where)


def _reindex(err: KpmergeError, where: Any) -> KpmergeError:
    """Map a position among kept annotations back to its position in the file."""
    path = err.json_path or ""
    prefix = "$.annotations["
    if isinstance(where, range) or not path.startswith(prefix):
        return err
    j, rest = path[len(prefix) :].split("]", 1)
    return KpmergeError(err.message, err.file, f"{prefix}{where[int(j)]}]{rest}")


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


def _check_scalars(areas: np.ndarray, crowd: list[Any], file: Any, where: Any) -> np.ndarray:
    """Check areas (>= 0) and iscrowd (0 or 1); returns iscrowd as int64 with 0 where absent."""
    _check_range(areas, 0, True, file, "annotations", "area", where)
    values = [int(c or 0) for c in crowd] if None in crowd else crowd
    flags = np.array(values, dtype=np.int64).reshape(len(crowd))
    bad = (flags != 0) & (flags != 1)
    if bad.any():
        j = int(np.argmax(bad))
        raise KpmergeError(f"expected 0 or 1, got {flags[j]}", file, f"$.annotations[{where[j]}].iscrowd")
    return flags


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
    return _check_keypoints(arr, file, where, problems, ids)


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


def _row_length(raws: list[Raw]) -> int:
    """How many values the first JSON list holds (0 when there is none or it is not a list)."""
    if not raws:
        return 0
    try:
        first = msgspec.json.decode(raws[0])
    except msgspec.DecodeError:
        return 0
    return len(first) if isinstance(first, list) else 0


def _check_finite(values: np.ndarray, file: Any, where: Any, name: str) -> None:
    """Raise for the first value of (N, M) `values` that is not a finite number."""
    bad = ~np.isfinite(values)
    if bad.any():
        j, c = (int(x) for x in np.argwhere(bad)[0])
        raise KpmergeError(
            f"expected a finite number, got {values[j, c]}", file, f"$.annotations[{where[j]}].{name}[{c}]"
        )


def _check_keypoints(
    arr: np.ndarray,
    file: Any,
    where: Any,
    problems: list[Problem] | None = None,
    ids: list[Any] | None = None,
) -> np.ndarray:
    _check_finite(arr.reshape(len(arr), 3 * arr.shape[1]), file, where, "keypoints")
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
    return _check_boxes(arr, file, where, problems, ids)


def _check_boxes(
    arr: np.ndarray,
    file: Any,
    where: Any,
    problems: list[Problem] | None = None,
    ids: list[Any] | None = None,
) -> np.ndarray:
    _check_finite(arr, file, where, "bbox")
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
    row = {v: i for i, v in enumerate(images.ids.tolist())}
    rows = list(map(row.get, image_ids))
    if None in rows and problems is not None:
        rows = [-1 if r is None else r for r in rows]
    elif None in rows:
        j = rows.index(None)
        raise KpmergeError(
            f"expected the id of an image in images, got {image_ids[j]!r}",
            file,
            f"$.annotations[{where[j]}].image_id",
        )
    return np.array(rows, dtype=np.int64).reshape(len(rows))


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
    return b"".join(dataset_to_coco_chunks(dataset, names, skeleton, info, image_ids, annotation_ids))


CHUNK_RECORDS = 2048
"""Records per chunk of `dataset_to_coco_chunks` (a few MB: small enough to reuse the same memory)."""


def dataset_to_coco_chunks(
    dataset: Dataset,
    names: list[str],
    skeleton: list[list[int]],
    info: dict[str, Any] | None = None,
    image_ids: list[Any] | None = None,
    annotation_ids: list[Any] | None = None,
    progress: Callable[[int], None] | None = None,
    image_tags: SourceTags | None = None,
    annotation_tags: SourceTags | None = None,
) -> Chunks:
    """`dataset_to_coco`'s bytes as consecutive chunks, to write without holding the whole file.

    Args:
        progress: Called with the number of records (images, then annotations) each chunk holds.
        image_tags: `source` and `source_id` to write first among each image's extra members.
        annotation_tags: The same for each annotation.
    """
    images, inst = dataset.images, dataset.instances
    img_ids = np.asarray(image_ids, dtype=object) if image_ids is not None else images.ids
    ann_ids = np.asarray(annotation_ids, dtype=object) if annotation_ids is not None else inst.ids
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
    head += b'"images":['

    def image_chunk(lo: int, hi: int) -> bytes:
        ids = json_values(img_ids[lo:hi])
        return (b",\n" if lo else b"") + b"".join(_image_pieces(images, ids, lo, hi, image_tags))

    def annotation_chunk(lo: int, hi: int) -> bytes:
        ids, of_image = json_values(ann_ids[lo:hi]), json_values(img_ids[inst.image_index[lo:hi]])
        pieces = _annotation_pieces(inst, ids, of_image, lo, hi, annotation_tags)
        return (b",\n" if lo else b"") + b"".join(pieces)

    pieces: list[tuple[int, Callable[[], bytes]]] = [(0, lambda: head)]
    for lo in range(0, len(images), CHUNK_RECORDS):
        hi = min(lo + CHUNK_RECORDS, len(images))
        pieces.append((hi - lo, partial(image_chunk, lo, hi)))
    pieces.append((0, lambda: b'],\n"annotations":['))
    for lo in range(0, len(inst), CHUNK_RECORDS):
        hi = min(lo + CHUNK_RECORDS, len(inst))
        pieces.append((hi - lo, partial(annotation_chunk, lo, hi)))
    pieces.append((0, lambda: b'],\n"categories":[' + orjson.dumps(category) + b"]}\n"))
    return Chunks(pieces, progress)


def _interleave(columns: list[list[bytes] | bytes], n: int) -> list[bytes]:
    """Pieces of n records, record by record: each column is a constant or one value per record.

    The last column closes a record; records are separated by `,\\n`.
    """
    width = len(columns)
    out: list[bytes] = [b""] * (n * width)
    for c, col in enumerate(columns):
        out[c::width] = [col] * n if isinstance(col, bytes) else col
    if n:
        out[width - 1 :: width] = [columns[-1] + b",\n"] * n  # type: ignore[operator]
        out[-1] = columns[-1]  # type: ignore[assignment]
    return out


def _optional(key: bytes, values: np.ndarray) -> tuple[list[bytes] | bytes, list[bytes] | bytes]:
    """Key and value columns for a number member left out where the value is NaN (missing)."""
    missing = np.isnan(values)
    if not missing.any():
        return key, number_list(values)
    if missing.all():
        return b"", b""
    texts = number_list(values)
    return [b"" if m else key for m in missing.tolist()], [b"" if v == b"null" else v for v in texts]


@dataclass(frozen=True, eq=False)
class SourceTags:
    """The `source` and `source_id` members a merged output writes first among a record's extra members.

    Attributes:
        names: The source names.
        index: (n,) each record's source, as a position in `names`.
        ids: (n,) each record's id in its source.
    """

    names: Sequence[str]
    index: np.ndarray
    ids: np.ndarray

    def columns(self, lo: int, hi: int) -> list[list[bytes] | bytes]:
        """Columns for `_interleave` of records lo..hi: `"source":<name>,"source_id":<id>`."""
        names = [b'"source":' + orjson.dumps(name) + b',"source_id":' for name in self.names]
        index = self.index[lo:hi]
        if len(index) and (index == index[0]).all():  # merged sources are contiguous: one per chunk
            return [names[int(index[0])], json_values(self.ids[lo:hi])]
        return [[names[i] for i in index.tolist()], json_values(self.ids[lo:hi])]


def _extra_columns(extra: Any, tags: SourceTags | None, lo: int, hi: int) -> list[list[bytes] | bytes]:
    """Columns of the extra members of records lo..hi (after `tags`, if given), led by a comma."""
    values = extra[lo:hi].tolist()
    lead: list[list[bytes] | bytes] = [b",", *tags.columns(lo, hi)] if tags is not None else []
    if all(values):
        return [*lead, b",", values]
    if tags is None:
        return [[b"," if v else b"" for v in values], values]
    return [*lead, [b"," if v else b"" for v in values], values]


def _image_pieces(
    images: Images, ids: list[bytes], lo: int, hi: int, tags: SourceTags | None = None
) -> list[bytes]:
    k_w, v_w = _optional(b',"width":', images.widths[lo:hi])
    k_h, v_h = _optional(b',"height":', images.heights[lo:hi])
    columns = [b'{"id":', ids, b',"file_name":', json_values(images.file_names[lo:hi])]
    columns += [k_w, v_w, k_h, v_h, *_extra_columns(images.extra, tags, lo, hi), b"}"]
    return _interleave(columns, hi - lo)


def _annotation_pieces(
    inst: Instances,
    ids: list[bytes],
    of_image: list[bytes],
    lo: int,
    hi: int,
    tags: SourceTags | None = None,
) -> list[bytes]:
    n = hi - lo
    kp = inst.keypoints[lo:hi]
    k_area, v_area = _optional(b',"area":', inst.areas[lo:hi])
    labelled = np.count_nonzero(kp[:, :, 2] > 0, axis=1)
    columns = [b'{"id":', ids, b',"image_id":', of_image, b',"category_id":1,"keypoints":[']
    columns += [number_rows(kp.reshape(n, 3 * kp.shape[1])), b'],"num_keypoints":']
    columns += [json_values(labelled), b',"bbox":[', number_rows(inst.boxes[lo:hi]), b"]"]
    columns += [k_area, v_area, b',"iscrowd":', json_values(inst.iscrowd[lo:hi])]
    columns += [*_extra_columns(inst.extra, tags, lo, hi), b"}"]
    return _interleave(columns, n)
