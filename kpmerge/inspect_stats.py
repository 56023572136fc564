"""Statistics and problems of one Dataset (`kpmerge inspect`): array reductions over its `Instances`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import KpmergeError, UsageError
from .formats import default_layout
from .formats.checks import mask_problem
from .inspect_report import BOX_MARGIN, KINDS, SEVERITIES, FileReport, KeypointCounts
from .instances import Dataset, Problem
from .layouts import Layout, detect_layout, layout_from_dict, load_layout
from .leftright import LeftRight, left_right
from .pools import trainable_mask


def inspect_dataset(dataset: Dataset, path: str = "", layout: Layout | None = None) -> FileReport:
    """Statistics and problems of one Dataset (read with `strict=False` to see the readers' problems)."""
    inst = dataset.instances
    notes = list(dataset.notes)
    lay = layout if layout is not None else _detect(dataset, notes)
    if lay is not None and len(lay) != inst.k and len(inst):
        raise UsageError(f"layout {lay.name} has {len(lay)} keypoints but the file has {inst.k}", file=path)
    names = _names(dataset, lay)
    layout_obj = lay if lay is not None else _names_layout(names)
    sides = left_right(inst.keypoints, layout_obj) if layout_obj is not None else LeftRight()
    problems = list(dataset.problems) + check_instances(dataset) + sides.problems()
    trainable, crowd = pool_masks(dataset)
    return FileReport(
        path=path,
        format=dataset.format,
        layout=lay.name if lay is not None and lay.name != "" else None,
        images=len(dataset.images),
        annotations=len(inst),
        trainable=int(np.count_nonzero(trainable)),
        crowd=int(np.count_nonzero(crowd)),
        keypoints=keypoint_counts(inst.keypoints, names),
        problems=sorted_problems(problems),
        notes=tuple(notes),
        layout_obj=layout_obj,
        left_right=sides,
    )


def keypoint_counts(
    keypoints: npt.NDArray[np.float64], names: Sequence[str], defined: Sequence[bool] | None = None
) -> tuple[KeypointCounts, ...]:
    """Per keypoint labelled / visible / occluded / unlabelled counts of (N, K, 3) keypoints."""
    v = keypoints[:, :, 2]
    labelled = np.count_nonzero(v > 0, axis=0).tolist()
    visible = np.count_nonzero(v == 2, axis=0).tolist()
    occluded = np.count_nonzero(v == 1, axis=0).tolist()
    unlabelled = np.count_nonzero(v == 0, axis=0).tolist()
    return tuple(
        KeypointCounts(
            name=n,
            labelled=labelled[i],
            visible=visible[i],
            occluded=occluded[i],
            unlabelled=unlabelled[i],
            defined=None if defined is None else bool(defined[i]),
        )
        for i, n in enumerate(names)
    )


def check_instances(dataset: Dataset, margin: float = BOX_MARGIN) -> list[Problem]:
    """The problems `inspect` finds in valid-looking data (the readers find the rest); see KINDS."""
    inst, images = dataset.instances, dataset.images
    ids = inst.ids
    kp = inst.keypoints
    x, y, v = kp[:, :, 0], kp[:, :, 1], kp[:, :, 2]
    labelled = v > 0
    zero = (x == 0) & (y == 0)
    bx, by, bw, bh = (inst.boxes[:, i : i + 1] for i in range(4))
    counted = labelled & ~zero
    with np.errstate(invalid="ignore"):
        outside_box = (
            counted
            & (bw > 0)
            & (bh > 0)
            & (
                (x < bx - margin * bw)
                | (x > bx + bw + margin * bw)
                | (y < by - margin * bh)
                | (y > by + bh + margin * bh)
            )
        )
        row = np.maximum(inst.image_index, 0)
        has_image = inst.image_index >= 0
        width = np.where(has_image, images.widths[row] if len(images) else np.nan, np.nan)[:, None]
        height = np.where(has_image, images.heights[row] if len(images) else np.nan, np.nan)[:, None]
        outside_image = counted & ((x < 0) | (y < 0) | (x > width) | (y > height))
    nk = inst.num_keypoints
    found = [
        ("num_keypoints_mismatch", (nk >= 0) & (nk != np.count_nonzero(labelled, axis=1)), ids),
        ("outside_box", outside_box.any(axis=1), ids),
        ("outside_image", outside_image.any(axis=1), ids),
        ("zero_labelled", (labelled & zero).any(axis=1), ids),
        (
            "unlabelled_with_coordinates",
            ((v == 0) & ~zero & np.isfinite(x) & np.isfinite(y)).any(axis=1),
            ids,
        ),
        ("empty_box", ((inst.boxes[:, 2] == 0) | (inst.boxes[:, 3] == 0)), ids),
    ]
    per_image = np.bincount(inst.image_index[inst.image_index >= 0], minlength=len(images))
    found.append(("images_without_annotations", per_image == 0, images.ids))
    return [problem(kind, mask, where) for kind, mask, where in found if mask.any()]


def problem(kind: str, mask: npt.NDArray[np.bool_], ids: Sequence[Any]) -> Problem:
    """A Problem of a known kind for the records where `mask` is true: count and first few ids."""
    severity, message = KINDS[kind]
    return mask_problem(kind, mask, ids, message, severity)


def sorted_problems(problems: list[Problem]) -> tuple[Problem, ...]:
    """The problems by severity, errors first (stable)."""
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return tuple(sorted(problems, key=lambda p: order.get(p.severity, len(order))))


def pool_masks(dataset: Dataset) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Trainable (what MMPose 1.3 keeps in top-down mode, `kpmerge.pools`) and crowd masks."""
    inst = dataset.instances
    if dataset.format not in ("coco", "coco_wholebody"):
        # Not a COCO file: num_keypoints is what kpmerge would write, the count of v > 0.
        inst = replace(inst, num_keypoints=inst.labelled_counts())
    images = dataset.images
    return trainable_mask(inst, images.widths, images.heights), inst.iscrowd > 0


def _detect(dataset: Dataset, notes: list[str]) -> Layout | None:
    k = dataset.instances.k
    if dataset.layout is not None:
        return dataset.layout
    fixed = default_layout(dataset.format)
    if fixed is not None:
        return load_layout(fixed)
    names = list(dataset.keypoint_names) if dataset.keypoint_names else None
    if names is not None and len(names) != k and len(dataset.instances):
        names = None
    try:
        return detect_layout(names, k)
    except KpmergeError as exc:
        notes.append(f"layout: {exc.message}")
        return None


def _names(dataset: Dataset, layout: Layout | None) -> tuple[str, ...]:
    k = dataset.instances.k
    if dataset.keypoint_names and len(dataset.keypoint_names) == k:
        return tuple(dataset.keypoint_names)
    if layout is not None:
        return layout.keypoints
    return tuple(f"kp{i}" for i in range(k))


def _names_layout(names: Sequence[str]) -> Layout | None:
    """A names-only layout, so that name overlap and mappings work for unknown layouts."""
    k = len(names)
    try:
        return layout_from_dict(
            {"name": "", "keypoints": list(names), "joint_weights": [1.0] * k, "sigmas": [0.05] * k}
        )
    except KpmergeError:
        return None
