"""Left/right checks on keypoint data (SPEC 8): facing statistics and crossed-limb statistics.

A mapping that swaps every left and right keypoint, or a dataset labelled from the viewer's side, passes
every check of the mapping (swapping all sides commutes with flipping); only the coordinates show it.
Both statistics are reductions over the (N, K, 3) keypoint array and need no images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .formats.checks import problem
from .instances import Problem
from .layouts import Layout, normalize_name

MIN_INSTANCES = 20
"""A pair or link is judged only when at least this many instances count for it."""
THRESHOLD = 0.5
"""Shares below this fail: correct data is well above one half."""
EXAMPLES = 5

KINDS: dict[str, tuple[str, str]] = {
    "left_right_swapped": (
        "warning",
        f"most left/right pairs of front-facing people (nose and both eyes or ears labelled; pairs with "
        f"at least {MIN_INSTANCES}) have x(left) > x(right) in under half of them: sides labelled from "
        f"the viewer's side or swapped by the mapping (count: pairs)",
    ),
    "limb_crossed": (
        "warning",
        f"links between same-side keypoints shorter than the link to the other side's partner in under "
        f"half of at least {MIN_INSTANCES} instances: swapped keypoints (count: links)",
    ),
}


@dataclass(frozen=True)
class Facing:
    """One left/right pair among front-facing instances.

    Attributes:
        pair: Left and right keypoint names.
        front_facing: Front-facing instances with both ends labelled.
        agree: Those with x(left) > x(right) (the person's left on the image's right).
    """

    pair: tuple[str, str]
    front_facing: int
    agree: int

    @property
    def rate(self) -> float | None:
        return round(self.agree / self.front_facing, 4) if self.front_facing else None

    @property
    def failed(self) -> bool:
        return self.front_facing >= MIN_INSTANCES and self.agree / self.front_facing < THRESHOLD


@dataclass(frozen=True)
class Limb:
    """One link between two keypoints of the same side.

    Attributes:
        link: Start and end keypoint names.
        counted: Instances with the start, the end and the end's partner labelled.
        consistent: Those where the link is shorter than start to the end's partner.
    """

    link: tuple[str, str]
    counted: int
    consistent: int

    @property
    def rate(self) -> float | None:
        return round(self.consistent / self.counted, 4) if self.counted else None

    @property
    def failed(self) -> bool:
        return self.counted >= MIN_INSTANCES and self.consistent / self.counted < THRESHOLD


@dataclass(frozen=True)
class LeftRight:
    """Both statistics of one file or source: one entry per left/right pair and per same-side link."""

    facing: tuple[Facing, ...] = ()
    limbs: tuple[Limb, ...] = ()

    @property
    def swapped(self) -> bool:
        """Most judged pairs fail (`left_right_swapped`)."""
        judged = [f for f in self.facing if f.front_facing >= MIN_INSTANCES]
        return 2 * sum(f.failed for f in judged) > len(judged)

    def problems(self, label: str = "") -> list[Problem]:
        """`left_right_swapped` (naming the failed pairs) and `limb_crossed` (naming the links).

        Args:
            label: Put before each example (`coco: left_eye/right_eye`), for the sources of an output.
        """
        lead = f"{label}: " if label else ""
        found = []
        if self.swapped:
            found.append(("left_right_swapped", [lead + "/".join(f.pair) for f in self.facing if f.failed]))
        crossed = [lead + "-".join(limb.link) for limb in self.limbs if limb.failed]
        if crossed:
            found.append(("limb_crossed", crossed))
        return [problem(kind, len(names), names, KINDS[kind][1], KINDS[kind][0]) for kind, names in found]

    def to_dict(self) -> dict[str, Any]:
        """The `left_right` member of `kpmerge inspect --json`."""
        return {
            "facing": [
                {"pair": list(f.pair), "front_facing": f.front_facing, "agree": f.agree, "rate": f.rate}
                for f in self.facing
            ],
            "limbs": [
                {"link": list(m.link), "counted": m.counted, "consistent": m.consistent, "rate": m.rate}
                for m in self.limbs
            ],
        }


def side(name: str) -> str:
    """`left`, `right` or `""` from a keypoint name (`left_elbow`, `Right Knee`, `l_hip`)."""
    parts = normalize_name(name).split("_")
    for s in ("left", "right"):
        if s in parts or parts[0] == s[0]:
            return s
    return ""


def sided_pairs(layout: Layout) -> list[tuple[int, int]]:
    """(left, right) index pairs: the layout's flip partners with a left and a right name; a layout
    without flip partners pairs `left_X` with `right_X` by name."""
    names = layout.keypoints
    sides = [side(n) for n in names]
    partners = [(i, j) for i, j in layout.flip_pairs]
    if not partners:
        index = {normalize_name(n): i for i, n in enumerate(names)}
        for i, n in enumerate(names):
            other = normalize_name(n).replace("left", "right", 1)
            if sides[i] == "left" and other in index:
                partners.append((i, index[other]))
    pairs = []
    for i, j in partners:
        if {sides[i], sides[j]} == {"left", "right"}:
            pairs.append((i, j) if sides[i] == "left" else (j, i))
    return sorted(pairs)


def left_right(keypoints: npt.NDArray[np.float64], layout: Layout) -> LeftRight:
    """Facing and crossed-limb statistics of (N, K, 3) keypoints in `layout` (SPEC 8).

    Facing: instances whose nose and both eyes, or both ears, are labelled face the camera; per
    left/right pair with both ends labelled, how many of them have x(left) > x(right). Crossed limbs:
    per skeleton link between two keypoints of the same side (start A, end B with partner B'), among
    instances with A, B and B' labelled, how many have |AB| < |AB'|. Keypoints without pixel coordinates
    (NaN: a YOLO dataset whose image sizes are unknown) count as unlabelled here.
    """
    names = layout.keypoints
    pairs = sided_pairs(layout)
    partner = {i: j for p in pairs for i, j in (p, p[::-1])}
    sides = [side(n) for n in names]
    x, y = keypoints[:, :, 0], keypoints[:, :, 1]
    labelled = pixel_labelled(keypoints)
    facing: tuple[Facing, ...] = ()
    front = _front(labelled, names)
    if front is not None and pairs:
        left, right = np.array(pairs).T
        both = front[:, None] & labelled[:, left] & labelled[:, right]
        counted = np.count_nonzero(both, axis=0).tolist()
        agree = np.count_nonzero(both & (x[:, left] > x[:, right]), axis=0).tolist()
        facing = tuple(
            Facing((names[i], names[j]), c, a) for (i, j), c, a in zip(pairs, counted, agree, strict=True)
        )
    links = [
        (a, b, partner[b])
        for a, b in layout.skeleton_ids
        if sides[a] and sides[a] == sides[b] and b in partner
    ]
    limbs: tuple[Limb, ...] = ()
    if links:
        a, b, c = np.array(links).T
        ok = labelled[:, a] & labelled[:, b] & labelled[:, c]
        xa, ya = x[:, a], y[:, a]
        same = np.square(xa - x[:, b]) + np.square(ya - y[:, b])  # squared lengths compare as lengths do
        other = np.square(xa - x[:, c]) + np.square(ya - y[:, c])
        counted = np.count_nonzero(ok, axis=0).tolist()
        consistent = np.count_nonzero(ok & (same < other), axis=0).tolist()
        limbs = tuple(
            Limb((names[i], names[j]), n, m)
            for (i, j, _), n, m in zip(links, counted, consistent, strict=True)
        )
    return LeftRight(facing, limbs)


def pixel_labelled(keypoints: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """(N, K) labelled keypoints (v > 0) whose pixel coordinates are known (finite x and y)."""
    return (keypoints[:, :, 2] > 0) & np.isfinite(keypoints[:, :, 0]) & np.isfinite(keypoints[:, :, 1])


def _front(labelled: npt.NDArray[np.bool_], names: Sequence[str]) -> npt.NDArray[np.bool_] | None:
    """(N,) instances facing the camera (nose and both eyes, or both ears, labelled); None without a nose."""
    index = {normalize_name(n): i for i, n in enumerate(names)}
    if "nose" not in index:
        return None
    front = np.zeros(labelled.shape[0], dtype=bool)
    for part in ("eye", "ear"):
        ends = [index.get(f"{s}_{part}") for s in ("left", "right")]
        if None not in ends:
            front |= labelled[:, ends[0]] & labelled[:, ends[1]]
    return labelled[:, index["nose"]] & front


def table(columns: Sequence[tuple[str, LeftRight]]) -> list[list[str]]:
    """Rows of a text table: one per pair and link counted in any column, cells `rate (n)` per column."""
    rows = [["left/right check", *(label for label, _ in columns)]]
    keys: dict[tuple[str, tuple[str, str]], None] = {}
    cells: dict[tuple[str, tuple[str, str], int], str] = {}
    for c, (_, lr) in enumerate(columns):
        for kind, entries in (("facing", lr.facing), ("limb", lr.limbs)):
            for e in entries:
                names = e.pair if isinstance(e, Facing) else e.link
                n = e.front_facing if isinstance(e, Facing) else e.counted
                if n:
                    keys.setdefault((kind, names))
                    cells[kind, names, c] = f"{100 * (e.rate or 0.0):.1f}% of {n}"
    for kind, (a, b) in keys:
        label = f"facing {a}/{b}" if kind == "facing" else f"limb {a}-{b}"
        rows.append([label, *(cells.get((kind, (a, b), c), "-") for c in range(len(columns)))])
    return rows
