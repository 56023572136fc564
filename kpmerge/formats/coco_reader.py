"""Reading COCO-style keypoint JSON: the one read path of the COCO and COCO-WholeBody formats.

The document is decoded once. Annotations are typed rows (numbers decoded by msgspec, keypoints, boxes
and other members kept as raw JSON) whose members are those of the first annotation; a document whose
rows do not fit that shape is decoded as rows of raw members instead. Either way the columns go through
the same steps: keypoints and boxes parsed in bulk (`float_rows`), a column with irregular rows decoded
row by row to find and report them, every rule checked once and reported to a `Sink`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter, methodcaller
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from ..errors import KpmergeError
from ..instances import Dataset, Images, Instances
from ..jsonio import NULL, Raw, decode_column, float_rows
from ..jsonscan import check_unique_keys
from ..jsonwrite import has_layout_space, members_all, no_gc
from .checks import EXAMPLES, Sink, check_finite, check_range, check_unique, check_visibility
from .coco_rows import MISSING, Category, DictRows, Id, Int64, Rows, decode_document

IMAGE_FIELDS = frozenset({"id", "file_name", "width", "height"})
_IMAGE_REQUIRED = frozenset({"id", "file_name"})


@dataclass(frozen=True)
class CocoRecords:
    """A COCO-style file read: the Dataset and the raw values of the members the caller took.

    Attributes:
        dataset: Images and the person annotations (`format` is `coco`).
        taken: For each member asked for in `take`, its raw JSON per person annotation (None where absent).
    """

    dataset: Dataset
    taken: dict[str, list[Raw | None]]


def read_coco_records(
    data: bytes, file: str | Path | None = None, sink: Sink | None = None, take: Sequence[str] = ()
) -> CocoRecords:
    """Parse COCO-style keypoint JSON bytes in one pass; other members are kept as raw JSON.

    Args:
        data: The document's bytes.
        file: The file name, for messages.
        sink: Where rule violations go (default: raise at the first).
        take: Members to hand back raw in `CocoRecords.taken` instead of passing them through
            (e.g. COCO-WholeBody's part keypoints).

    Raises:
        KpmergeError: naming the file and the JSON path of the first problem (every problem, for a
            raising sink; those that leave nothing to read, for a recording one).
    """
    sink = sink if sink is not None else Sink(file)
    spaced = has_layout_space(data)
    with no_gc():
        image_records, categories, rows = decode_document(data, sink, spaced, take)
        _check_keys(data, image_records, rows, sink)
        cat_id, names = _keypoint_category(categories, sink)
        images = _images(image_records, sink, spaced)
        del image_records
        return _annotations(rows, images, (cat_id, categories), names, sink)


def _check_keys(data: bytes, images: list[dict[str, Raw]], rows: Rows, sink: Sink) -> None:
    """KpmergeError for a key given twice in the top-level object (the decoder kept only the last)."""
    image_ends = [v for r in (images[:1] + images[-1:]) for v in r.values()]
    row_ends = [v for i in sorted({0, rows.n - 1}) if rows.n for v in rows.raw_members(i)]
    check_unique_keys(data, [image_ends, row_ends], sink.file)


def _other_categories(
    cats: list[Id | None], category: tuple[Id, list[Category]], rows: Rows, sink: Sink
) -> tuple[list[int], dict[str, int]]:
    """The annotations to keep (of the keypoint category, or without one) and the counts of those left
    out; category ids that name no category are reported to the sink."""
    cat_id, categories = category
    keep = [i for i, c in enumerate(cats) if c == cat_id or c is None]
    if len(keep) == len(cats):
        return keep, {}
    known = {c.get("id") for c in categories if isinstance(c, dict) and isinstance(c.get("id"), int | str)}
    unknown = np.array([c is not None and c != cat_id and c not in known for c in cats], dtype=bool)
    other = len(cats) - len(keep) - int(np.count_nonzero(unknown))
    if not unknown.any():
        return keep, {"other_category": other}
    ids: list[Id | None] = [None] * len(cats)
    for i in np.flatnonzero(unknown)[:EXAMPLES].tolist():
        ids[i] = rows.id_at(i)
    sink.rule(
        "unknown_category",
        unknown,
        ids,
        "annotations whose category_id names no category",
        lambda i: (
            f"expected the id of a category in categories, got {cats[i]!r}",
            f"$.annotations[{i}].category_id",
        ),
    )
    return keep, {
        "unknown_category": int(np.count_nonzero(unknown)),
        **({"other_category": other} if other else {}),
    }


def _keypoint_category(categories: list[Category], sink: Sink) -> tuple[Id, tuple[str, ...] | None]:
    with_kp = [(i, c) for i, c in enumerate(categories) if isinstance(c, dict) and "keypoints" in c]
    if not with_kp:
        sink.fail("expected a category with a `keypoints` list (the person category)", "$.categories")
    if len(with_kp) > 1:
        people = [(i, c) for i, c in with_kp if c.get("name") == "person"]
        if len(people) != 1:
            sink.fail(
                f"expected one keypoint category, found {len(with_kp)} and none or several named person",
                "$.categories",
            )
        with_kp = people
    i, cat = with_kp[0]
    if "id" not in cat:
        sink.fail(MISSING, f"$.categories[{i}].id")
    if isinstance(cat["id"], bool) or not isinstance(cat["id"], int | str):
        sink.fail(f"expected an integer or a string, got {type(cat['id']).__name__}", f"$.categories[{i}].id")
    names = cat["keypoints"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        sink.fail("expected a list of keypoint names", f"$.categories[{i}].keypoints")
    return cat["id"], (tuple(names) if names else None)


def _images(records: list[dict[str, Raw]], sink: Sink, spaced: bool) -> Images:
    file = sink.file
    if not all(rec.keys() >= _IMAGE_REQUIRED for rec in records):
        for i, rec in enumerate(records):
            for key in ("id", "file_name"):
                if key not in rec:
                    sink.fail(MISSING, f"$.images[{i}].{key}")
    ids = decode_column(list(map(itemgetter("id"), records)), Int64 | str, file, "images", "id")
    names = decode_column(list(map(itemgetter("file_name"), records)), str, file, "images", "file_name")
    sizes = {}
    for key in ("width", "height"):
        raws = list(map(methodcaller("get", key, NULL), records))
        values = np.array(decode_column(raws, float | None, file, "images", key), dtype=np.float64)
        sizes[key] = values.reshape(len(records))
    for key, values in sizes.items():
        check_range(values, 0, False, sink, "$.images[{}]".format, key)
    check_unique(
        ids,
        sink,
        "duplicate_image_id",
        "images whose id appeared before",
        lambda j, first: (
            f"expected unique ids, got {ids[j]!r} again (also at images[{first}])",
            f"$.images[{j}].id",
        ),
    )
    extra = members_all(records, IMAGE_FIELDS, {}, spaced)
    return Images(ids=ids, file_names=names, widths=sizes["width"], heights=sizes["height"], extra=extra)


def _annotations(
    rows: Rows, images: Images, category: tuple[Id, list[Category]], names: tuple[str, ...] | None, sink: Sink
) -> CocoRecords:
    cats = rows.categories(sink)
    keep: list[int] | range = range(rows.n)
    skipped: dict[str, int] = {}
    if cats.count(category[0]) != len(cats):
        keep, skipped = _other_categories(cats, category, rows, sink)
    if skipped or isinstance(rows, DictRows):
        rows.select(list(keep))
    where = keep

    def at(j: int) -> str:
        return f"$.annotations[{where[j]}]"

    n = rows.n
    ids = rows.scalar("id", Int64 | str)
    image_ids = rows.scalar("image_id", Int64 | str)
    kp_raws = rows.raw("keypoints")
    k = len(names) if names else _row_length(kp_raws) // 3
    kp: npt.NDArray[np.float64] | list[list[float]] | None = float_rows(kp_raws, 3 * k) if k else None
    if kp is None:
        kp = _decode_rows(kp_raws, sink, at, "keypoints")
    del kp_raws
    box_raws = rows.raw("bbox")
    box: npt.NDArray[np.float64] | list[list[float]] | None = float_rows(box_raws, 4)
    if box is None:
        box = _decode_rows(box_raws, sink, at, "bbox")
    del box_raws
    areas = np.array(rows.scalar("area", float | None), dtype=np.float64).reshape(n)
    crowd = rows.scalar("iscrowd", Int64 | bool | None)
    nkp = rows.scalar("num_keypoints", Int64 | None)
    keypoints = _check_keypoints(kp, k, names is not None, sink, at, ids)
    boxes = _check_boxes(box, sink, at, ids)
    check_range(areas, 0, True, sink, at, "area")
    flags = np.array([int(c or 0) for c in crowd] if None in crowd else crowd, dtype=np.int64).reshape(n)
    bad = (flags != 0) & (flags != 1)
    if bad.any():
        j = int(np.argmax(bad))
        sink.fail(f"expected 0 or 1, got {flags[j]}", f"{at(j)}.iscrowd")
    index = _image_index(image_ids, images)

    def missing_image() -> None:
        sink.rule(
            "missing_image",
            index < 0,
            ids,
            "annotations whose image_id is not in images",
            lambda j: (f"expected the id of an image in images, got {image_ids[j]!r}", f"{at(j)}.image_id"),
        )

    if not sink.record:  # the first error a raising sink meets (a recording one lists duplicates first)
        missing_image()
    check_unique(
        ids,
        sink,
        "duplicate_annotation_id",
        "annotations whose id appeared before",
        lambda j, first: (
            f"expected unique ids, got {ids[j]!r} again (also at annotations[{where[first]}])",
            f"{at(j)}.id",
        ),
    )
    if sink.record:
        missing_image()
    instances = Instances(
        keypoints=keypoints,
        boxes=boxes,
        areas=areas,
        iscrowd=flags,
        image_index=index,
        ids=ids,
        num_keypoints=np.array([-1 if n is None else n for n in nkp] if None in nkp else nkp, dtype=np.int64),
        extra=rows.extra(),
    )
    dataset = Dataset(
        images=images,
        instances=instances,
        keypoint_names=names,
        format="coco",
        skipped=skipped,
        problems=tuple(sink.problems),
    )
    return CocoRecords(dataset, {name: rows.taken(name) for name in rows.take})


def _check_keypoints(
    kp: npt.NDArray[np.float64] | list[list[float]],
    k: int,
    named: bool,
    sink: Sink,
    at: Callable[[int], str],
    ids: list[Id],
) -> npt.NDArray[np.float64]:
    """(N, K, 3) keypoints of parsed rows (K from the category's names, else from the rows), checked."""
    n = len(kp)
    if isinstance(kp, np.ndarray):
        arr = kp.reshape(n, k, 3)
    else:
        if not named:
            k = len(kp[0]) // 3 if kp else 0
        if k == 0 and n:
            sink.fail("expected keypoints, got an empty list", f"{at(0)}.keypoints")
        arr = _keypoint_lists(kp, k, sink, at, ids)
    check_finite(arr.reshape(n, 3 * arr.shape[1]), sink, at, "keypoints")
    check_visibility(
        arr[:, :, 2],
        (0, 1, 2),
        sink,
        ids,
        "visibility values other than 0, 1, 2",
        lambda j, kk: (
            f"expected visibility 0, 1 or 2, got {arr[j, kk, 2]:g}",
            f"{at(j)}.keypoints[{3 * kk + 2}]",
        ),
    )
    return arr


def _keypoint_lists(
    lists: list[list[float]], k: int, sink: Sink, at: Callable[[int], str], ids: list[Id]
) -> npt.NDArray[np.float64]:
    """Rows that are not all 3 * k long: an error, or (recording) K from the rows or unlabelled rows."""
    n = len(lists)
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=n)
    bad = lengths != 3 * k
    if not bad.any():
        return np.array(lists, dtype=np.float64).reshape(n, k, 3)
    if not sink.record:
        j = int(np.argmax(bad))
        sink.fail(f"expected {3 * k} numbers ({k} keypoints x 3), got {lengths[j]}", f"{at(j)}.keypoints")
    if (lengths == lengths[0]).all() and lengths[0] % 3 == 0 and lengths[0]:
        k = int(lengths[0]) // 3
        bad = np.ones(n, dtype=bool)
        message = f"annotations have {k} keypoints, the category names a different number"
        arr = np.array(lists, dtype=np.float64).reshape(n, k, 3)
    else:
        arr = np.zeros((n, k, 3))
        good = np.flatnonzero(~bad)
        arr[good] = np.array([lists[j] for j in good], dtype=np.float64).reshape(len(good), k, 3)
        message = f"annotations without {3 * k} keypoint numbers ({k} keypoints x 3); read as unlabelled"
    sink.rule("k_mismatch", bad, ids, message, lambda j: ("", ""))
    return arr


def _check_boxes(
    box: npt.NDArray[np.float64] | list[list[float]], sink: Sink, at: Callable[[int], str], ids: list[Id]
) -> npt.NDArray[np.float64]:
    if isinstance(box, np.ndarray):
        arr = box
    else:
        for j, b in enumerate(box):
            if len(b) != 4:
                sink.fail(f"expected 4 numbers [x, y, w, h], got {len(b)}", f"{at(j)}.bbox")
        arr = np.array(box, dtype=np.float64).reshape(len(box), 4)
    check_finite(arr, sink, at, "bbox")
    sink.rule(
        "negative_box",
        (arr[:, 2] < 0) | (arr[:, 3] < 0),
        ids,
        "boxes with a negative width or height",
        lambda j: (
            f"expected a box with width and height >= 0, got {arr[j, 2]:g} x {arr[j, 3]:g}",
            f"{at(j)}.bbox",
        ),
    )
    return arr


def _decode_rows(raws: list[Raw], sink: Sink, at: Callable[[int], str], name: str) -> list[list[float]]:
    """A column's rows decoded one list each; an error names the row (for irregular rows)."""
    try:
        return decode_column(raws, list[float], sink.file, "", name)
    except KpmergeError as err:
        path = err.json_path or ""
        if path.startswith("$["):
            j, rest = path[2:].split("]", 1)
            raise KpmergeError(err.message, sink.file, at(int(j)) + rest) from None
        raise


def _row_length(raws: list[Raw]) -> int:
    """How many values the first JSON list holds (0 when there is none or it is not a list)."""
    if not raws:
        return 0
    try:
        first = msgspec.json.decode(raws[0])
    except msgspec.DecodeError:
        return 0
    return len(first) if isinstance(first, list) else 0


def _image_index(image_ids: list[Id], images: Images) -> npt.NDArray[np.int64]:
    """Row of each annotation's image; -1 for an image_id that is not in images."""
    row = {v: i for i, v in enumerate(images.ids.tolist())}
    rows = list(map(row.get, image_ids))
    if None in rows:
        rows = [-1 if r is None else r for r in rows]
    return np.array(rows, dtype=np.int64).reshape(len(rows))
