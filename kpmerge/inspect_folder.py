"""A kpmerge output folder inspected (`kpmerge inspect OUT/`): the whole file, then per source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .folder import read_output_folder
from .formats.checks import problem as make_problem
from .formats.coco import coco_to_dataset
from .inspect_report import KINDS, OUTPUT_FORMAT, FileReport, SourceStats
from .inspect_stats import inspect_dataset, keypoint_counts, pool_masks, sorted_problems
from .instances import Dataset, Problem
from .jsonio import read_mapped
from .jsonscan import nesting_checked
from .layouts import Layout
from .leftright import KINDS as LEFT_RIGHT_KINDS
from .leftright import LeftRight, left_right


def inspect_output(folder: Path) -> FileReport:
    """Inspect a kpmerge output folder: its annotations as a file, plus per source statistics and the
    checks of its manifest."""
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
    sources, bad = source_stats(dataset, report.keypoint_names, meta, manifest, report.layout_obj)
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
        problems=sorted_problems([*problems, *extra]),
        sources=sources,
        notes=report.notes,
        layout_obj=report.layout_obj,
        left_right=report.left_right,
    )


def source_stats(
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
    trainable, crowd = pool_masks(dataset)
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
