"""Keypoint statistics and validation of annotation files and kpmerge output folders (`kpmerge inspect`).

Every statistic is an array reduction over the columnar `Instances`; the readers run in lenient mode
(`strict=False`) so that rule violations become `Problem`s instead of exceptions.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import KpmergeError, UsageError
from .folder import read_output_folder
from .formats import default_layout, path_format, read_dataset
from .formats.checks import mask_problem
from .formats.checks import problem as make_problem
from .formats.coco import coco_to_dataset
from .instances import Dataset, Problem
from .job import SourceSpec, source_inputs
from .jsonio import read_mapped
from .jsonscan import nesting_checked
from .layouts import Layout, canonical_name, detect_layout, layout_from_dict, load_layout, normalize_name
from .leftright import KINDS as LEFT_RIGHT_KINDS
from .leftright import LeftRight, left_right
from .leftright import table as left_right_table
from .mapping import build_mapping
from .pools import trainable_mask
from .publish import check_outside_inputs, write_file

BOX_MARGIN = 0.1
"""A labelled keypoint is `outside_box` when it lies beyond the box by more than this share of the box's
width (left, right) or height (top, bottom)."""
EXAMPLES = 5
"""How many example ids a problem keeps."""
SEVERITIES = ("error", "warning", "info")
OUTPUT_FORMAT = "kpmerge_output"
"""The `format` of a kpmerge output folder."""

# kind -> (severity, message); reader kinds come from the lenient readers (kpmerge.formats).
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


def inspect(paths: Sequence[str | Path], layout: str | Path | None = None) -> Report:
    """Inspect annotation files (COCO-style, raw AIC) and kpmerge output folders.

    Args:
        paths: Files or output folders, in order; the first is the target of the `auto` mapping report.
        layout: Layout of every file input (a built-in name or a layout JSON file); default: detected.

    Returns:
        A Report; problems in the data are in it, not raised.

    Raises:
        KpmergeError: for a file that cannot be read (not JSON, wrong types, missing fields).
        UsageError: for no paths or an unknown layout.
    """
    if not paths:
        raise UsageError("give at least one file or output folder")
    forced = load_layout(layout) if layout is not None else None
    files = tuple(inspect_path(p, forced) for p in paths)
    if len(files) < 2:
        return Report(files)
    return Report(files, _overlap(files), tuple(_mapping(f, files[0]) for f in files[1:]))


def inspect_path(path: str | Path, layout: Layout | None = None) -> FileReport:
    """Inspect one file or kpmerge output folder (see `inspect`)."""
    p = Path(path)
    if p.is_dir() and path_format(p) is None:  # a dataset folder (YOLO) is read as its train split
        return _inspect_output(p)
    return inspect_dataset(read_dataset(p, strict=False), str(path), layout)


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
    trainable, crowd = _pool(dataset)
    return FileReport(
        path=path,
        format=dataset.format,
        layout=lay.name if lay is not None and lay.name != "" else None,
        images=len(dataset.images),
        annotations=len(inst),
        trainable=int(np.count_nonzero(trainable)),
        crowd=int(np.count_nonzero(crowd)),
        keypoints=keypoint_counts(inst.keypoints, names),
        problems=_sorted(problems),
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


def _sorted(problems: list[Problem]) -> tuple[Problem, ...]:
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return tuple(sorted(problems, key=lambda p: order.get(p.severity, len(order))))


def _pool(dataset: Dataset) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
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


def _inspect_output(folder: Path) -> FileReport:
    out = read_output_folder(folder, metadata=False)
    data = read_mapped(out.annotations)
    with nesting_checked(data, out.annotations):
        dataset = coco_to_dataset(data, file=out.annotations, strict=False)
    meta, manifest = out.metainfo, out.manifest
    extra: list[Problem] = []
    lay = out.layout
    if out.missing:
        severity, message = KINDS["missing_metadata"]
        extra.append(make_problem("missing_metadata", len(out.missing), out.missing, message, severity))
    report = inspect_dataset(
        dataset, str(folder), lay if lay is not None and len(lay) == dataset.instances.k else None
    )
    sources, bad = _sources(dataset, report.keypoint_names, meta, manifest, report.layout_obj)
    extra += bad
    problems = list(report.problems)
    if sources:  # left/right problems per source: a swapped source can hide in the whole folder's rates
        problems = [p for p in problems if p.kind not in LEFT_RIGHT_KINDS]
        extra += [p for s in sources for p in s.left_right.problems(s.name)]
    return FileReport(
        path=report.path,
        format=OUTPUT_FORMAT,
        layout=report.layout,
        images=report.images,
        annotations=report.annotations,
        trainable=report.trainable,
        crowd=report.crowd,
        keypoints=report.keypoints,
        problems=_sorted([*problems, *extra]),
        sources=sources,
        notes=report.notes,
        layout_obj=report.layout_obj,
        left_right=report.left_right,
    )


def _sources(
    dataset: Dataset, names: tuple[str, ...], meta: Any, manifest: Any, layout: Layout | None = None
) -> tuple[tuple[SourceStats, ...], list[Problem]]:
    """Per source statistics from the manifest's annotation ranges and metainfo's defined keypoints."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sources"), list):
        return (), []
    inst = dataset.instances
    n = len(inst)
    defined_by_name = {}
    if isinstance(meta, dict) and isinstance(meta.get("sources"), list):
        defined_by_name = {
            s.get("name"): s.get("defined_keypoints") for s in meta["sources"] if isinstance(s, dict)
        }
    trainable, crowd = _pool(dataset)
    out, wrong = [], []
    end = 0
    for i, s in enumerate(manifest["sources"]):
        name = str(s.get("name", i)) if isinstance(s, dict) else str(i)
        rng = s.get("annotations", {}).get("range") if isinstance(s, dict) else None
        if not (isinstance(rng, list) and len(rng) == 2 and end == rng[0] <= rng[1] <= n):
            wrong.append(name)
            continue
        a, b = int(rng[0]), int(rng[1])
        end = b
        defined_ids = defined_by_name.get(name)
        defined = None
        if isinstance(defined_ids, list):
            defined = np.zeros(len(names), dtype=bool)
            defined[[d for d in defined_ids if isinstance(d, int) and 0 <= d < len(names)]] = True
        out.append(
            SourceStats(
                name=name,
                layout=str(s.get("layout", "")),
                annotation_range=(a, b),
                trainable=int(np.count_nonzero(trainable[a:b])),
                crowd=int(np.count_nonzero(crowd[a:b])),
                keypoints=keypoint_counts(inst.keypoints[a:b], names, None if defined is None else defined),
                left_right=left_right(inst.keypoints[a:b], layout) if layout is not None else LeftRight(),
            )
        )
    if manifest.get("annotations") != n or (not wrong and end != n):
        wrong.append("annotations")
    problems = []
    if wrong:
        severity, message = KINDS["manifest_mismatch"]
        problems.append(make_problem("manifest_mismatch", len(wrong), wrong, message, severity))
    return tuple(out), problems


def _key(name: str, taken: set[str]) -> str:
    key = canonical_name(name)
    return key if key not in taken else normalize_name(name)


def _overlap(files: Sequence[FileReport]) -> Overlap:
    order: dict[str, str] = {}
    have: list[set[str]] = []
    for f in files:
        keys: set[str] = set()
        for name in f.keypoint_names:
            key = _key(name, keys)
            keys.add(key)
            order.setdefault(key, name)
        have.append(keys)
    present = tuple(tuple(key in h for h in have) for key in order)
    return Overlap(tuple(order.values()), present, tuple(f.path for f in files))


def _mapping(source: FileReport, target: FileReport) -> MappingReport:
    if source.layout_obj is None or target.layout_obj is None:
        return MappingReport(source.path, target.path, error="no layout")
    try:
        m = build_mapping(source.layout_obj, target.layout_obj, "auto")
    except KpmergeError as exc:
        return MappingReport(source.path, target.path, error=exc.message)
    s, t = m.source.keypoints, m.target.keypoints
    return MappingReport(
        source=source.path,
        target=target.path,
        pairs=tuple((" + ".join(s[i] for i in term), t[ti]) for term, ti in m.pairs),
        aliases=tuple(m.aliases),
        dropped=tuple(s[i] for i in m.dropped),
        unmapped=tuple(t[i] for i in m.unmapped),
    )


# ----------------------------------------------------------------------------------------------- text


def _table(rows: list[list[str]], right: Sequence[int] = ()) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def line(r: list[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(rows[0]), "  ".join("-" * w for w in widths), *(line(r) for r in rows[1:])]


def _pct(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "-"


def _keypoint_rows(counts: Sequence[KeypointCounts], total: int) -> list[str]:
    rows = [["keypoint", "labelled", "%", "visible", "%", "occluded", "%", "unlabelled", "%"]]
    for k in counts:
        rows.append(
            [k.name]
            + [
                cell
                for c in (k.labelled, k.visible, k.occluded, k.unlabelled)
                for cell in (str(c), _pct(c, total))
            ]
        )
    return _table(rows, right=range(1, 9))


def format_report(report: Report) -> str:
    """The report as aligned text tables for people."""
    out: list[str] = []
    for f in report.files:
        lay = (
            f"{f.layout} ({len(f.keypoints)} keypoints)"
            if f.layout
            else f"unknown ({len(f.keypoints)} keypoints)"
        )
        out.append(f"== {f.path}")
        out.append(f"format {f.format}, layout {lay}")
        out.append(
            f"images {f.images}, annotations {f.annotations}, trainable {f.trainable}, crowd {f.crowd}"
        )
        out.append("")
        out += _keypoint_rows(f.keypoints, f.annotations)
        if f.sources:
            out.append("")
            out.append("per source: labelled rate ('n/d': the source does not define the keypoint)")
            rows = [["keypoint", *(s.name for s in f.sources)]]
            rows.append(["annotations", *(str(s.annotations) for s in f.sources)])
            rows.append(["trainable", *(str(s.trainable) for s in f.sources)])
            for i, name in enumerate(f.keypoint_names):
                cells = []
                for s in f.sources:
                    k = s.keypoints[i]
                    cells.append("n/d" if k.defined is False else _pct(k.labelled, s.annotations))
                rows.append([name, *cells])
            out += _table(rows, right=range(1, len(f.sources) + 1))
        columns = [(s.name, s.left_right) for s in f.sources] if f.sources else [("share", f.left_right)]
        sides = left_right_table(columns)
        if len(sides) > 1:
            out.append("")
            out.append("left/right: share of front-facing people with x(left) > x(right), and of same-side")
            out.append("links shorter than the link to the other side (correct data: well above 50%)")
            out += _table(sides, right=range(1, len(columns) + 1))
        out.append("")
        if f.problems:
            rows = [["severity", "kind", "count", "examples", "what"]]
            for p in f.problems:
                examples = ", ".join(str(e) for e in p.examples) + (
                    ", ..." if p.count > len(p.examples) else ""
                )
                rows.append([p.severity, p.kind, str(p.count), examples, p.message])
            out += _table(rows, right=[2])
        else:
            out.append("no problems")
        out += [f"note: {n}" for n in f.notes]
        out.append("")
    if report.overlap is not None:
        ov = report.overlap
        labels = [f"[{i + 1}]" for i in range(len(ov.labels))]
        out.append("== keypoint names across inputs")
        out += [f"{label} {path}" for label, path in zip(labels, ov.labels, strict=True)]
        rows = [["keypoint", *labels]]
        rows += [[n, *("x" if p else "." for p in row)] for n, row in zip(ov.names, ov.present, strict=True)]
        out += _table(rows)
        out.append(f"shared by all: {len(ov.shared)}")
        for label, i in zip(labels, range(len(labels)), strict=True):
            only = ov.unique(i)
            out.append(f"only in {label}: {', '.join(only) if only else '-'}")
        out.append("")
        for m, label in zip(report.mappings, labels[1:], strict=True):
            head = f"auto mapping {label} -> [1]: "
            if m.error:
                out.append(head + f"not possible: {m.error}")
                continue
            out.append(head + f"{len(m.pairs)} pairs")
            if m.aliases:
                out.append("  by synonym: " + ", ".join(f"{a} -> {b}" for a, b in m.aliases))
            out.append("  dropped: " + (", ".join(m.dropped) or "-"))
            out.append("  unmapped in [1]: " + (", ".join(m.unmapped) or "-"))
        out.append("")
    out.append(f"{report.count('error')} errors, {report.count('warning')} warnings")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------- plot


def plot_report(report: Report, path: str | Path, published: list[Path] | None = None) -> Path:
    """Write one PNG: per-keypoint labelled rates per input (or per source of an output folder) as bars,
    and the keypoint name overlap as a presence grid. Needs matplotlib (`pip install kpmerge[plot]`).
    `published` gets `path` appended once it is in place.

    Raises:
        UsageError: when `path` is, holds or lies inside an input of the report, or when matplotlib is
            not installed.
    """
    inputs: list[Path] = []
    folders: list[Path] = []
    for f in report.files:
        if f.path:
            read, images = source_inputs(SourceSpec(path=Path(f.path)))
            inputs += read
            folders += images
    check_outside_inputs(path, inputs, folders)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install kpmerge[plot]") from None
    names, series = _series(report)
    k, s = len(names), len(series)
    fig = Figure(figsize=(max(8.0, 0.35 * k * max(1, s) ** 0.5 + 2), 7.5 + 0.25 * s), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1 + 0.3 * s])
    width = 0.8 / max(1, s)
    xs = np.arange(k)
    for j, (label, present, rates) in enumerate(series):
        heights = np.where(present, rates, 0.0)
        top.bar(xs - 0.4 + width * (j + 0.5), heights, width, label=label)
    top.set_xticks(xs, names, rotation=90, fontsize=7)
    top.set_ylim(0, 1)
    top.set_ylabel("labelled rate (v > 0)")
    top.set_title("labelled keypoints per input")
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    grid = np.array([present for _, present, _ in series], dtype=float).reshape(s, k)
    bottom.imshow(grid, aspect="auto", cmap="Greens", vmin=0, vmax=1.2)
    bottom.set_xticks(xs, names, rotation=90, fontsize=7)
    bottom.set_yticks(np.arange(s), [label for label, _, _ in series], fontsize=7)
    bottom.set_xticks(xs[:-1] + 0.5, minor=True)
    bottom.set_yticks(np.arange(s - 1) + 0.5, minor=True)
    bottom.grid(which="minor", color="white", linewidth=1)
    bottom.tick_params(which="minor", length=0)
    bottom.set_title("keypoint names each input has (defined keypoints for output sources)")
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100, metadata={"Software": None})
    return write_file(png.getvalue(), path, True, published)  # --plot has always replaced the file


def _series(report: Report) -> tuple[list[str], list[tuple[str, np.ndarray, np.ndarray]]]:
    """Union names (by canonical name) and per series: label, presence mask, labelled rate."""
    order: dict[str, str] = {}
    raw: list[tuple[str, list[str], list[float], list[bool]]] = []
    for f in report.files:
        label = Path(f.path).name or f.path
        if f.sources:
            for s in f.sources:
                rates = [k.labelled / s.annotations if s.annotations else 0.0 for k in s.keypoints]
                present = [k.defined is not False for k in s.keypoints]
                raw.append((f"{label}:{s.name}", list(f.keypoint_names), rates, present))
        else:
            rates = [k.labelled / f.annotations if f.annotations else 0.0 for k in f.keypoints]
            raw.append((label, list(f.keypoint_names), rates, [True] * len(f.keypoints)))
    keyed = []
    for label, names, rates, present in raw:
        taken: set[str] = set()
        keys = []
        for n in names:
            key = _key(n, taken)
            taken.add(key)
            keys.append(key)
            order.setdefault(key, n)
        keyed.append((label, keys, rates, present))
    index = {key: i for i, key in enumerate(order)}
    series = []
    for label, keys, rates, present in keyed:
        mask = np.zeros(len(order), dtype=bool)
        values = np.zeros(len(order))
        pos = [index[key] for key in keys]
        mask[pos] = present
        values[pos] = rates
        series.append((label, mask, values))
    return list(order.values()), series
