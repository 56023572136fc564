"""The columnar core: image records and keypoint instances as numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .layouts import Layout

Ids = npt.NDArray[np.object_]


def _column(value: object, dtype: type, shape: tuple[int | None, ...], name: str) -> np.ndarray:
    try:
        given = np.asarray(value)
        with np.errstate(invalid="ignore"):  # NaN into an integer column: refused just below
            arr = np.asarray(given, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected numbers ({exc})") from None
    if arr.dtype.kind in "iu" and given.dtype.kind == "f":
        bad = given != arr  # a fraction (or NaN) cast to an integer column would be lost silently
        if bad.any():
            raise ValueError(f"{name}: expected integers, got {given[bad].flat[0]:g}")
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=True)):
        dims = ["?" if s is None else str(s) for s in shape]
        expected = f"({dims[0]},)" if len(dims) == 1 else "(" + ", ".join(dims) + ")"
        raise ValueError(f"{name}: expected shape {expected}, got {arr.shape}")
    if arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr


def _objects(values: object, n: int, name: str) -> Ids:
    if isinstance(values, np.ndarray) and values.shape == (n,) and values.dtype.kind in "Oiu":
        # already one object per row (share it), or integers (as Python ints, which JSON writers take)
        arr = values.view() if values.dtype == object else values.astype(object)
        arr.flags.writeable = False
        return arr
    if isinstance(values, str | bytes):
        raise ValueError(f"{name}: expected a sequence of {n} entries, got a {type(values).__name__}")
    arr = np.empty(n, dtype=object)
    if isinstance(values, np.ndarray) and values.dtype != object:
        values = values.tolist()  # plain Python ints and strs, which JSON writers take
    seq = list(values)  # type: ignore[call-overload]
    if len(seq) != n:
        raise ValueError(f"{name}: expected {n} entries, got {len(seq)}")
    arr[:] = seq
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class Images:
    """Image records, one row per image.

    Attributes:
        ids: (M,) original image ids (int or str).
        file_names: (M,) file names as written in the source.
        widths: (M,) float64 widths, NaN where unknown.
        heights: (M,) float64 heights, NaN where unknown.
        extra: (M,) the other fields of each record as JSON object members (`b'"url":"..."'`), passed through.
    """

    ids: Ids
    file_names: Ids
    widths: npt.NDArray[np.float64]
    heights: npt.NDArray[np.float64]
    extra: Ids

    def __post_init__(self) -> None:
        n = len(self.ids)
        object.__setattr__(self, "ids", _objects(self.ids, n, "ids"))
        object.__setattr__(self, "file_names", _objects(self.file_names, n, "file_names"))
        object.__setattr__(self, "widths", _column(self.widths, np.float64, (n,), "widths"))
        object.__setattr__(self, "heights", _column(self.heights, np.float64, (n,), "heights"))
        object.__setattr__(self, "extra", _objects(self.extra, n, "extra"))

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> Images:
        return cls(ids=[], file_names=[], widths=[], heights=[], extra=[])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Images):
            return NotImplemented
        return (
            list(self.ids) == list(other.ids)
            and list(self.file_names) == list(other.file_names)
            and np.array_equal(self.widths, other.widths, equal_nan=True)
            and np.array_equal(self.heights, other.heights, equal_nan=True)
            and list(self.extra) == list(other.extra)
        )


@dataclass(frozen=True, eq=False)
class Instances:
    """Keypoint instances (annotations), one row per person.

    Attributes:
        keypoints: (N, K, 3) float64 `x, y, v` triplets.
        boxes: (N, 4) float64 `[x, y, w, h]`.
        areas: (N,) float64, NaN where the source has none.
        iscrowd: (N,) int64 0 or 1.
        image_index: (N,) int64 row of each instance's image in the matching `Images`.
        ids: (N,) original annotation ids (int or str).
        num_keypoints: (N,) int64 `num_keypoints` as read, -1 where absent (outputs recompute it).
        extra: (N,) other fields of each annotation as JSON object members, passed through.
    """

    keypoints: npt.NDArray[np.float64]
    boxes: npt.NDArray[np.float64]
    areas: npt.NDArray[np.float64]
    iscrowd: npt.NDArray[np.int64]
    image_index: npt.NDArray[np.int64]
    ids: Ids
    num_keypoints: npt.NDArray[np.int64]
    extra: Ids

    def __post_init__(self) -> None:
        try:
            kp = np.asarray(self.keypoints, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"keypoints: expected numbers ({exc})") from None
        if kp.ndim != 3 or kp.shape[2] != 3:
            raise ValueError(f"keypoints: expected shape (N, K, 3), got {kp.shape}")
        n = kp.shape[0]
        object.__setattr__(self, "keypoints", _column(kp, np.float64, (n, None, 3), "keypoints"))
        object.__setattr__(self, "boxes", _column(self.boxes, np.float64, (n, 4), "boxes"))
        object.__setattr__(self, "areas", _column(self.areas, np.float64, (n,), "areas"))
        object.__setattr__(self, "iscrowd", _column(self.iscrowd, np.int64, (n,), "iscrowd"))
        object.__setattr__(self, "image_index", _column(self.image_index, np.int64, (n,), "image_index"))
        object.__setattr__(
            self, "num_keypoints", _column(self.num_keypoints, np.int64, (n,), "num_keypoints")
        )
        object.__setattr__(self, "ids", _objects(self.ids, n, "ids"))
        object.__setattr__(self, "extra", _objects(self.extra, n, "extra"))

    def __len__(self) -> int:
        return self.keypoints.shape[0]

    @property
    def k(self) -> int:
        """Keypoints per instance."""
        return self.keypoints.shape[1]

    @classmethod
    def empty(cls, k: int) -> Instances:
        """No instances, keeping the width K."""
        return cls(
            keypoints=np.zeros((0, k, 3)),
            boxes=np.zeros((0, 4)),
            areas=[],
            iscrowd=[],
            image_index=[],
            ids=[],
            num_keypoints=[],
            extra=[],
        )

    def __getitem__(self, index: slice | npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> Instances:
        """Rows chosen by a slice, a boolean mask or an index array."""
        return Instances(
            keypoints=self.keypoints[index],
            boxes=self.boxes[index],
            areas=self.areas[index],
            iscrowd=self.iscrowd[index],
            image_index=self.image_index[index],
            ids=self.ids[index],
            num_keypoints=self.num_keypoints[index],
            extra=self.extra[index],
        )

    def with_keypoints(self, keypoints: npt.NDArray[np.float64]) -> Instances:
        """The same instances with other keypoints (any K)."""
        return replace(self, keypoints=keypoints)

    def labelled_counts(self) -> npt.NDArray[np.int64]:
        """(N,) count of keypoints with v > 0: the `num_keypoints` that outputs write."""
        return np.count_nonzero(self.keypoints[:, :, 2] > 0, axis=1).astype(np.int64)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Instances):
            return NotImplemented
        return (
            self.keypoints.shape == other.keypoints.shape
            and np.array_equal(self.keypoints, other.keypoints, equal_nan=True)
            and np.array_equal(self.boxes, other.boxes, equal_nan=True)
            and np.array_equal(self.areas, other.areas, equal_nan=True)
            and np.array_equal(self.iscrowd, other.iscrowd)
            and np.array_equal(self.image_index, other.image_index)
            and np.array_equal(self.num_keypoints, other.num_keypoints)
            and list(self.ids) == list(other.ids)
            and list(self.extra) == list(other.extra)
        )


@dataclass(frozen=True)
class Problem:
    """A problem a reader with a recording sink (`strict=False`, `kpmerge.inspect`) found, not raised.

    Attributes:
        kind: Short name, e.g. `duplicate_annotation_id`.
        severity: `error`, `warning` or `info`.
        count: How many records (annotations or images) have it.
        examples: The ids of the first few such records.
        message: One sentence for people.
    """

    kind: str
    severity: str
    count: int
    examples: tuple[Any, ...] = ()
    message: str = ""


@dataclass(frozen=True, eq=False)
class Dataset:
    """What a reader returns: images, instances and what the file says about its keypoints.

    Attributes:
        images: The image records.
        instances: The person instances, in file order.
        keypoint_names: The category's keypoint names, or None when the file has none.
        format: The format read (`coco`, `aic`).
        skipped: Annotations read but not kept, by reason (e.g. `other_category`).
        notes: Remarks for the user, e.g. that image sizes are unknown.
        problems: What a reader with a recording sink (`strict=False`) found instead of raising.
        layout: The layout the input itself defines (a YOLO dataset yaml), or None.
    """

    images: Images
    instances: Instances
    keypoint_names: tuple[str, ...] | None = None
    format: str = "coco"
    skipped: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    layout: Layout | None = None

    @property
    def annotations_read(self) -> int:
        """Every annotation in the file: kept ones plus skipped ones."""
        return len(self.instances) + sum(self.skipped.values())
