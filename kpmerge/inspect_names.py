"""Keypoint names across inputs (`kpmerge inspect A B ...`): their overlap, and what `auto` mapping
would do from each input to the first."""

from __future__ import annotations

from collections.abc import Sequence

from .errors import KpmergeError
from .inspect_report import FileReport, MappingReport, Overlap
from .layouts import canonical_name, normalize_name
from .mapping import build_mapping


def name_key(name: str, taken: set[str]) -> str:
    """The key two inputs' names match by: the canonical name, or the normalised one once taken."""
    key = canonical_name(name)
    return key if key not in taken else normalize_name(name)


def name_overlap(files: Sequence[FileReport]) -> Overlap:
    """The union of the inputs' keypoint names and which input has which."""
    order: dict[str, str] = {}
    have: list[set[str]] = []
    for f in files:
        keys: set[str] = set()
        for name in f.keypoint_names:
            key = name_key(name, keys)
            keys.add(key)
            order.setdefault(key, name)
        have.append(keys)
    present = tuple(tuple(key in h for h in have) for key in order)
    return Overlap(tuple(order.values()), present, tuple(f.path for f in files))


def mapping_preview(source: FileReport, target: FileReport) -> MappingReport:
    """What `auto` mapping would do from `source` to `target` (the error instead, when it cannot)."""
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
