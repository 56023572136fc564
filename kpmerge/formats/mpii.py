"""MPII Human Pose in MMPose's JSON form (a list of per-person records): read and write.

A record is `{"image", "center": [cx, cy], "scale": s, "joints": [[x, y]] * 16, "joints_vis": [0 | 1] * 16}`
with `scale` in units of 200 px and coordinates as in the MATLAB annotations (1-based). The reader keeps
the file's coordinates as they are; the built-in `mpii` layout has `"origin": 1`, so a merge or combine
shifts them to 0-based (see `kpmerge.job.load_source`).

Box rule (MMPose 1.x `MpiiDataset`, the convention followed here): the centre moves down by 15 px per
unit of scale (`cy + 15 * s`, only when `cx != -1`) and the box is the square of side `200 * s` around
it: `[cx - 100 s, cy + 15 s - 100 s, 200 s, 200 s]`. MMPose 1.x then subtracts 1 from the centre but
not from the joints; kpmerge subtracts the origin from both (as MMPose 0.x did), so box and joints
stay in one frame. Keypoints: `joints_vis` 1 -> `(x, y, 2)`, 0 -> `(0, 0, 0)`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import KpmergeError
from ..imagesize import folder_sizes
from ..instances import Dataset, Images, Instances
from ..jsonio import Raw, content_start, decode, decode_column, first_char, read_bytes
from ..jsonwrite import key_bytes, members, no_gc

K = 16
RECORD_FIELDS = frozenset({"image", "center", "scale", "joints", "joints_vis"})
PIXEL_STD = 200.0
"""MPII scales are box sizes divided by 200 px."""
CENTER_SHIFT = 15.0
"""Pixels per unit of scale that MMPose moves the centre down before cutting the box."""
_DIGITS = 9
"""Centre and scale are written rounded to this many decimals (undoes float error of the box rule)."""


def sniff_mpii(data: bytes) -> bool:
    """Whether the content looks like MMPose's MPII JSON: a list of records with `joints` and `joints_vis`."""
    start = content_start(data)
    head = data[start : start + 65536]
    return first_char(data) == "[" and b'"joints_vis"' in head and b'"joints"' in head


def read_mpii(path: str | Path, image_dir: str | Path | None = None) -> Dataset:
    """Read an MMPose MPII JSON file; image sizes come from `image_dir` when given.

    Raises:
        KpmergeError: naming the file and JSON path of the first problem.
    """
    return mpii_to_dataset(read_bytes(path), file=path, image_dir=image_dir)


def mpii_to_dataset(
    data: bytes, file: str | Path | None = None, image_dir: str | Path | None = None, strict: bool = True
) -> Dataset:
    """Parse MMPose MPII JSON bytes into a Dataset in the 16-keypoint mpii layout (file coordinates).

    Image ids and file names are the `image` values (one image per distinct name, in first-seen
    order); annotation ids are the records' 0-based positions in the file. Every MPII rule leaves
    nothing to read when broken, so `strict=False` records none of them: they raise either way.

    Raises:
        KpmergeError: naming the file and JSON path of the first problem.
    """
    del strict  # accepted like every converter's; see above
    with no_gc():
        records = decode(data, list[dict[str, Raw]], file)
        for i, rec in enumerate(records):
            for key in ("image", "center", "scale", "joints", "joints_vis"):
                if key not in rec:
                    raise KpmergeError(f"missing `{key}`", file, f"$[{i}].{key}")
        names = decode_column([r["image"] for r in records], str, file, "", "image")
        centers = decode_column([r["center"] for r in records], tuple[float, float], file, "", "center")
        scales = decode_column([r["scale"] for r in records], float, file, "", "scale")
        joints = decode_column([r["joints"] for r in records], list[tuple[float, float]], file, "", "joints")
        vis = decode_column([r["joints_vis"] for r in records], list[float], file, "", "joints_vis")
        n = len(records)
        for i in range(n):
            for field, values in (("joints", joints[i]), ("joints_vis", vis[i])):
                if len(values) != K:
                    raise KpmergeError(f"expected {K} entries, got {len(values)}", file, f"$[{i}].{field}")
        xy = np.array(joints, dtype=np.float64).reshape(n, K, 2)
        v = np.array(vis, dtype=np.float64).reshape(n, K)
        center = np.array(centers, dtype=np.float64).reshape(n, 2)
        scale = np.array(scales, dtype=np.float64).reshape(n)
        _check_values(xy, v, center, scale, file)
        labelled = v == 1
        kp = np.zeros((n, K, 3), dtype=np.float64)
        kp[:, :, :2] = np.where(labelled[:, :, None], xy, 0.0)
        kp[:, :, 2] = np.where(labelled, 2.0, 0.0)
        row: dict[str, int] = {}
        image_index = np.array([row.setdefault(name, len(row)) for name in names], dtype=np.int64)
        image_names = list(row)
        cache: dict[str, bytes] = {}
        instances = Instances(
            keypoints=kp,
            boxes=center_scale_to_box(center, scale),
            areas=np.full(n, np.nan),
            iscrowd=np.zeros(n, dtype=np.int64),
            image_index=image_index,
            ids=list(range(n)),
            num_keypoints=np.full(n, -1),
            extra=[members(r, RECORD_FIELDS, cache) for r in records],
        )
        widths, heights, notes = folder_sizes(image_dir, image_names, "MPII files")
        images = Images(
            ids=image_names,
            file_names=image_names,
            widths=widths,
            heights=heights,
            extra=[b""] * len(image_names),
        )
    return Dataset(images=images, instances=instances, keypoint_names=None, format="mpii", notes=notes)


def center_scale_to_box(center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(N, 4) `[x, y, w, h]` boxes from (N, 2) MPII centres and (N,) scales (the module's box rule)."""
    side = scale * PIXEL_STD
    cy = center[:, 1] + np.where(center[:, 0] != -1, CENTER_SHIFT * scale, 0.0)
    return np.stack([center[:, 0] - side / 2, cy - side / 2, side, side], axis=1)


def box_to_center_scale(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MPII centres (N, 2) and scales (N,) of `[x, y, w, h]` boxes: the inverse of the box rule.

    A box that is not square gets the scale of its longer side.
    """
    scale = np.maximum(boxes[:, 2], boxes[:, 3]) / PIXEL_STD
    cx = boxes[:, 0] + boxes[:, 2] / 2
    cy = boxes[:, 1] + boxes[:, 3] / 2 - np.where(cx != -1, CENTER_SHIFT * scale, 0.0)
    return np.stack([cx, cy], axis=1), scale


def _check_values(
    xy: np.ndarray, v: np.ndarray, center: np.ndarray, scale: np.ndarray, file: str | Path | None
) -> None:
    for arr, field in ((xy, "joints"), (center[:, None, :], "center")):
        bad = ~np.isfinite(arr)
        if bad.any():
            i, k, c = (int(x) for x in np.argwhere(bad)[0])
            where = f"$[{i}].joints[{k}][{c}]" if field == "joints" else f"$[{i}].center[{c}]"
            raise KpmergeError(f"expected a finite number, got {arr[i, k, c]}", file, where)
    bad_v = (v != 0) & (v != 1)
    if bad_v.any():
        i, k = (int(x) for x in np.argwhere(bad_v)[0])
        raise KpmergeError(f"expected 0 or 1, got {v[i, k]:g}", file, f"$[{i}].joints_vis[{k}]")
    bad_s = ~(np.isfinite(scale) & (scale > 0))
    if bad_s.any():
        i = int(np.argmax(bad_s))
        raise KpmergeError(f"expected a scale > 0, got {scale[i]:g}", file, f"$[{i}].scale")


def write_mpii(dataset: Dataset, path: str | Path) -> None:
    """Write a Dataset in the mpii layout as MMPose MPII JSON."""
    Path(path).write_bytes(dataset_to_mpii(dataset))


def dataset_to_mpii(dataset: Dataset) -> bytes:
    """MMPose MPII JSON bytes for a Dataset in the mpii layout (the inverse of `mpii_to_dataset`).

    One record per instance, `image` = its image's file name. Labelled keypoints (v 1 or 2) get
    `joints_vis` 1, others `[-1, -1]` and 0 (MPII cannot tell occluded from visible). Centre and
    scale come from the box by the inverse box rule, rounded to 9 decimals.
    """
    import orjson

    inst, images = dataset.instances, dataset.images
    if inst.k != K:
        raise KpmergeError(f"MPII holds {K} keypoints per person, got {inst.k}")
    labelled = inst.keypoints[:, :, 2] > 0
    xy = np.where(labelled[:, :, None], inst.keypoints[:, :, :2], -1.0)
    center, scale = box_to_center_scale(inst.boxes)
    names = images.file_names
    cache: dict[str, bytes] = {}
    k_joints_vis, k_joints, k_image, k_scale, k_center = (
        key_bytes(x, cache) for x in ("joints_vis", "joints", "image", "scale", "center")
    )
    out = []
    for j, i in enumerate(inst.image_index.tolist()):
        parts = [
            k_joints_vis + orjson.dumps(labelled[j].astype(np.int64).tolist()),
            k_joints + orjson.dumps(xy[j].tolist()),
            k_image + orjson.dumps(str(names[i])),
            k_scale + orjson.dumps(round(float(scale[j]), _DIGITS)),
            k_center + orjson.dumps([round(float(c), _DIGITS) for c in center[j]]),
        ]
        if inst.extra[j]:
            parts.append(inst.extra[j])
        out.append(b"{" + b", ".join(parts) + b"}")
    return b"[" + b",\n".join(out) + b"]\n"
