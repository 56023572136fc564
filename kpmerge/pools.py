"""The trainable pool: exactly the instances MMPose 1.3 keeps in top-down mode (SPEC 6).

MMPose's `BaseCocoStyleDataset` clips each box to `[0, width-1] x [0, height-1]` and keeps the
corners and the keypoints' x, y in float32 (`parse_data_info`), then keeps an instance when it is not
crowd, its `num_keypoints` (as the file has it) is not 0, the clipped box has positive width and
height, and the largest keypoint coordinate (x and y, not v) is above 0 (`_is_valid_instance`).
The manifest's pools, the sampler over them and `kpmerge inspect`'s trainable count all use this one
rule, so a sampler never meets an instance the trainer dropped.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .instances import Instances


def trainable_mask(
    instances: Instances, widths: npt.NDArray[np.float64], heights: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """(N,) True for the instances MMPose 1.3's top-down COCO-style dataset keeps.

    Args:
        instances: The instances; `num_keypoints` as the file has it, -1 where absent (MMPose then
            counts the keypoints whose larger coordinate is not 0).
        widths: (M,) width of each image `instances.image_index` points into; NaN where unknown.
        heights: (M,) height of each image; NaN where unknown.

    Returns:
        The mask. An instance whose image is unknown (`image_index` -1) is not trainable; where an
        image's size is unknown, its boxes are clipped at 0 only (MMPose cannot load such a file).
    """
    n = len(instances)
    kp = instances.keypoints
    if n == 0 or kp.shape[1] == 0:
        return np.zeros(n, dtype=bool)
    has_image = instances.image_index >= 0
    row = np.where(has_image, instances.image_index, 0)
    w = widths[row] if len(widths) else np.full(n, np.nan)
    h = heights[row] if len(heights) else np.full(n, np.nan)
    x, y, bw, bh = instances.boxes.T
    x_max = np.where(np.isnan(w), np.inf, w - 1)
    y_max = np.where(np.isnan(h), np.inf, h - 1)
    # np.clip in float64, then MMPose stores corners and keypoints as float32 (values beyond its
    # range become +-inf there too, so the overflow is part of the rule, not an accident).
    with np.errstate(over="ignore"):
        x1 = np.minimum(np.maximum(x, 0), x_max).astype(np.float32)
        y1 = np.minimum(np.maximum(y, 0), y_max).astype(np.float32)
        x2 = np.minimum(np.maximum(x + bw, 0), x_max).astype(np.float32)
        y2 = np.minimum(np.maximum(y + bh, 0), y_max).astype(np.float32)
        # the larger of x, y of each keypoint in float32 (rounding keeps order: the max may come first)
        top = np.maximum(kp[:, :, 0], kp[:, :, 1]).astype(np.float32)
    num = instances.num_keypoints
    absent = num < 0
    if absent.any():
        num = np.where(absent, np.count_nonzero(top, axis=1), num)
    return (
        has_image
        & (instances.iscrowd == 0)
        & (top.max(axis=1) > 0)
        & (num != 0)
        & (x2 - x1 > 0)
        & (y2 - y1 > 0)
    )
