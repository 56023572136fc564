"""What `kpmerge inspect` reports: the problem kinds, the report types and their JSON (`--json`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .instances import Problem
from .layouts import Layout
from .leftright import KINDS as LEFT_RIGHT_KINDS
from .leftright import LeftRight

BOX_MARGIN = 0.1
"""A labelled keypoint is `outside_box` when it lies beyond the box by more than this share of the box's
width (left, right) or height (top, bottom)."""
EXAMPLES = 5
"""How many example ids a problem keeps."""
SEVERITIES = ("error", "warning", "info")
OUTPUT_FORMAT = "kpmerge_output"
"""The `format` of a kpmerge output folder."""

# kind -> (severity, message); reader kinds come from the readers' recording sink (kpmerge.formats).
KINDS: dict[str, tuple[str, str]] = {
    "duplicate_image_id": ("error", "images whose id appeared before"),
    "duplicate_annotation_id": ("error", "annotations whose id appeared before"),
    "missing_image": ("error", "annotations whose image_id is not in images"),
    "unknown_category": ("error", "annotations whose category_id names no category"),
    "bad_visibility": ("error", "annotations with visibility values other than 0, 1, 2"),
    "negative_box": ("error", "boxes with a negative width or height"),
    "k_mismatch": ("error", "keypoint count differs from the category's keypoint names"),
    "manifest_mismatch": ("error", "manifest.json does not match annotations.json"),
    "num_keypoints_mismatch": ("warning", "num_keypoints differs from the count of v > 0"),
    "outside_box": (
        "warning",
        f"labelled keypoints beyond the box by more than {BOX_MARGIN:.0%} of its size",
    ),
    "outside_image": (
        "warning",
        "labelled keypoints outside the image (x < 0, y < 0, x > width, y > height)",
    ),
    "zero_labelled": ("warning", "keypoints at (0, 0) with v > 0"),
    "unlabelled_with_coordinates": ("warning", "keypoints with v = 0 but non-zero coordinates"),
    "empty_box": ("warning", "boxes of width or height 0"),
    "missing_metadata": ("warning", "output folder without metainfo.json or manifest.json"),
    "images_without_annotations": ("info", "images without annotations"),
    **LEFT_RIGHT_KINDS,
    # kinds of the YOLO reader (kpmerge.formats.yolo)
    "bad_label_row": ("error", "label rows Ultralytics rejects"),
    "missing_image_file": ("error", "images that are missing or unreadable"),
    "duplicate_label_row": ("warning", "label rows that repeat a row of the same image"),
}


@dataclass(frozen=True)
class KeypointCounts:
    """Counts for one keypoint over all annotations of a file (or of one source in an output folder).

    Attributes:
        name: Keypoint name.
        labelled: Annotations with v > 0.
        visible: Annotations with v = 2.
        occluded: Annotations with v = 1.
        unlabelled: Annotations with v = 0.
        defined: For a source of an output folder, whether the source defines this keypoint; else None.
    """

    name: str
    labelled: int
    visible: int
    occluded: int
    unlabelled: int
    defined: bool | None = None


@dataclass(frozen=True)
class SourceStats:
    """Statistics of one source inside a kpmerge output folder (its manifest annotation range)."""

    name: str
    layout: str
    annotation_range: tuple[int, int]
    trainable: int
    crowd: int
    keypoints: tuple[KeypointCounts, ...]
    left_right: LeftRight = field(default_factory=LeftRight)

    @property
    def annotations(self) -> int:
        return self.annotation_range[1] - self.annotation_range[0]


@dataclass(frozen=True)
class FileReport:
    """What `inspect` found in one input.

    Attributes:
        path: The input as given.
        format: `coco`, `aic` or `kpmerge_output`.
        layout: The layout name, or None when no layout fits.
        images: Image records.
        annotations: Annotations read (of the keypoint category).
        trainable: The instances MMPose 1.3 keeps in top-down mode (`kpmerge.pools`).
        crowd: Crowd annotations.
        keypoints: Per keypoint counts, in layout order.
        problems: Problems found, errors first.
        sources: Per source statistics (output folders only).
        notes: Remarks (e.g. unknown image sizes).
        left_right: Facing and crossed-limb statistics (kpmerge.leftright), over all annotations.
    """

    path: str
    format: str
    layout: str | None
    images: int
    annotations: int
    trainable: int
    crowd: int
    keypoints: tuple[KeypointCounts, ...]
    problems: tuple[Problem, ...]
    sources: tuple[SourceStats, ...] = ()
    notes: tuple[str, ...] = ()
    layout_obj: Layout | None = field(default=None, repr=False, compare=False)
    left_right: LeftRight = field(default_factory=LeftRight)

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keypoints)


@dataclass(frozen=True)
class MappingReport:
    """What `auto` mapping would do from one input (source) to the first input (target)."""

    source: str
    target: str
    pairs: tuple[tuple[str, str], ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    dropped: tuple[str, ...] = ()
    unmapped: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Overlap:
    """Keypoint names across inputs, matched by normalised name and synonyms.

    Attributes:
        names: The union, each name spelt as first seen.
        present: One row per name, one bool per input.
        labels: The inputs (paths as given).
    """

    names: tuple[str, ...]
    present: tuple[tuple[bool, ...], ...]
    labels: tuple[str, ...]

    @property
    def shared(self) -> list[str]:
        return [n for n, row in zip(self.names, self.present, strict=True) if all(row)]

    def unique(self, i: int) -> list[str]:
        """Names only input `i` has."""
        return [n for n, row in zip(self.names, self.present, strict=True) if row[i] and sum(row) == 1]


@dataclass(frozen=True)
class Report:
    """The result of `inspect`: one FileReport per input, plus name overlap and mappings for several."""

    files: tuple[FileReport, ...]
    overlap: Overlap | None = None
    mappings: tuple[MappingReport, ...] = ()

    def count(self, severity: str) -> int:
        """Number of problem kinds of this severity over all inputs."""
        return sum(1 for f in self.files for p in f.problems if p.severity == severity)

    def exit_code(self, strict: bool = False) -> int:
        """1 when there are errors (or, with `strict`, warnings), else 0."""
        if self.count("error") or (strict and self.count("warning")):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of `kpmerge inspect --json` (schema: schemas/inspect.schema.json)."""
        out: dict[str, Any] = {
            "kpmerge_inspect": 1,
            "box_margin": BOX_MARGIN,
            "files": [_file_dict(f) for f in self.files],
            "errors": self.count("error"),
            "warnings": self.count("warning"),
        }
        if self.overlap is not None:
            ov = self.overlap
            out["overlap"] = {
                "inputs": list(ov.labels),
                "names": [
                    {"name": n, "in": [ov.labels[i] for i, p in enumerate(row) if p]}
                    for n, row in zip(ov.names, ov.present, strict=True)
                ],
                "shared": ov.shared,
                "unique": {label: ov.unique(i) for i, label in enumerate(ov.labels)},
            }
            out["mappings"] = [
                {
                    "source": m.source,
                    "target": m.target,
                    "pairs": [list(p) for p in m.pairs],
                    "aliases": [list(a) for a in m.aliases],
                    "dropped": list(m.dropped),
                    "unmapped": list(m.unmapped),
                    "error": m.error,
                }
                for m in self.mappings
            ]
        return out


def _rate(count: int, total: int) -> float:
    return round(count / total, 4) if total else 0.0


def _counts_dict(k: KeypointCounts, total: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": k.name,
        "labelled": k.labelled,
        "visible": k.visible,
        "occluded": k.occluded,
        "unlabelled": k.unlabelled,
        "labelled_rate": _rate(k.labelled, total),
        "visible_rate": _rate(k.visible, total),
        "occluded_rate": _rate(k.occluded, total),
        "unlabelled_rate": _rate(k.unlabelled, total),
    }
    if k.defined is not None:
        out["defined"] = k.defined
    return out


def _file_dict(f: FileReport) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": f.path,
        "format": f.format,
        "layout": f.layout,
        "images": f.images,
        "annotations": f.annotations,
        "trainable": f.trainable,
        "crowd": f.crowd,
        "keypoints": [_counts_dict(k, f.annotations) for k in f.keypoints],
        "problems": [
            {
                "kind": p.kind,
                "severity": p.severity,
                "count": p.count,
                "examples": list(p.examples),
                "message": p.message,
            }
            for p in f.problems
        ],
        "notes": list(f.notes),
        "left_right": f.left_right.to_dict(),
    }
    if f.format == OUTPUT_FORMAT:
        out["sources"] = [
            {
                "name": s.name,
                "layout": s.layout,
                "annotations": s.annotations,
                "annotation_range": list(s.annotation_range),
                "trainable": s.trainable,
                "crowd": s.crowd,
                "keypoints": [_counts_dict(k, s.annotations) for k in s.keypoints],
                "left_right": s.left_right.to_dict(),
            }
            for s in f.sources
        ]
    return out
