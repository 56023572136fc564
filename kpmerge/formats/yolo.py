"""Ultralytics YOLO-pose datasets (`data.yaml` plus one label text file per image): read (SPEC 1.3).

The dataset's files (a split's images, their label files and sizes) are found as Ultralytics finds them
(`kpmerge.formats.yolo_files`); an image without a label file has no people. A row is `class cx cy w h`
then K times `x y [v]`, divided by the image's width and height.

Rows are checked as Ultralytics checks them (it drops a whole image for one bad row; kpmerge names the
file and line instead): the value count, numbers, keypoint `x, y` at most 1.01, no value below -0.01,
box sizes >= 0, integral classes of `names`, and `v` in {0, 1, 2}. Rows that repeat a row of the same
image exactly are left out (`duplicate_row`), as Ultralytics removes them; rows of other classes are
left out (`other_class`).
"""

from __future__ import annotations

import array
import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from ..errors import KpmergeError
from ..instances import Dataset, Images, Instances
from . import checks
from .yolo_files import image_files, image_size, img2label_path, label_name
from .yolo_yaml import DataYaml, choose_class, find_yaml, load_yaml, parse_data_yaml, yaml_layout

HIGH = np.float32(1.01)
"""Ultralytics rejects a label whose keypoint x or y (as float32) is above this ..."""
LOW = np.float32(-0.01)
"""... or any of whose values is below this."""
_EXAMPLES = 5
_CHUNK = 4096
"""Rows parsed in one bulk step."""


def repeats(image_index: np.ndarray, rows: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(R,) the kept rows bit-equal to an earlier kept row of the same image (compare as the caller's
    dtype: float32 as Ultralytics parses, float64 as it writes)."""
    out = np.zeros(len(rows), dtype=bool)
    idx = np.flatnonzero(keep)
    if len(idx) < 2:
        return out
    width = rows.shape[1] * rows.dtype.itemsize
    keys = np.empty(len(idx), dtype=[("image", np.int64), ("row", f"V{width}")])
    keys["image"] = image_index[idx]
    keys["row"] = np.ascontiguousarray(rows[idx]).view(f"V{width}").ravel()
    _, first = np.unique(keys, return_index=True)
    repeat = np.ones(len(idx), dtype=bool)
    repeat[first] = False
    out[idx[repeat]] = True
    return out


def read_yolo(
    path: str | Path, split: str = "train", class_id: int | str | None = None, strict: bool = True
) -> Dataset:
    """Read one split of a YOLO-pose dataset (a dataset yaml, or a folder holding one).

    Args:
        path: The dataset yaml or its folder.
        split: The split to read (`train`, `val`, `test`, ...).
        class_id: The class to read (an id or a name); needed when `names` has several.
        strict: When False, bad rows, missing images and unreadable headers become `Dataset.problems`
            (bad rows are left out; images without a size get NaN) instead of errors.

    Raises:
        KpmergeError: naming the file (and line) of the first problem.
        UsageError: for a missing path, an unknown split or class, several classes and no choice.
    """
    yaml_file = find_yaml(path)
    spec = parse_data_yaml(load_yaml(yaml_file), yaml_file)
    cid = choose_class(spec, class_id)
    files = list(dict.fromkeys(image_files(spec, split)))
    root = str(spec.root.resolve()) + os.sep
    names = [f[len(root) :].replace(os.sep, "/") if f.startswith(root) else _relative(f, root) for f in files]
    labels = [img2label_path(f) for f in files]
    texts = [_read_label(p) for p in labels]
    sizes = np.full((len(files), 2), np.nan)
    missing: list[str] = []
    for i, f in enumerate(files):
        try:
            sizes[i] = image_size(f)
        except KpmergeError:
            if strict:
                raise
            missing.append(names[i])
    dataset = yolo_to_dataset(spec, names, texts, sizes, cid, labels, strict)
    if missing:
        problem = checks.problem(
            "missing_image_file", len(missing), missing, "images that are missing or unreadable"
        )
        dataset = replace(dataset, problems=(*dataset.problems, problem))
    return dataset


def _relative(image: str, root: str) -> str:
    rel = os.path.relpath(image, root)
    return Path(image).as_posix() if rel.startswith("..") else Path(rel).as_posix()


def _read_label(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise KpmergeError(f"cannot read the label file: {exc}", file=path) from None


def yolo_to_dataset(
    data: DataYaml | Mapping[str, Any],
    image_names: Sequence[str],
    label_texts: Sequence[str | None],
    sizes: npt.ArrayLike,
    class_id: int | str | None = None,
    label_files: Sequence[str] | None = None,
    strict: bool = True,
) -> Dataset:
    """The Dataset of one split from its parsed yaml, label texts and image sizes (no disk access).

    Args:
        data: The checked yaml, or the parsed yaml mapping (then checked here as `data.yaml`).
        image_names: (M,) each image's path relative to the dataset root: its file name and source id.
        label_texts: (M,) each image's label file text, None when it has none.
        sizes: (M, 2) each image's width and height (NaN where unknown: only with `strict=False`).
        class_id: The class to read (an id or a name); needed when `names` has several.
        label_files: (M,) how to name each label file in messages (default: from the image names).
        strict: When False, bad rows are left out and reported in `Dataset.problems`.

    Returns:
        Pixel keypoints (N, K, 3), COCO boxes, no areas (outputs compute them), `iscrowd` 0; image ids
        are the image names and annotation ids `name#line`; the layout of the yaml in `Dataset.layout`.

    Raises:
        KpmergeError: naming the label file and line of the first bad row (strict mode).
        UsageError: for an unknown class, or several classes and no choice.
    """
    spec = data if isinstance(data, DataYaml) else parse_data_yaml(data, "data.yaml")
    cid = choose_class(spec, class_id)
    k, ndim = spec.k, spec.ndim
    m = len(image_names)
    wh = np.asarray(sizes, dtype=np.float64).reshape(m, 2)
    files = list(label_files) if label_files is not None else [label_name(n) for n in image_names]
    tokens: list[list[str]] = []  # each non-blank row's values
    parts: list[tuple[int, np.ndarray]] = []  # per label file: its image, its non-blank rows' line numbers
    for i, text in enumerate(label_texts):
        if text:
            split = list(map(str.split, text.lstrip("\ufeff").splitlines()))
            sizes = list(map(len, split))
            tokens += itertools.compress(split, sizes)
            parts.append((i, np.flatnonzero(sizes) + 1))
    img = np.repeat(np.array([i for i, _ in parts], dtype=np.int64), [len(n) for _, n in parts])
    lines = np.concatenate([n for _, n in parts]) if parts else np.zeros(0, dtype=np.int64)
    counts = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    values, code = _check_rows(tokens, counts, spec)
    bad = code > 0
    if bad.any() and strict:
        j = int(np.argmax(bad))
        raise KpmergeError(
            _message(int(code[j]), tokens[j], values[j], spec), files[img[j]], f"line {lines[j]}"
        )
    named = np.asarray(image_names, dtype=str)[img] if len(img) else np.zeros(0, dtype=str)
    ids = np.char.add(np.char.add(named, "#"), lines.astype(str)).astype(object)
    problems = []
    for kind, rows in (
        ("bad_visibility", code == _VISIBILITY),
        ("bad_label_row", bad & (code != _VISIBILITY)),
    ):
        if rows.any():
            problems.append(checks.mask_problem(kind, rows, ids, _KINDS[kind]))
    keep = ~bad
    dup = keep & repeats(img, values.astype(np.float32), keep)
    if dup.any() and not strict:
        problems.append(
            checks.mask_problem("duplicate_label_row", dup, ids, _KINDS["duplicate_label_row"], "warning")
        )
    keep &= ~dup
    other = keep & (values[:, 0] != cid)
    sel = keep & ~other
    w, h = wh[img[sel], 0], wh[img[sel], 1]
    if strict and not (np.isfinite(w) & np.isfinite(h)).all():
        j = int(np.flatnonzero(sel)[np.argmax(~(np.isfinite(w) & np.isfinite(h)))])
        raise KpmergeError("image width and height unknown", image_names[img[j]])
    rows = values[sel]
    xy = rows[:, 5:].reshape(len(rows), k, ndim)
    kp = np.empty((len(rows), k, 3))
    kp[:, :, 0] = xy[:, :, 0] * w[:, None]
    kp[:, :, 1] = xy[:, :, 1] * h[:, None]
    kp[:, :, 2] = xy[:, :, 2] if ndim == 3 else np.where((xy[:, :, 0] == 0) & (xy[:, :, 1] == 0), 0.0, 2.0)
    cx, cy, bw, bh = rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4]
    boxes = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h], axis=1).reshape(-1, 4)
    n = len(rows)
    instances = Instances(
        keypoints=kp,
        boxes=boxes,
        areas=np.full(n, np.nan),
        iscrowd=np.zeros(n, dtype=np.int64),
        image_index=img[sel],
        ids=ids[sel],
        num_keypoints=np.full(n, -1),
        extra=[b""] * n,
    )
    images = Images(
        ids=list(image_names),
        file_names=list(image_names),
        widths=wh[:, 0],
        heights=wh[:, 1],
        extra=[b""] * m,
    )
    layout, notes = yaml_layout(spec, cid)
    skipped = {
        "other_class": int(other.sum()),
        "duplicate_row": int(dup.sum()),
        "bad_row": int(bad.sum()),
    }
    return Dataset(
        images=images,
        instances=instances,
        keypoint_names=spec.kpt_names.get(cid),
        format="yolo",
        skipped={key: v for key, v in skipped.items() if v},
        notes=notes,
        problems=tuple(problems),
        layout=layout,
    )


_COUNT, _NUMBER, _FINITE, _CLASS, _HIGH, _LOW, _BOX, _VISIBILITY = range(1, 9)
_KINDS = {
    "bad_label_row": "label rows Ultralytics rejects (value count, numbers, class, coordinates outside "
    "[-0.01, 1.01], negative box size)",
    "bad_visibility": "label rows with visibility values other than 0, 1, 2",
    "duplicate_label_row": "label rows that repeat a row of the same image (Ultralytics removes them)",
}


def _check_rows(
    tokens: list[list[str]], counts: npt.NDArray[np.int64], spec: DataYaml
) -> tuple[np.ndarray, np.ndarray]:
    """(R, C) values of the rows (zeros where unusable) and (R,) the first rule each breaks (0: none).

    The rows with the right count are parsed in bulk as JSON (their values joined by commas, chunk by
    chunk); a chunk that is not all JSON numbers is parsed row by row as numpy parses text, which is
    what Ultralytics uses.
    """
    k, ndim = spec.k, spec.ndim
    cols = 5 + k * ndim
    r = len(tokens)
    values = np.zeros((r, cols))
    number = counts == cols
    good = np.flatnonzero(number)
    for start in range(0, len(good), _CHUNK):
        part = good[start : start + _CHUNK].tolist()
        try:
            flat = msgspec.json.decode(
                ("[" + ",".join(itertools.chain.from_iterable(tokens[j] for j in part)) + "]").encode(),
                type=list[float],
            )
            values[part] = np.frombuffer(array.array("d", flat), dtype=np.float64).reshape(len(part), cols)
        except (msgspec.DecodeError, ValueError):  # e.g. nan, .5 or a word: row by row
            for j in part:
                try:
                    values[j] = np.array(tokens[j], dtype=np.float64)
                except ValueError:
                    number[j] = False
    with np.errstate(invalid="ignore", over="ignore"):
        v32 = values.astype(np.float32)
        cls = values[:, 0]
        xy = v32[:, 5:].reshape(r, k, ndim)[:, :, :2]
        vis = values[:, 7::3] if ndim == 3 else np.zeros((r, 0))
        reasons = [
            counts != cols,
            ~number,
            ~np.isfinite(values).all(axis=1),
            (cls % 1 != 0) | (cls < 0) | (cls >= len(spec.names)),
            (xy > HIGH).any(axis=(1, 2)),
            (v32 < LOW).any(axis=1),
            (v32[:, 3:5] < 0).any(axis=1),
            ~((vis == 0) | (vis == 1) | (vis == 2)).all(axis=1),
        ]
    return values, np.select(reasons, list(range(1, 9)), 0).astype(np.int64)


def _message(code: int, tokens: list[str], row: np.ndarray, spec: DataYaml) -> str:
    k, ndim = spec.k, spec.ndim
    v32 = row.astype(np.float32)
    if code == _COUNT:
        return (
            f"expected {5 + k * ndim} values (class, box x y w h, {k} keypoints x {ndim}), got {len(tokens)}"
        )
    if code == _NUMBER:
        bad = next(t for t in tokens if not _is_float(t))
        return f"expected numbers, got {bad!r}"
    if code == _FINITE:
        return f"expected finite numbers, got {tokens[int(np.argmax(~np.isfinite(row)))]!r}"
    if code == _CLASS:
        return f"class {tokens[0]} is not a class of the yaml's names (0..{len(spec.names) - 1})"
    if code == _HIGH:
        i, axis = divmod(int(np.argmax((v32[5:].reshape(k, ndim)[:, :2] > HIGH).ravel())), 2)
        c = 5 + i * ndim + axis
        return f"{_column(c, ndim)} = {tokens[c]} is above 1.01 (Ultralytics rejects the image)"
    if code == _LOW:
        c = int(np.argmax(v32 < LOW))
        return f"{_column(c, ndim)} = {tokens[c]} is below -0.01 (Ultralytics rejects the image)"
    if code == _BOX:
        c = 3 + int(v32[3] >= 0)
        return f"{_column(c, ndim)} = {tokens[c]}: expected a box size >= 0"
    c = 7 + 3 * int(np.argmax(~np.isin(row[7::3], (0, 1, 2))))
    return f"{_column(c, ndim)} = {tokens[c]}: expected a visibility 0, 1 or 2"


def _column(c: int, ndim: int) -> str:
    if c < 5:
        return ("class", "box x", "box y", "box width", "box height")[c]
    i, part = divmod(c - 5, ndim)
    return f"keypoint {i} {'xyv'[part]}"


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
