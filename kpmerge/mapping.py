"""Keypoint mappings between layouts: build (by index, by name, auto, midpoints), check, apply (SPEC 3)."""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import UsageError
from .layouts import HEAD_FALLBACK, Layout, canonical_name, normalize_name

Term = tuple[int, ...]
"""A mapping source: one source index, or two for a midpoint."""

MappingSpec = str | Sequence[Any]
"""`"auto"`, or a list of `(source, target)` where source is an index, a name or a pair of them; a list
whose first item is `"auto"` maps by name first, then its entries override or add (see `build_mapping`)."""

AUTO = "auto"


def is_auto_plus(spec: MappingSpec) -> bool:
    """True for `["auto", entry, ...]`: auto by name, then the entries override or add."""
    return not isinstance(spec, str) and len(spec) > 0 and isinstance(spec[0], str) and spec[0] == AUTO


def is_auto(spec: MappingSpec) -> bool:
    """True for `"auto"` and for `["auto", entry, ...]` (both start from names)."""
    return spec == AUTO or is_auto_plus(spec)


@dataclass(frozen=True)
class Mapping:
    """A checked mapping from a source layout to a target layout.

    Attributes:
        source: The source layout.
        target: The target layout.
        pairs: `(source term, target index)` in target order; a term is one index or two (a midpoint).
        aliases: `(source name, target name)` matched through the synonym table, for the report.
    """

    source: Layout
    target: Layout
    pairs: tuple[tuple[Term, int], ...]
    aliases: tuple[tuple[str, str], ...] = ()

    @property
    def defined(self) -> list[int]:
        """Target indices this source defines (the mapped targets), ascending."""
        return sorted(t for _, t in self.pairs)

    @property
    def unmapped(self) -> list[int]:
        """Target indices nothing maps to."""
        mapped = {t for _, t in self.pairs}
        return [t for t in range(len(self.target)) if t not in mapped]

    @property
    def dropped(self) -> list[int]:
        """Source indices used by no entry."""
        used = {s for term, _ in self.pairs for s in term}
        return [s for s in range(len(self.source)) if s not in used]

    @property
    def eval_indices(self) -> list[int] | None:
        """Target position of each source keypoint, when every one maps one-to-one; else None."""
        single = {term[0]: t for term, t in self.pairs if len(term) == 1}
        if len(single) != len(self.source):
            return None
        return [single[s] for s in range(len(self.source))]

    def index_pairs(self) -> list[list[Any]]:
        """The entries as JSON-ready `[source, target]`, source an index or a pair of indices."""
        return [[term[0] if len(term) == 1 else list(term), t] for term, t in self.pairs]

    def name_pairs(self) -> list[list[Any]]:
        """The entries with names instead of indices."""
        s, t = self.source.keypoints, self.target.keypoints
        return [[s[term[0]] if len(term) == 1 else [s[i] for i in term], t[ti]] for term, ti in self.pairs]


def build_mapping(source: Layout, target: Layout, spec: MappingSpec = "auto") -> Mapping:
    """Build and check a mapping from `source` to `target`.

    Args:
        source: The layout the keypoints come from.
        target: The layout they go to.
        spec: `"auto"` (by name, with synonyms), or a list of `(source, target)` entries where each
            side is an index or a name, and the source may be a pair (the midpoint of two keypoints).
            A list starting with `"auto"` maps by name first; then each entry after it sets its
            target, replacing what auto put there (the flip check applies to the result).

    Raises:
        UsageError: an index out of range, an unknown or ambiguous name, a target written twice,
            or a flip-inconsistent entry; each message names the entry.
    """
    if isinstance(spec, str):
        if spec != AUTO:
            raise UsageError(f"mapping must be 'auto' or a list of [source, target] entries, got {spec!r}")
        pairs, aliases = _auto_pairs(source, target)
    elif is_auto_plus(spec):
        pairs, aliases = _auto_pairs(source, target)
        overrides = resolve_entries(source, target, spec[1:], first=1)
        replaced = {t for _, t in overrides}
        kept = [(term, t) for term, t in pairs if t not in replaced]
        aliases = [(a, b) for a, b in aliases if target.index(b) not in replaced]
        pairs = kept + overrides
    else:
        pairs, aliases = resolve_entries(source, target, spec), []
    pairs.sort(key=lambda p: p[1])
    mapping = Mapping(source=source, target=target, pairs=tuple(pairs), aliases=tuple(aliases))
    check_flips(mapping)
    return mapping


def _auto_pairs(source: Layout, target: Layout) -> tuple[list[tuple[Term, int]], list[tuple[str, str]]]:
    exact: dict[str, list[int]] = {}
    canon: dict[str, list[int]] = {}
    for t, name in enumerate(target.keypoints):
        exact.setdefault(normalize_name(name), []).append(t)
        canon.setdefault(canonical_name(name), []).append(t)
    head = exact.get(HEAD_FALLBACK, []) if "head_top" not in canon else []
    chosen: dict[int, tuple[int, bool]] = {}  # target -> (source, by alias)
    for s, name in enumerate(source.keypoints):
        hits = exact.get(normalize_name(name), [])
        alias = False
        if not hits:
            hits = canon.get(canonical_name(name), [])
            if not hits and canonical_name(name) == "head_top":
                hits = head
            alias = bool(hits)
        if len(hits) > 1:
            listed = ", ".join(target.keypoints[t] for t in hits)
            raise UsageError(
                f"mapping {source.name} -> {target.name}: {name!r} is ambiguous: it matches {listed}"
            )
        if not hits:
            continue
        t = hits[0]
        if t in chosen:
            if chosen[t][1] and not alias:  # an exact match wins over a synonym
                chosen[t] = (s, alias)
            elif not chosen[t][1] and alias:
                continue
            else:
                other = source.keypoints[chosen[t][0]]
                raise UsageError(
                    f"mapping {source.name} -> {target.name}: {name!r} and {other!r} both match "
                    f"{target.keypoints[t]!r}"
                )
        else:
            chosen[t] = (s, alias)
    pairs = [((s,), t) for t, (s, _) in chosen.items()]
    aliases = [(source.keypoints[s], target.keypoints[t]) for t, (s, a) in sorted(chosen.items()) if a]
    return pairs, aliases


def _show(value: Any) -> str:
    """A mapping entry (or part of one) for messages, cut short: entries from files may nest deeply."""
    short = reprlib.Repr()
    short.maxlevel, short.maxstring = 3, 60
    return short.repr(value)


def resolve_entries(
    source: Layout, target: Layout, spec: Sequence[Any], first: int = 0
) -> list[tuple[Term, int]]:
    """Explicit entries as `(source term, target index)`, checked for ranges, names and duplicates.

    `first` is the number of the first entry in messages (1 after a leading `"auto"`).
    """
    where = f"mapping {source.name} -> {target.name}"
    pairs: list[tuple[Term, int]] = []
    seen: dict[int, int] = {}
    for n, entry in enumerate(spec, start=first):
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            raise UsageError(f"{where}: entry {n} must be [source, target], got {_show(entry)}")
        src, tgt = entry
        parts = list(src) if isinstance(src, list | tuple) else [src]
        if len(parts) not in (1, 2):
            raise UsageError(
                f"{where}: entry {n} {_show(entry)}: a source is one keypoint or a pair (a midpoint)"
            )
        term = tuple(_resolve(source, p, f"{where}: entry {n} {_show(entry)}: source") for p in parts)
        t = _resolve(target, tgt, f"{where}: entry {n} {_show(entry)}: target")
        if t in seen:
            raise UsageError(
                f"{where}: entry {n} {_show(entry)}: target {target.keypoints[t]!r} is already written by "
                f"entry {seen[t]}"
            )
        seen[t] = n
        pairs.append((term, t))
    return pairs


def _resolve(layout: Layout, ref: Any, where: str) -> int:
    if isinstance(ref, bool):
        raise UsageError(f"{where}: expected an index or a name, got {_show(ref)}")
    if isinstance(ref, int):
        if not 0 <= ref < len(layout):
            raise UsageError(f"{where}: index {ref} is out of range 0..{len(layout) - 1} of {layout.name}")
        return ref
    if isinstance(ref, str):
        if ref.strip().lstrip("-").isdigit():
            return _resolve(layout, int(ref), where)
        try:
            return layout.index(ref)
        except UsageError:
            raise UsageError(f"{where}: {layout.name} has no keypoint {ref!r}") from None
    raise UsageError(f"{where}: expected an index or a name, got {_show(ref)}")


def check_flips(mapping: Mapping) -> None:
    """Raise UsageError unless the mapping commutes with left/right flipping (SPEC 3.4).

    Each entry `term -> t` needs `flip(term) -> flip(t)` among the entries, where flipping a midpoint
    flips both ends. Entries whose source and target are both self-symmetric need nothing.
    """
    sflip, tflip = mapping.source.flip_indices, mapping.target.flip_indices
    by_term = {tuple(sorted(term)): t for term, t in mapping.pairs}
    s_names, t_names = mapping.source.keypoints, mapping.target.keypoints

    def show(term: Term) -> str:
        return "mid(" + ", ".join(s_names[i] for i in term) + ")" if len(term) > 1 else s_names[term[0]]

    for term, t in mapping.pairs:
        fterm = tuple(sorted(sflip[i] for i in term))
        if fterm == tuple(sorted(term)) and tflip[t] == t:
            continue
        got = by_term.get(fterm)
        if got != tflip[t]:
            found = f"maps to {t_names[got]}" if got is not None else "maps to nothing"
            raise UsageError(
                f"mapping {mapping.source.name} -> {mapping.target.name} is not flip-consistent: "
                f"{show(term)} -> {t_names[t]}, but its mirror {show(fterm)} {found} "
                f"(expected {show(fterm)} -> {t_names[tflip[t]]})"
            )


def apply_mapping(
    keypoints: npt.NDArray[np.float64], mapping: Mapping, out: npt.NDArray[np.float64] | None = None
) -> npt.NDArray[np.float64]:
    """Keypoints (N, Ks, 3) in the source layout -> (N, Kt, 3) in the target layout (SPEC 3.1).

    Single entries copy `x, y, v`; a midpoint takes the mean position and the lower `v` when both
    ends are labelled, else (0, 0, 0); unmapped targets are (0, 0, 0). `out`, when given, is an
    (N, Kt, 3) float64 array to write into (and is returned).
    """
    n, kt = keypoints.shape[0], len(mapping.target)
    if out is None:
        out = np.empty((n, kt, 3), dtype=np.float64)
    elif not out.flags.c_contiguous:
        out[...] = apply_mapping(keypoints, mapping)
        return out
    # Gather whole columns of (N, K * 3) views straight into `out` (far faster than fancy indexing on
    # the middle axis, and no temporary array), then zero the targets no single entry fills.
    flat_out = out.reshape(n, 3 * kt)
    flat_kp = np.ascontiguousarray(keypoints).reshape(n, 3 * keypoints.shape[1])
    source_of = np.full(kt, -1, dtype=np.int64)
    for term, t in mapping.pairs:
        if len(term) == 1:
            source_of[t] = term[0]
    mapped = source_of >= 0
    first = int(np.argmax(mapped)) if mapped.any() else kt
    size = int(np.count_nonzero(mapped))
    if size and mapped[first : first + size].all() and (np.diff(source_of[first : first + size]) == 1).all():
        src = int(source_of[first])
        flat_out[:, 3 * first : 3 * (first + size)] = flat_kp[:, 3 * src : 3 * (src + size)]
    elif size:
        columns = (3 * np.maximum(source_of, 0)[:, None] + np.arange(3)).ravel()
        np.take(flat_kp, columns, axis=1, out=flat_out, mode="clip")
    for t in np.flatnonzero(~mapped).tolist():
        out[:, t] = 0.0
    mids = [(term, t) for term, t in mapping.pairs if len(term) == 2]
    if mids:
        a = keypoints[:, [term[0] for term, _ in mids]]
        b = keypoints[:, [term[1] for term, _ in mids]]
        both = (a[:, :, 2] > 0) & (b[:, :, 2] > 0)
        mid = np.concatenate([(a[:, :, :2] + b[:, :, :2]) / 2, np.minimum(a[:, :, 2:], b[:, :, 2:])], axis=2)
        out[:, [t for _, t in mids]] = np.where(both[:, :, None], mid, 0.0)
    return out
