"""Merge and combine: sources in, one dataset in one layout out (SPEC 4). No I/O here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .errors import UsageError
from .instances import Dataset, Images, Instances
from .jsonwrite import no_gc
from .layouts import BUILTIN_ORDER, Layout, builtin_layout, canonical_name
from .mapping import (
    Mapping,
    MappingSpec,
    apply_mapping,
    build_mapping,
    is_auto,
    is_auto_plus,
    resolve_entries,
)
from .pools import trainable_mask

AREA_FACTOR = 0.53
"""Area of a box-only annotation as a share of its box (MMPose's assumption for AIC)."""


@dataclass(frozen=True, eq=False)
class Source:
    """One input, read: its name, data, layout, mapping request and options.

    Attributes:
        name: Short name written into every record (`source`).
        dataset: What the reader returned.
        layout: The layout of `dataset`'s keypoints.
        mapping: `"auto"` or explicit entries (see `kpmerge.mapping.build_mapping`).
        image_prefix: Prepended to every image `file_name`.
        meta: Facts about the input for the manifest (path, sha256, format, ...), passed through.
    """

    name: str
    dataset: Dataset
    layout: Layout
    mapping: MappingSpec = "auto"
    image_prefix: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class SourceReport:
    """What happened to one source: its mapping, counts and where its records landed."""

    name: str
    layout: str
    mapping: Mapping
    images_read: int
    images_written: int
    annotations_read: int
    annotations_written: int
    not_written: dict[str, int]
    image_range: tuple[int, int]
    annotation_range: tuple[int, int]
    area_computed: int
    meta: dict[str, Any]
    notes: tuple[str, ...] = ()

    @property
    def eval_indices(self) -> list[int] | None:
        return self.mapping.eval_indices


@dataclass(frozen=True, eq=False)
class Merged:
    """The result of merge or combine: one dataset in one layout, and a report per source.

    Attributes:
        mode: `merge` or `combine`.
        layout: The target layout.
        dataset: All images and instances, sources contiguous in input order, ids renumbered from 1.
        sources: One report per source, in input order.
        source_index: (N,) the source of each instance.
        image_source_ids: (M,) each image's id in its source.
        source_ids: (N,) each instance's id in its source.

    Outputs write `source` (the source's name) and `source_id` as the first extra members of every
    image and annotation record.
    """

    mode: str
    layout: Layout
    dataset: Dataset
    sources: tuple[SourceReport, ...]
    source_index: np.ndarray
    image_source_ids: np.ndarray
    source_ids: np.ndarray

    @property
    def image_source_index(self) -> np.ndarray:
        """(M,) the source of each image."""
        sizes = [r.image_range[1] - r.image_range[0] for r in self.sources]
        return np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)

    @cached_property
    def trainable_pools(self) -> tuple[np.ndarray, ...]:
        """Per source, (n,) positions in the annotations that training may draw: the instances MMPose 1.3
        keeps in top-down mode (`kpmerge.pools.trainable_mask`). Taken once (the sampling check and the
        manifest both need them)."""
        images = self.dataset.images
        positions = np.flatnonzero(trainable_mask(self.dataset.instances, images.widths, images.heights))
        owner = np.asarray(self.source_index)[positions]
        return tuple(positions[owner == i] for i in range(len(self.sources)))


def merge(
    sources: Sequence[Source],
    target: Layout | None = None,
    drop_empty: bool = False,
    drop_crowd: bool = False,
) -> Merged:
    """Map every source into one target layout (default: the first source's); others' keypoints drop.

    Args:
        sources: The inputs, in output order.
        target: The layout to write; None takes the first source's.
        drop_empty: Leave out instances with no labelled keypoint after mapping.
        drop_crowd: Leave out crowd instances.

    Raises:
        UsageError: for a bad mapping or duplicate source names.
    """
    _check_sources(sources)
    layout = target or sources[0].layout
    mappings = [build_mapping(s.layout, layout, s.mapping) for s in sources]
    with no_gc():
        return _assemble("merge", layout, sources, mappings, drop_empty, drop_crowd)


def combine(sources: Sequence[Source], drop_empty: bool = False, drop_crowd: bool = False) -> Merged:
    """Build the union layout of all sources and map every source into it (SPEC 4).

    Raises:
        UsageError: for a bad mapping, duplicate source names, or a mapping given for the first source
            (its layout starts the union; `merge` with a target maps it elsewhere).
    """
    _check_sources(sources)
    first = sources[0]
    if first.mapping != "auto":
        raise UsageError(
            f"combine: a mapping for the first source ({first.name}) cannot be used: its layout starts the "
            "union, so its keypoints keep their own places; to map it into another layout use merge --target"
        )
    layout = union_layout(sources)
    mappings = [build_mapping(s.layout, layout, _union_spec(s, layout, s.mapping)) for s in sources]
    with no_gc():
        return _assemble("combine", layout, sources, mappings, drop_empty, drop_crowd)


def _union_spec(source: Source, union: Layout, spec: MappingSpec) -> MappingSpec:
    """Explicit entries plus, for the keypoints they leave out, the union's own (appended) names."""
    if is_auto(spec):  # auto matches the appended keypoints by their own names
        return spec
    entries = list(spec)
    used = {i for term, _ in resolve_entries(source.layout, union, entries) for i in term}
    names = set(union.keypoints)
    for i, n in enumerate(source.layout.keypoints):
        if i not in used and n in names:
            entries.append([i, n])
    return entries


def union_layout(sources: Sequence[Source]) -> Layout:
    """The first source's layout plus each later source's keypoints that match none already present.

    Matches are by name or synonym, or an explicit mapping of that source. Appended keypoints keep
    their flip partner, type, colour, sigma and joint weight; links among appended keypoints come along.
    When the resulting names equal a built-in layout (coco + aic = coco_aic), that layout is used.
    """
    first = sources[0].layout
    names, swaps, types = list(first.keypoints), list(first.swaps), list(first.types)
    colors = list(first.colors) if first.colors else []
    weights, sigmas = list(first.joint_weights), list(first.sigmas)
    links = list(first.skeleton)
    link_colors = list(first.skeleton_colors) if first.skeleton_colors else []
    use_colors = bool(first.colors) and all(s.layout.colors for s in sources)
    use_link_colors = bool(first.skeleton_colors) and all(s.layout.skeleton_colors for s in sources)
    for s in sources[1:]:
        lay = s.layout
        so_far = Layout(
            name="union",
            keypoints=tuple(names),
            swaps=tuple(swaps),
            types=tuple(types),
            skeleton=(),
            joint_weights=tuple(weights),
            sigmas=tuple(sigmas),
        )
        added = _added_targets(lay, so_far, s.mapping)
        spec = _without_targets(s.mapping, set(added.values()))
        matched = {term[0] for term, _ in build_mapping(lay, so_far, spec).pairs if len(term) == 1}
        new = [i for i in range(len(lay)) if i not in matched or i in added]
        renamed = {lay.keypoints[i]: added.get(i, lay.keypoints[i]) for i in new}
        for i in new:
            names.append(renamed[lay.keypoints[i]])
            swaps.append(renamed.get(lay.swaps[i], ""))
            types.append(lay.types[i])
            weights.append(lay.joint_weights[i])
            sigmas.append(lay.sigmas[i])
            if use_colors:
                colors.append(lay.colors[i])
        for j, (a, b) in enumerate(lay.skeleton):
            if a in renamed and b in renamed:
                links.append((renamed[a], renamed[b]))
                if use_link_colors:
                    link_colors.append(lay.skeleton_colors[j])
    union = Layout(
        name="+".join(s.layout.name for s in sources),
        keypoints=tuple(names),
        swaps=tuple(swaps),
        types=tuple(types),
        skeleton=tuple(links),
        joint_weights=tuple(weights),
        sigmas=tuple(sigmas),
        colors=tuple(colors) if use_colors else (),
        skeleton_colors=tuple(link_colors) if use_link_colors else (),
        dataset_name="+".join(s.layout.name for s in sources),
        paper_info=tuple(p for s in sources for p in s.layout.paper_info),
    )
    if len(sources) == 1:
        return first
    return _known_union(union) or union


def _added_targets(lay: Layout, so_far: Layout, spec: MappingSpec) -> dict[int, str]:
    """Source keypoint -> name, for each entry target (a name) that the union so far lacks but that names
    one of the source's own keypoints (exactly or by synonym): that keypoint joins the union under the
    entry's name, so `auto,left_shoulder+right_shoulder:neck` gives the union a neck."""
    added: dict[int, str] = {}
    for target in _entry_targets(spec):
        if _find(so_far, target) is None and (i := _find(lay, target, synonyms=True)) is not None:
            added.setdefault(i, target)
    return added


def _entry_targets(spec: MappingSpec) -> list[str]:
    """The targets given by name in a mapping's explicit entries (after `auto`, if it starts with it)."""
    return [t for t in map(_named_target, _entries(spec)) if t is not None]


def _without_targets(spec: MappingSpec, targets: set[str]) -> MappingSpec:
    """The mapping without the entries writing `targets` (to match a source against the union so far)."""
    if not targets or isinstance(spec, str):
        return spec
    head = list(spec[:1]) if is_auto_plus(spec) else []
    return head + [e for e in _entries(spec) if _named_target(e) not in targets]


def _entries(spec: MappingSpec) -> list[Any]:
    if isinstance(spec, str):
        return []
    return list(spec[1:] if is_auto_plus(spec) else spec)


def _named_target(entry: Any) -> str | None:
    """The target of a `[source, target]` entry when it is a name (not an index), else None."""
    ok = isinstance(entry, list | tuple) and len(entry) == 2 and isinstance(entry[1], str)
    return entry[1] if ok and not entry[1].strip().lstrip("-").isdigit() else None


def _find(layout: Layout, name: str, synonyms: bool = False) -> int | None:
    """The index of keypoint `name` in `layout` (exact or normalised; with `synonyms`, then by synonym
    when exactly one keypoint matches), or None."""
    try:
        return layout.index(name)
    except UsageError:
        pass
    if synonyms:
        hits = [i for i, n in enumerate(layout.keypoints) if canonical_name(n) == canonical_name(name)]
        if len(hits) == 1:
            return hits[0]
    return None


def _known_union(union: Layout) -> Layout | None:
    key = [canonical_name(n) for n in union.keypoints]
    for name in BUILTIN_ORDER:
        lay = builtin_layout(name)
        if [canonical_name(n) for n in lay.keypoints] == key and lay.flip_indices == union.flip_indices:
            return lay
    return None


SOURCE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
"""What a source name may hold: it is written into metainfo.py, the manifests and the summary."""


def check_source_name(name: object) -> None:
    """UsageError unless `name` is a string of letters, digits, `_`, `-` and `.` (ASCII)."""
    if not isinstance(name, str) or not SOURCE_NAME.fullmatch(name):
        raise UsageError(f"source name {name!r}: expected only letters, digits, _, - and .")


def _check_sources(sources: Sequence[Source]) -> None:
    if not sources:
        raise UsageError("give at least one source")
    seen = set()
    for s in sources:
        check_source_name(s.name)
        if s.name in seen:
            raise UsageError(f"source name {s.name!r} is used twice; name sources NAME=PATH")
        seen.add(s.name)


def _assemble(
    mode: str,
    layout: Layout,
    sources: Sequence[Source],
    mappings: list[Mapping],
    drop_empty: bool,
    drop_crowd: bool,
) -> Merged:
    # First which instances each source keeps, then every array filled once, in place.
    keeps, not_written = [], []
    for s, m in zip(sources, mappings, strict=True):
        inst = s.dataset.instances
        counts = dict(s.dataset.skipped)
        keep = np.ones(len(inst), dtype=bool)
        if drop_crowd:
            crowd = inst.iscrowd > 0
            counts["crowd"] = int(np.count_nonzero(crowd & keep))
            keep &= ~crowd
        if drop_empty:
            labelled = np.count_nonzero(apply_mapping(inst.keypoints, m)[:, :, 2] > 0, axis=1)
            empty = labelled == 0
            counts["no_labelled_keypoints"] = int(np.count_nonzero(empty & keep))
            keep &= ~empty
        keeps.append(None if keep.all() else keep)
        not_written.append(counts)
    sizes = [
        len(s.dataset.instances) if k is None else int(np.count_nonzero(k))
        for s, k in zip(sources, keeps, strict=True)
    ]
    keypoints = np.empty((sum(sizes), len(layout), 3), dtype=np.float64)
    boxes, areas, iscrowd, image_index, source_index = [], [], [], [], []
    file_names, widths, heights, img_extra, ann_extra, img_ids, ann_ids = [], [], [], [], [], [], []
    reports = []
    img_start = ann_start = 0
    for i, (s, m, keep) in enumerate(zip(sources, mappings, keeps, strict=True)):
        ds = s.dataset
        inst = ds.instances if keep is None else ds.instances[keep]
        n_img, n_ann = len(ds.images), len(inst)
        apply_mapping(inst.keypoints, m, out=keypoints[ann_start : ann_start + n_ann])
        missing_area = np.isnan(inst.areas)
        boxes.append(inst.boxes)
        areas.append(np.where(missing_area, inst.boxes[:, 2] * inst.boxes[:, 3] * AREA_FACTOR, inst.areas))
        iscrowd.append(inst.iscrowd)
        image_index.append(inst.image_index + img_start)
        source_index.append(np.full(n_ann, i, dtype=np.int64))
        names = ds.images.file_names
        if s.image_prefix:
            names = np.array([s.image_prefix + f for f in names.tolist()] or [], dtype=object)
        file_names.append(names)
        widths.append(ds.images.widths)
        heights.append(ds.images.heights)
        img_extra.append(ds.images.extra)
        ann_extra.append(inst.extra)
        img_ids.append(ds.images.ids)
        ann_ids.append(inst.ids)
        reports.append(
            SourceReport(
                name=s.name,
                layout=s.layout.name,
                mapping=m,
                images_read=n_img,
                images_written=n_img,
                annotations_read=ds.annotations_read,
                annotations_written=n_ann,
                not_written={k: v for k, v in not_written[i].items() if v},
                image_range=(img_start, img_start + n_img),
                annotation_range=(ann_start, ann_start + n_ann),
                area_computed=int(np.count_nonzero(missing_area)),
                meta=dict(s.meta),
                notes=ds.notes,
            )
        )
        img_start += n_img
        ann_start += n_ann
    images = Images(
        ids=np.arange(1, img_start + 1),
        file_names=_joined(file_names),
        widths=np.concatenate(widths),
        heights=np.concatenate(heights),
        extra=_joined(img_extra),
    )
    instances = Instances(
        keypoints=keypoints,
        boxes=np.concatenate(boxes).reshape(-1, 4),
        areas=np.concatenate(areas),
        iscrowd=np.concatenate(iscrowd),
        image_index=np.concatenate(image_index),
        ids=np.arange(1, ann_start + 1),
        num_keypoints=np.count_nonzero(keypoints[:, :, 2] > 0, axis=1),
        extra=_joined(ann_extra),
    )
    dataset = Dataset(images=images, instances=instances, keypoint_names=layout.keypoints, format="coco")
    return Merged(
        mode=mode,
        layout=layout,
        dataset=dataset,
        sources=tuple(reports),
        source_index=np.concatenate(source_index),
        image_source_ids=_joined(img_ids),
        source_ids=_joined(ann_ids),
    )


def _joined(columns: list[np.ndarray]) -> np.ndarray:
    """Object columns end to end, as one object array."""
    return np.concatenate(columns) if columns else np.empty(0, dtype=object)
