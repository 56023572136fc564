"""Raw AI Challenger keypoint JSON (a list of per-image records): read and write."""

from __future__ import annotations

import re
from dataclasses import replace
from itertools import chain, repeat
from operator import attrgetter, is_, itemgetter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from ..errors import KpmergeError
from ..imagesize import folder_sizes
from ..instances import Dataset, Images, Instances, Problem
from ..jsonio import (
    Raw,
    compact,
    decode,
    decode_column,
    float_rows,
    has_layout_space,
    key_bytes,
    members_all,
    no_gc,
    read_bytes,
)

K = 14
RECORD_FIELDS = frozenset({"image_id", "keypoint_annotations", "human_annotations"})
# Raw AIC visibility -> COCO visibility: 1 visible -> 2, 2 occluded -> 1, 3 unlabelled -> 0 (SPEC 1.2);
# COCO -> raw AIC below.
_TO_AIC = np.array([3, 2, 1])
_NO_URL = msgspec.Raw(b"null")
_HUMAN = re.compile(r"^human(\d+)$")
_HUMANS = re.compile(r"human[0-9]+(?:\nhuman[0-9]+)*")


def read_aic(path: str | Path, image_dir: str | Path | None = None) -> Dataset:
    """Read a raw AI Challenger keypoint file; image sizes come from `image_dir` when given."""
    return aic_to_dataset(read_bytes(path), file=path, image_dir=image_dir)


def aic_to_dataset(
    data: bytes, file: str | Path | None = None, image_dir: str | Path | None = None, strict: bool = True
) -> Dataset:
    """Parse raw AIC JSON bytes into a Dataset in the 14-keypoint aic layout, COCO conventions.

    With `strict=False`, bad visibility values (kept as read) and boxes with x2 < x1 or y2 < y1 are
    recorded in `Dataset.problems` instead of raised.
    """
    if not strict:
        try:  # a file that breaks no rule reads as fast as in strict mode
            return aic_to_dataset(data, file, image_dir)
        except KpmergeError:
            pass  # read it again, recording what is wrong instead of stopping at it
    problems: list[Problem] | None = None if strict else []
    spaced = has_layout_space(data)
    with no_gc():
        fast = _read_fast(data, spaced)
        if fast is not None:
            image_ids, people, extra = fast
        else:
            records = decode(data, list[dict[str, Raw]], file)
            if not all(rec.keys() >= RECORD_FIELDS for rec in records):
                for i, rec in enumerate(records):
                    for key in RECORD_FIELDS:
                        if key not in rec:
                            raise KpmergeError("expected a value, got none (missing)", file, f"$[{i}].{key}")
            image_ids = decode_column([r["image_id"] for r in records], str, file, "", "image_id")
            _check_unique_images(image_ids, file)
            people = _people_dicts(records, image_ids) or _people_checked(records, image_ids, file)
            extra = members_all(records, RECORD_FIELDS, {}, spaced)
            del records
        kp, xyxy, ann_ids, image_index = people
        n = len(ann_ids)
        _check_values(kp, xyxy, ann_ids, file, problems)
        vis = kp[:, :, 2]
        if problems is None:
            np.subtract(3.0, vis, out=vis)  # 1 -> 2, 2 -> 1, 3 -> 0 (checked above)
        else:  # lenient: values other than 1, 2, 3 are kept as read (and reported)
            valid = (vis == 1) | (vis == 2) | (vis == 3)
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
    ds = Dataset(images=images, instances=instances, keypoint_names=None, format="aic", notes=notes)
    return ds if problems is None else replace(ds, problems=tuple(problems))


def _check_unique_images(image_ids: list[str], file: Any) -> None:
    if len(set(image_ids)) == len(image_ids):
        return
    seen: dict[str, int] = {}
    for i, v in enumerate(image_ids):
        if v in seen:
            raise KpmergeError(
                f"expected unique ids, got {v!r} again (also at $[{seen[v]}])", file, f"$[{i}].image_id"
            )
        seen[v] = i


_People = tuple[np.ndarray, np.ndarray, list[str], np.ndarray]


class _Record(msgspec.Struct, forbid_unknown_fields=True):
    """A raw AIC record of the usual shape (for the fast path; anything else takes the checked one)."""

    image_id: str
    keypoint_annotations: dict[str, Raw]
    human_annotations: dict[str, Raw]
    url: Raw = _NO_URL


def _read_fast(data: bytes, spaced: bool) -> tuple[list[str], _People, list[bytes]] | None:
    """Image ids, people and extra members of a regular raw AIC file in one pass, else None."""
    try:
        records = msgspec.json.decode(data, type=list[_Record])
    except msgspec.DecodeError:
        return None
    image_ids = list(map(attrgetter("image_id"), records))
    if len(set(image_ids)) != len(image_ids):
        return None  # the checked path reports the duplicate
    people = _people_fast(
        list(map(attrgetter("keypoint_annotations"), records)),
        list(map(attrgetter("human_annotations"), records)),
        image_ids,
    )
    if people is None:
        return None
    urls = list(map(attrgetter("url"), records))
    del records
    url_key = b'"url":'
    if spaced or any(map(is_, urls, repeat(_NO_URL))):
        extra = [b"" if u is _NO_URL else url_key + (compact(u) if spaced else u) for u in urls]
    else:
        extra = list(map(url_key.__add__, urls))
    return image_ids, people, extra


def _people_dicts(records: list[dict[str, Raw]], image_ids: list[str]) -> _People | None:
    """`_people_fast` on records decoded as dicts."""
    try:
        people = msgspec.json.decode(
            b"[" + b",".join([r["keypoint_annotations"] for r in records]) + b"]", type=list[dict[str, Raw]]
        )
        boxes = msgspec.json.decode(
            b"[" + b",".join([r["human_annotations"] for r in records]) + b"]", type=list[dict[str, Raw]]
        )
    except msgspec.DecodeError:
        return None
    return _people_fast(people, boxes, image_ids)


def _people_fast(
    people: list[dict[str, Raw]], boxes: list[dict[str, Raw]], image_ids: list[str]
) -> _People | None:
    """Keypoints (n, K, 3) raw, boxes (n, 4) xyxy, ids and image rows of every person, in bulk.

    None when anything is irregular; `_people_checked` then finds and reports the problem.
    """
    names: list[str] = list(chain.from_iterable(people))
    kp_raws: list[Raw] = list(chain.from_iterable(map(dict.values, people)))
    counts = list(map(len, people))
    box_names: list[str] = list(chain.from_iterable(boxes))
    box_raws: list[Raw] = list(chain.from_iterable(map(dict.values, boxes)))
    if len(box_names) != len(names):
        return None  # a box without keypoints (or the reverse): the checked path names it
    if box_names != names:  # boxes in another order, or extra boxes: look each one up
        try:
            box_raws = [bxs[h] for kps, bxs in zip(people, boxes, strict=True) for h in kps]
        except KeyError:
            return None
    del people, boxes
    if names and not _HUMANS.fullmatch("\n".join(names)):
        return None
    number = np.fromiter(map(int, map(itemgetter(slice(5, None)), names)), dtype=np.int64, count=len(names))
    record = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    order = np.lexsort((number, record))
    number, record = number[order], record[order]
    if ((number[1:] == number[:-1]) & (record[1:] == record[:-1])).any():
        return None  # e.g. human1 and human01 in one record
    picks = order.tolist()
    if not (np.diff(order) == 1).all():
        kp_raws, box_raws = list(map(kp_raws.__getitem__, picks)), list(map(box_raws.__getitem__, picks))
    kp = float_rows(kp_raws, 3 * K)
    xyxy = float_rows(box_raws, 4)
    if kp is None or xyxy is None:
        return None
    of_image = map(image_ids.__getitem__, record.tolist())
    ann_ids = list(map("/".join, zip(of_image, map(names.__getitem__, picks), strict=True)))
    return kp.reshape(len(picks), K, 3), xyxy, ann_ids, record


def _people_checked(records: list[dict[str, Raw]], image_ids: list[str], file: Any) -> _People:
    """As `_people_fast`, one person at a time, raising KpmergeError at the first problem."""
    people = _humans(records, "keypoint_annotations", file)
    boxes = _humans(records, "human_annotations", file)
    kp_rows, box_rows, ann_ids, image_index = [], [], [], []
    for i, (img, kps, bxs) in enumerate(zip(image_ids, people, boxes, strict=True)):
        orphan = sorted(set(bxs) - set(kps))
        if orphan:
            raise KpmergeError(
                f"expected keypoints for every box, got a box for {orphan[0]} without keypoints",
                file,
                f"$[{i}].keypoint_annotations",
            )
        for human in _human_order(kps, file, i):
            if human not in bxs:
                raise KpmergeError(f"expected a box for {human}, got none", file, f"$[{i}].human_annotations")
            kp_rows.append(_check_len(kps[human], 3 * K, file, f"$[{i}].keypoint_annotations.{human}"))
            box_rows.append(_check_len(bxs[human], 4, file, f"$[{i}].human_annotations.{human}"))
            ann_ids.append(f"{img}/{human}")
            image_index.append(i)
    n = len(kp_rows)
    kp = np.array(kp_rows, dtype=np.float64).reshape(n, K, 3)
    xyxy = np.array(box_rows, dtype=np.float64).reshape(n, 4)
    return kp, xyxy, ann_ids, np.array(image_index, dtype=np.int64)


def _humans(records: list[dict[str, Raw]], field: str, file: Any) -> list[dict[str, list[float]]]:
    """One `{humanN: numbers}` per record; an error names the record and the human."""
    try:
        return decode_column([r[field] for r in records], dict[str, list[float]], file, "", field)
    except KpmergeError as err:
        path = err.json_path or ""
        if "[...]" not in path:
            raise
        i = int(path[2 : path.index("]")])
        for human, raw in decode(bytes(records[i][field]), dict[str, Raw], file, f"$[{i}].{field}").items():
            decode(bytes(raw), list[float], file, f"$[{i}].{field}.{human}")
        raise


def _human_order(kps: dict[str, list[float]], file: Any, i: int) -> list[str]:
    """Humans in numeric order of their suffix: human2 before human10."""
    keyed = []
    for name in kps:
        m = _HUMAN.match(name)
        if not m:
            raise KpmergeError(
                f"expected keys named humanN, got {name!r}", file, f"$[{i}].keypoint_annotations"
            )
        keyed.append((int(m.group(1)), name))
    return [name for _, name in sorted(keyed)]


def _check_len(values: list[float], n: int, file: Any, path: str) -> list[float]:
    if len(values) != n:
        raise KpmergeError(f"expected {n} numbers, got {len(values)}", file, path)
    return values


def _check_values(
    kp: np.ndarray, xyxy: np.ndarray, ann_ids: list[str], file: Any, problems: list[Problem] | None = None
) -> None:
    def where(j: int, field: str) -> str:
        img, human = ann_ids[j].rsplit("/", 1)
        return f"$[image_id={img}].{field}.{human}"

    for arr, field in ((kp.reshape(len(kp), 3 * K), "keypoint_annotations"), (xyxy, "human_annotations")):
        bad = ~np.isfinite(arr)
        if bad.any():
            j, c = (int(x) for x in np.argwhere(bad)[0])
            raise KpmergeError(f"expected a finite number, got {arr[j, c]}", file, f"{where(j, field)}[{c}]")
    vis = kp[:, :, 2]
    bad_v = (vis != 1) & (vis != 2) & (vis != 3)
    neg = (xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1])
    if problems is not None:
        for kind, mask, message in (
            ("bad_visibility", bad_v.any(axis=1), "visibility values other than 1, 2, 3 (raw AIC)"),
            ("negative_box", neg, "boxes with x2 < x1 or y2 < y1"),
        ):
            if mask.any():
                rows = np.flatnonzero(mask)[:5].tolist()
                examples = tuple(ann_ids[j] for j in rows)
                problems.append(Problem(kind, "error", int(np.count_nonzero(mask)), examples, message))
        return
    if bad_v.any():
        j, k = (int(x) for x in np.argwhere(bad_v)[0])
        raise KpmergeError(
            f"expected visibility 1, 2 or 3 (raw AIC), got {vis[j, k]:g}",
            file,
            f"{where(j, 'keypoint_annotations')}[{3 * k + 2}]",
        )
    if neg.any():
        j = int(np.argmax(neg))
        raise KpmergeError(
            f"expected [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1, got {xyxy[j].tolist()}",
            file,
            where(j, "human_annotations"),
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
