"""Raw AI Challenger keypoint JSON (a list of per-image records): read and write."""

from __future__ import annotations

import re
from functools import partial
from itertools import chain, repeat
from operator import attrgetter, is_
from pathlib import Path

import msgspec
import numpy as np

from ..errors import KpmergeError
from ..imagesize import folder_sizes
from ..instances import Dataset, Images, Instances
from ..jsonio import Raw, content_start, decode, decode_column, first_char, float_rows, read_bytes
from ..jsonwrite import compact, has_layout_space, key_bytes, members_all, no_gc
from .checks import Sink, check_finite, check_unique, check_visibility

K = 14
RECORD_FIELDS = frozenset({"image_id", "keypoint_annotations", "human_annotations"})
# Raw AIC visibility -> COCO visibility: 1 visible -> 2, 2 occluded -> 1, 3 unlabelled -> 0 (SPEC 1.2);
# COCO -> raw AIC below.
_TO_AIC = np.array([3, 2, 1])
_NO_URL = msgspec.Raw(b"null")
_HUMAN = re.compile(r"human([0-9]+)")


def sniff_aic(data: bytes) -> bool:
    """Whether the content looks like raw AIC: a list of records with `keypoint_annotations` (or `[]`)."""
    if first_char(data) != "[":
        return False
    start = content_start(data)
    after = content_start(data, start + 1)
    return b'"keypoint_annotations"' in data[start : start + 65536] or data[after : after + 1] == b"]"


def read_aic(path: str | Path, image_dir: str | Path | None = None) -> Dataset:
    """Read a raw AI Challenger keypoint file; image sizes come from `image_dir` when given."""
    return aic_to_dataset(read_bytes(path), file=path, image_dir=image_dir)


def aic_to_dataset(
    data: bytes, file: str | Path | None = None, image_dir: str | Path | None = None, strict: bool = True
) -> Dataset:
    """Parse raw AIC JSON bytes into a Dataset in the 14-keypoint aic layout, COCO conventions.

    With `strict=False`, bad visibility values (kept as read) and boxes with x2 < x1 or y2 < y1 are
    recorded in `Dataset.problems` instead of raised.

    Raises:
        KpmergeError: naming the file and JSON path of the first problem.
    """
    sink = Sink(file, record=not strict)
    spaced = has_layout_space(data)
    with no_gc():
        image_ids, kp_dicts, box_dicts, extra = _records(data, sink, spaced)
        kp, xyxy, ann_ids, image_index = _people(kp_dicts, box_dicts, image_ids, sink)
        del kp_dicts, box_dicts
        n = len(ann_ids)
        _check_values(kp, xyxy, ann_ids, sink)
        vis = kp[:, :, 2]
        valid = (vis == 1) | (vis == 2) | (vis == 3)
        if valid.all():
            np.subtract(3.0, vis, out=vis)  # 1 -> 2, 2 -> 1, 3 -> 0
        else:  # recorded as a problem: other values are kept as read
            vis[valid] = 3.0 - vis[valid]
        box = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        widths, heights, notes = folder_sizes(image_dir, [f"{i}.jpg" for i in image_ids], "raw AIC files")
        images = Images(
            ids=image_ids,
            file_names=[f"{i}.jpg" for i in image_ids],
            widths=widths,
            heights=heights,
            extra=extra,
        )
        instances = Instances(
            keypoints=kp,
            boxes=box,
            areas=np.full(n, np.nan),
            iscrowd=np.zeros(n, dtype=np.int64),
            image_index=image_index,
            ids=ann_ids,
            num_keypoints=np.full(n, -1),
            extra=[b""] * n,
        )
    return Dataset(
        images=images,
        instances=instances,
        keypoint_names=None,
        format="aic",
        notes=notes,
        problems=tuple(sink.problems),
    )


_People = tuple[np.ndarray, np.ndarray, list[str], np.ndarray]
_Humans = list[dict[str, Raw]]


class _Record(msgspec.Struct, forbid_unknown_fields=True):
    """A raw AIC record of the usual shape (records of another shape are decoded as raw members)."""

    image_id: str
    keypoint_annotations: dict[str, Raw]
    human_annotations: dict[str, Raw]
    url: Raw = _NO_URL


def _records(data: bytes, sink: Sink, spaced: bool) -> tuple[list[str], _Humans, _Humans, list[bytes]]:
    """Image ids, each record's people and boxes as `{humanN: raw}`, and the records' other members.

    One decode: typed records, or (when a record has another shape) records of raw members.
    """
    file = sink.file
    try:
        typed = msgspec.json.decode(data, type=list[_Record])
    except msgspec.DecodeError:
        typed = None
    if typed is not None:
        image_ids = list(map(attrgetter("image_id"), typed))
        kps = list(map(attrgetter("keypoint_annotations"), typed))
        boxes = list(map(attrgetter("human_annotations"), typed))
        urls = list(map(attrgetter("url"), typed))
        del typed
        url_key = b'"url":'
        if spaced or any(map(is_, urls, repeat(_NO_URL))):
            extra = [b"" if u is _NO_URL else url_key + (compact(u) if spaced else u) for u in urls]
        else:
            extra = list(map(url_key.__add__, urls))
    else:
        records = decode(data, list[dict[str, Raw]], file)
        if not all(rec.keys() >= RECORD_FIELDS for rec in records):
            for i, rec in enumerate(records):
                for key in RECORD_FIELDS:
                    if key not in rec:
                        sink.fail("expected a value, got none (missing)", f"$[{i}].{key}")
        image_ids = decode_column([r["image_id"] for r in records], str, file, "", "image_id")
        kps = decode_column(
            [r["keypoint_annotations"] for r in records], dict[str, Raw], file, "", "keypoint_annotations"
        )
        boxes = decode_column(
            [r["human_annotations"] for r in records], dict[str, Raw], file, "", "human_annotations"
        )
        extra = members_all(records, RECORD_FIELDS, {}, spaced)
        del records
    check_unique(
        image_ids,
        Sink(file),  # two records of one image cannot be read apart: an error for inspect too
        "duplicate_image_id",
        "",
        lambda i, first: (
            f"expected unique ids, got {image_ids[i]!r} again (also at $[{first}])",
            f"$[{i}].image_id",
        ),
    )
    return image_ids, kps, boxes, extra


def _people(people: _Humans, boxes: _Humans, image_ids: list[str], sink: Sink) -> _People:
    """Keypoints (n, K, 3) raw, boxes (n, 4) xyxy, ids and image rows of every person, in record order.

    In bulk; when anything is irregular, the records are gone through one by one to report it.
    """
    names: list[str] = list(chain.from_iterable(people))
    kp_raws: list[Raw] = list(chain.from_iterable(map(dict.values, people)))
    counts = list(map(len, people))
    box_names: list[str] = list(chain.from_iterable(boxes))
    box_raws: list[Raw] = list(chain.from_iterable(map(dict.values, boxes)))
    regular = len(box_names) == len(names)  # else a box without keypoints (or the reverse)
    if regular and box_names != names:  # boxes in another order, or extra boxes: look each one up
        try:
            box_raws = [bxs[h] for kps, bxs in zip(people, boxes, strict=True) for h in kps]
        except KeyError:
            regular = False
    number = _human_numbers(names) if regular and names else None
    regular = regular and number is not None  # else a name that is not humanN
    if regular:
        record = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        order = np.lexsort((number, record))
        number, record = number[order], record[order]
        regular = not ((number[1:] == number[:-1]) & (record[1:] == record[:-1])).any()  # human1, human01
    if regular:
        picks = order.tolist()
        if not (np.diff(order) == 1).all():
            kp_raws, box_raws = list(map(kp_raws.__getitem__, picks)), list(map(box_raws.__getitem__, picks))
        kp = float_rows(kp_raws, 3 * K)
        xyxy = float_rows(box_raws, 4)
        if kp is not None and xyxy is not None:
            of_image = map(image_ids.__getitem__, record.tolist())
            ann_ids = list(map("/".join, zip(of_image, map(names.__getitem__, picks), strict=True)))
            return kp.reshape(len(picks), K, 3), xyxy, ann_ids, record
    return _people_rows(people, boxes, image_ids, sink)


def _human_numbers(names: list[str]) -> np.ndarray | None:
    """N of every name `humanN` (N: ASCII digits, its value below 10**18), parsed at once; None when a
    name has another form or a larger N (the one-by-one path reads those)."""
    text = "\n" + "\n".join(names)
    if text.count("\n") != len(names) or text.count("\nhuman") != len(names):  # no newline inside a name
        return None
    digits = text.replace("\nhuman", "\n")
    if "\n\n" in digits + "\n" or not digits.replace("\n", "").isdigit() or not digits.isascii():
        return None
    number = np.fromstring(digits[1:], dtype=np.int64, sep="\n")
    return number if len(number) == len(names) and int(number.max()) < 10**18 else None


def _people_rows(people: _Humans, boxes: _Humans, image_ids: list[str], sink: Sink) -> _People:
    """As `_people`, one person at a time, raising KpmergeError at the first problem."""
    kp_rows, box_rows, ann_ids, image_index = [], [], [], []
    for i, (img, kps, bxs) in enumerate(zip(image_ids, people, boxes, strict=True)):
        orphan = sorted(set(bxs) - set(kps))
        if orphan:
            sink.fail(
                f"expected keypoints for every box, got a box for {orphan[0]} without keypoints",
                f"$[{i}].keypoint_annotations",
            )
        for human in _human_order(kps, sink, i):
            if human not in bxs:
                sink.fail(f"expected a box for {human}, got none", f"$[{i}].human_annotations")
            kp_rows.append(_numbers(kps[human], 3 * K, sink, f"$[{i}].keypoint_annotations.{human}"))
            box_rows.append(_numbers(bxs[human], 4, sink, f"$[{i}].human_annotations.{human}"))
            ann_ids.append(f"{img}/{human}")
            image_index.append(i)
    n = len(kp_rows)
    kp = np.array(kp_rows, dtype=np.float64).reshape(n, K, 3)
    xyxy = np.array(box_rows, dtype=np.float64).reshape(n, 4)
    return kp, xyxy, ann_ids, np.array(image_index, dtype=np.int64)


def _human_order(kps: dict[str, Raw], sink: Sink, i: int) -> list[str]:
    """Humans in numeric order of their suffix: human2 before human10."""
    keyed = []
    for name in kps:
        m = _HUMAN.fullmatch(name)
        if not m:
            sink.fail(f"expected keys named humanN, got {name!r}", f"$[{i}].keypoint_annotations")
        keyed.append((int(m.group(1)), name))
    return [name for _, name in sorted(keyed)]


def _numbers(raw: Raw, n: int, sink: Sink, path: str) -> list[float]:
    """One person's list of n numbers, decoded; an error names the path."""
    values = decode(bytes(raw), list[float], sink.file, path)
    if len(values) != n:
        sink.fail(f"expected {n} numbers, got {len(values)}", path)
    return values


def _check_values(kp: np.ndarray, xyxy: np.ndarray, ann_ids: list[str], sink: Sink) -> None:
    def where(j: int, field: str) -> str:
        img, human = ann_ids[j].rsplit("/", 1)
        return f"$[image_id={img}].{field}.{human}"

    check_finite(kp.reshape(len(kp), 3 * K), sink, partial(where, field="keypoint_annotations"), "")
    check_finite(xyxy, sink, partial(where, field="human_annotations"), "")
    check_visibility(
        kp[:, :, 2],
        (1, 2, 3),
        sink,
        ann_ids,
        "visibility values other than 1, 2, 3 (raw AIC)",
        lambda j, k: (
            f"expected visibility 1, 2 or 3 (raw AIC), got {kp[j, k, 2]:g}",
            f"{where(j, 'keypoint_annotations')}[{3 * k + 2}]",
        ),
    )
    sink.rule(
        "negative_box",
        (xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1]),
        ann_ids,
        "boxes with x2 < x1 or y2 < y1",
        lambda j: (
            f"expected [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1, got {xyxy[j].tolist()}",
            where(j, "human_annotations"),
        ),
    )


def write_aic(dataset: Dataset, path: str | Path) -> None:
    """Write a Dataset in the aic layout as raw AI Challenger JSON."""
    Path(path).write_bytes(dataset_to_aic(dataset))


def dataset_to_aic(dataset: Dataset) -> bytes:
    """Raw AIC JSON bytes for a Dataset in the aic layout (the inverse of `aic_to_dataset`)."""
    import orjson

    inst, images = dataset.instances, dataset.images
    if inst.k != K:
        raise KpmergeError(f"raw AIC holds {K} keypoints per person, got {inst.k}")
    kp = inst.keypoints.copy()
    kp[:, :, 2] = _TO_AIC[kp[:, :, 2].astype(np.int64)]
    xyxy = np.concatenate([inst.boxes[:, :2], inst.boxes[:, :2] + inst.boxes[:, 2:]], axis=1)
    per_image: list[list[int]] = [[] for _ in range(len(images))]
    for j, i in enumerate(inst.image_index.tolist()):
        per_image[i].append(j)
    cache: dict[str, bytes] = {}
    out = []
    for i, rows in enumerate(per_image):
        humans = {f"human{n + 1}": j for n, j in enumerate(rows)}
        kps = {h: _plain(kp[j].reshape(-1)) for h, j in humans.items()}
        bxs = {h: _plain(xyxy[j]) for h, j in humans.items()}
        image_id = str(images.ids[i])
        if image_id.endswith(".jpg"):
            image_id = image_id[:-4]
        parts = [images.extra[i]] if images.extra[i] else []
        parts += [
            key_bytes("image_id", cache) + orjson.dumps(image_id),
            key_bytes("keypoint_annotations", cache) + orjson.dumps(kps),
            key_bytes("human_annotations", cache) + orjson.dumps(bxs),
        ]
        out.append(b"{" + b",".join(parts) + b"}")
    return b"[" + b",\n".join(out) + b"]\n"


def _plain(values: np.ndarray) -> list[int | float]:
    return [int(v) if float(v).is_integer() else float(v) for v in values.tolist()]
