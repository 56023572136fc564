"""Evaluation files: an output's annotations written back in one source layout (e.g. COCO-17 from 19)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from .errors import KpmergeError, UsageError
from .folder import METAINFO_JSON, read_output_folder
from .formats.coco import dataset_to_coco, read_coco
from .instances import Dataset, Images, Instances
from .layouts import Layout, layout_from_dict, load_layout
from .mapping import build_mapping
from .publish import check_output, check_outside_inputs, write_file


@dataclass(frozen=True)
class Projection:
    """What `project_output` made.

    Attributes:
        data: The COCO keypoint JSON bytes in the chosen layout.
        layout: The chosen layout.
        columns: For each keypoint of `layout`, its column in the output's layout.
        how: `eval_indices of source NAME` or `names`.
        sources: The sources whose images and annotations were kept.
        images: Images written.
        annotations: Annotations written.
    """

    data: bytes
    layout: Layout
    columns: list[int]
    how: str
    sources: tuple[str, ...]
    images: int
    annotations: int


class _Origin(msgspec.Struct):
    source: Any = None
    source_id: Any = None


def _original_ids(extra: np.ndarray, what: str, file: Path) -> list[int]:
    """The records' `source_id`s, to write as their ids: positive integers that do not repeat.

    Raises:
        UsageError: when one is not a positive integer (COCO tools score only integer ids) or they
            repeat across the chosen sources.
    """
    decoder = msgspec.json.Decoder(_Origin)
    origins = [decoder.decode(b"{" + e + b"}") for e in extra]
    if any(o.source_id is None for o in origins):
        raise KpmergeError(f"{what} without source_id: cannot write original ids", file=file)
    bad = next((o for o in origins if type(o.source_id) is not int or o.source_id < 1), None)
    if bad is not None:
        raise UsageError(
            f"--original-ids: the {what} ids of source {bad.source} are not positive integers "
            f"(e.g. {bad.source_id!r}), which COCO tools cannot score; leave the option out (each "
            "record keeps its original id in source_id)"
        )
    ids = [o.source_id for o in origins]
    if len(set(ids)) != len(ids):
        raise UsageError(f"original {what} ids repeat across the chosen sources; choose one with --source")
    return ids


def project_output(
    out: str | Path,
    to: str | Path | Layout,
    sources: Sequence[str] | None = None,
    original_ids: bool = False,
) -> Projection:
    """The annotations of the output folder `out` in layout `to`, for pycocotools' COCOeval.

    The columns come from the metainfo's evaluation indices of a source in layout `to` when there is
    one, else by keypoint name (with synonyms); every keypoint of `to` must have a column.

    Args:
        out: A kpmerge output folder (annotations.json, metainfo.json, manifest.json).
        to: The layout to write: a built-in name, a layout JSON file or a Layout.
        sources: The sources to keep; None keeps every source that defines all keypoints of `to`.
        original_ids: Write each image's and annotation's id in its source (`source_id`) instead of
            the output's id, to score predictions made on the source file. Ids stay positive
            integers: sources whose ids are not (raw AIC, MPII) are refused.

    Raises:
        UsageError: for a folder that is not an output, a layout with keypoints the output lacks,
            an unknown source, no source to keep, or original ids that are not positive integers.
    """
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UsageError("is a file; give a kpmerge output folder", file=folder)
    out_folder = read_output_folder(folder)
    meta, manifest = out_folder.metainfo, out_folder.manifest
    if meta is None or manifest is None:  # read_output_folder(metadata=True) gives both
        raise UsageError("not a kpmerge output folder: no metadata", file=folder)
    try:
        own = layout_from_dict(meta["layout"], source=str(out_folder.path / METAINFO_JSON))
        entries = {s["name"]: s for s in meta["sources"]}
        ranges = {
            s["name"]: (tuple(s["images"]["range"]), tuple(s["annotations"]["range"]))
            for s in manifest["sources"]
        }
    except (KeyError, TypeError) as exc:
        raise KpmergeError(f"not a kpmerge metainfo/manifest pair (missing {exc})", file=folder) from None
    layout = load_layout(to)
    columns, how = _columns(own, layout, entries)
    if sources is None:
        chosen = [n for n, e in entries.items() if set(columns) <= set(e.get("defined_keypoints", []))]
        if not chosen:
            raise UsageError(
                f"no source of {folder} defines every keypoint of layout {layout.name}; choose with --source"
            )
    else:
        chosen = list(dict.fromkeys(sources))
        for n in chosen:
            if n not in entries:
                raise UsageError(f"no source named {n!r} in {folder} (sources: {', '.join(entries)})")
    ann_file = out_folder.annotations
    dataset = read_coco(ann_file)
    projected = _select(dataset, [ranges[n] for n in chosen], columns)
    info = {"description": f"kpmerge project to {layout.name} of {', '.join(chosen)}", "layout": layout.name}
    skeleton = [[a + 1, b + 1] for a, b in layout.skeleton_ids]
    ids: dict[str, Any] = {}
    if original_ids:
        ids["image_ids"] = _original_ids(projected.images.extra, "image", ann_file)
        ids["annotation_ids"] = _original_ids(projected.instances.extra, "annotation", ann_file)
    data = dataset_to_coco(projected, list(layout.keypoints), skeleton, info=info, **ids)
    return Projection(
        data=data,
        layout=layout,
        columns=columns,
        how=how,
        sources=tuple(chosen),
        images=len(projected.images),
        annotations=len(projected.instances),
    )


def _columns(own: Layout, layout: Layout, entries: dict[str, Any]) -> tuple[list[int], str]:
    for name, e in entries.items():
        idx = e.get("eval_indices")
        if e.get("layout") == layout.name and idx and len(idx) == len(layout):
            return [int(i) for i in idx], f"eval_indices of source {name}"
    mapping = build_mapping(own, layout, "auto")
    if mapping.unmapped:
        missing = ", ".join(layout.keypoints[t] for t in mapping.unmapped)
        raise UsageError(
            f"layout {own.name} of the output has no keypoint for {missing} of layout {layout.name}"
        )
    return [term[0] for term, _ in mapping.pairs], "names"


def _select(dataset: Dataset, ranges: list[tuple[Any, Any]], columns: list[int]) -> Dataset:
    images, inst = dataset.images, dataset.instances
    img_keep = np.zeros(len(images), dtype=bool)
    ann_keep = np.zeros(len(inst), dtype=bool)
    for (ia, ib), (aa, ab) in ranges:
        img_keep[ia:ib] = True
        ann_keep[aa:ab] = True
    ann_keep &= img_keep[inst.image_index]
    new_row = np.cumsum(img_keep) - 1
    picked = inst[ann_keep]
    kept = Instances(
        keypoints=picked.keypoints[:, columns, :],
        boxes=picked.boxes,
        areas=picked.areas,
        iscrowd=picked.iscrowd,
        image_index=new_row[picked.image_index],
        ids=picked.ids,
        num_keypoints=picked.num_keypoints,
        extra=picked.extra,
    )
    kept_images = Images(
        ids=images.ids[img_keep],
        file_names=images.file_names[img_keep],
        widths=images.widths[img_keep],
        heights=images.heights[img_keep],
        extra=images.extra[img_keep],
    )
    return Dataset(images=kept_images, instances=kept, keypoint_names=None, format="coco")


def project(
    out: str | Path,
    to: str | Path | Layout,
    file: str | Path,
    sources: Sequence[str] | None = None,
    force: bool = False,
    original_ids: bool = False,
    published: list[Path] | None = None,
) -> Projection:
    """Project the output folder `out` to layout `to` and write the COCO file `file` atomically
    (`published` gets `file` appended once it is in place)."""
    layout_file = to if isinstance(to, str | os.PathLike) and Path(to).is_file() else None
    check_outside_inputs(file, [out, layout_file])
    check_output(file, force, folder=False)
    result = project_output(out, to, sources, original_ids)
    write_file(result.data, file, force, published)
    return result
