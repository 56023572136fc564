"""Keypoint layouts (skeletons): names, flip partners, links, joint weights and OKS sigmas."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import KpmergeError, UsageError
from .jsonio import load_json

BUILTIN_ORDER = (
    "coco",
    "aic",
    "coco_aic",
    "crowdpose",
    "mpii",
    "halpe26",
    "halpe",
    "coco_wholebody",
    "posetrack18",
    "jhmdb",
    "ochuman",
)
"""Built-in layouts in registry order: detection prefers the earlier of two identical layouts."""

# Synonyms across the built-in datasets, as canonical name -> other spellings (SPEC 3.3).
ALIASES: dict[str, tuple[str, ...]] = {"head_top": ("top_head",), "neck": ("upper_neck",)}
# A source keypoint of the first kind maps to a target's `head` when the target has no head_top.
HEAD_FALLBACK = "head"

_SPACES = re.compile(r"[\s\-]+")


def normalize_name(name: str) -> str:
    """Keypoint name for matching: lower case, runs of spaces and dashes as one underscore."""
    return _SPACES.sub("_", name.strip()).lower()


def canonical_name(name: str) -> str:
    """Normalised name with known synonyms folded into one spelling (`top_head` -> `head_top`)."""
    norm = normalize_name(name)
    for canon, others in ALIASES.items():
        if norm in others:
            return canon
    return norm


@dataclass(frozen=True)
class Layout:
    """An ordered set of keypoints with their flip partners, links, joint weights and sigmas.

    Attributes:
        name: Layout name, e.g. `coco`.
        keypoints: Keypoint names in index order.
        swaps: Flip partner name of each keypoint (`""` when it flips onto itself).
        types: `upper`, `lower` or `""` for each keypoint.
        skeleton: Links as pairs of keypoint names.
        joint_weights: One weight per keypoint.
        sigmas: One OKS sigma per keypoint.
        colors: One RGB triple per keypoint (for MMPose's visualiser).
        skeleton_colors: One RGB triple per link.
        dataset_name: MMPose `dataset_name`.
        paper_info: Citation records, as MMPose keeps them.
        origin: Coordinate origin of files in this layout: 1 for 1-based (MATLAB) datasets such as
            MPII and JHMDB, whose keypoints and boxes are shifted to 0-based on read; else 0.
    """

    name: str
    keypoints: tuple[str, ...]
    swaps: tuple[str, ...]
    types: tuple[str, ...]
    skeleton: tuple[tuple[str, str], ...]
    joint_weights: tuple[float, ...]
    sigmas: tuple[float, ...]
    colors: tuple[tuple[int, int, int], ...] = ()
    skeleton_colors: tuple[tuple[int, int, int], ...] = ()
    dataset_name: str = ""
    paper_info: tuple[dict[str, Any], ...] = ()
    origin: int = 0
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_layout(self)
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(self.keypoints)})

    def __len__(self) -> int:
        return len(self.keypoints)

    def index(self, name: str) -> int:
        """Index of the keypoint called `name` (exact spelling, then normalised), or raise UsageError."""
        if name in self._index:
            return self._index[name]
        norm = normalize_name(name)
        hits = [i for i, n in enumerate(self.keypoints) if normalize_name(n) == norm]
        if len(hits) == 1:
            return hits[0]
        raise UsageError(f"layout {self.name} has no keypoint {name!r} (it has: {', '.join(self.keypoints)})")

    @property
    def flip_indices(self) -> list[int]:
        """Index of each keypoint's flip partner (itself when it has none)."""
        return [self._index[s] if s else i for i, s in enumerate(self.swaps)]

    @property
    def flip_pairs(self) -> list[list[int]]:
        """Unordered left/right pairs `[i, j]` with `i < j`."""
        return [[i, j] for i, j in enumerate(self.flip_indices) if i < j]

    @property
    def skeleton_ids(self) -> list[list[int]]:
        """Links as pairs of 0-based keypoint indices."""
        return [[self._index[a], self._index[b]] for a, b in self.skeleton]

    @property
    def upper_body_ids(self) -> list[int]:
        return [i for i, t in enumerate(self.types) if t == "upper"]

    @property
    def lower_body_ids(self) -> list[int]:
        return [i for i, t in enumerate(self.types) if t == "lower"]

    def same_content(self, other: Layout) -> bool:
        """True when both layouts agree on everything but their names."""
        return (self.keypoints, self.swaps, self.skeleton, self.joint_weights, self.sigmas) == (
            other.keypoints,
            other.swaps,
            other.skeleton,
            other.joint_weights,
            other.sigmas,
        )

    def to_dict(self) -> dict[str, Any]:
        """The layout in the JSON shape that `layout_from_dict` reads."""
        kps = []
        for i, n in enumerate(self.keypoints):
            kp: dict[str, Any] = {"name": n, "swap": self.swaps[i], "type": self.types[i]}
            if self.colors:
                kp["color"] = list(self.colors[i])
            kps.append(kp)
        links = []
        for i, (a, b) in enumerate(self.skeleton):
            link: dict[str, Any] = {"link": [a, b]}
            if self.skeleton_colors:
                link["color"] = list(self.skeleton_colors[i])
            links.append(link)
        return {
            "name": self.name,
            "dataset_name": self.dataset_name or self.name,
            "paper_info": list(self.paper_info),
            "keypoints": kps,
            "skeleton": links,
            "joint_weights": list(self.joint_weights),
            "sigmas": list(self.sigmas),
        } | ({"origin": self.origin} if self.origin else {})


def validate_layout(layout: Layout) -> None:
    """Raise UsageError unless names are unique, swaps symmetric, links valid and K values everywhere."""
    where = f"layout {layout.name}"
    k = len(layout.keypoints)
    if k == 0:
        raise UsageError(f"{where}: has no keypoints")
    seen: dict[str, str] = {}
    for n in layout.keypoints:
        if not isinstance(n, str) or not n:
            raise UsageError(f"{where}: keypoint names must be non-empty strings, got {n!r}")
        norm = normalize_name(n)
        if norm in seen:
            raise UsageError(f"{where}: keypoint name {n!r} is used twice (also as {seen[norm]!r})")
        seen[norm] = n
    names = set(layout.keypoints)
    for label, values in (
        ("swaps", layout.swaps),
        ("types", layout.types),
        ("joint_weights", layout.joint_weights),
        ("sigmas", layout.sigmas),
    ):
        if len(values) != k:
            raise UsageError(f"{where}: {label} has {len(values)} entries for {k} keypoints")
    for label, values in (("colors", layout.colors), ("skeleton_colors", layout.skeleton_colors)):
        expected = k if label == "colors" else len(layout.skeleton)
        if values and len(values) != expected:
            raise UsageError(f"{where}: {label} has {len(values)} entries, expected {expected}")
    for n, s in zip(layout.keypoints, layout.swaps, strict=True):
        if not s or s == n:
            continue
        if s not in names:
            raise UsageError(f"{where}: keypoint {n!r} swaps with {s!r}, which is not a keypoint")
        partner = layout.swaps[layout.keypoints.index(s)]
        if partner != n:
            raise UsageError(f"{where}: {n!r} swaps with {s!r}, but {s!r} swaps with {partner or 'itself'!r}")
    for a, b in layout.skeleton:
        for end in (a, b):
            if end not in names:
                raise UsageError(f"{where}: link {a!r}-{b!r} names {end!r}, which is not a keypoint")
    if layout.origin not in (0, 1) or isinstance(layout.origin, bool):
        raise UsageError(f"{where}: origin must be 0 or 1, got {layout.origin!r}")
    for label, values in (("joint_weights", layout.joint_weights), ("sigmas", layout.sigmas)):
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0 or v == float("inf"):
                raise UsageError(f"{where}: {label}[{i}] must be a finite number >= 0, got {v!r}")


def layout_from_dict(data: Any, source: str = "layout") -> Layout:
    """Build a Layout from its JSON shape (as the built-in files), or raise UsageError naming the place."""
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a JSON object, got {type(data).__name__}")
    for key in ("name", "keypoints", "joint_weights", "sigmas"):
        if key not in data:
            raise UsageError(f"{source}: $.{key}: missing")
    kps = data["keypoints"]
    if not isinstance(kps, list):
        raise UsageError(f"{source}: $.keypoints: expected a list")
    names, swaps, types, colors = [], [], [], []
    for i, kp in enumerate(kps):
        if isinstance(kp, str):
            kp = {"name": kp}
        if not isinstance(kp, dict) or not isinstance(kp.get("name"), str):
            raise UsageError(f"{source}: $.keypoints[{i}]: expected a name or an object with a name")
        for key in ("swap", "type"):
            if not isinstance(kp.get(key) or "", str):
                raise UsageError(f"{source}: $.keypoints[{i}].{key}: expected a string, got {kp[key]!r}")
        names.append(kp["name"])
        swaps.append(str(kp.get("swap", "") or ""))
        types.append(str(kp.get("type", "") or ""))
        if "color" in kp:
            colors.append(_color(kp["color"], f"{source}: $.keypoints[{i}].color"))
    links, link_colors = [], []
    if not isinstance(data.get("skeleton", []), list):
        raise UsageError(f"{source}: $.skeleton: expected a list of links, got {data['skeleton']!r}")
    for i, link in enumerate(data.get("skeleton", [])):
        ends = link.get("link") if isinstance(link, dict) else link
        if not isinstance(ends, list | tuple) or len(ends) != 2:
            raise UsageError(f"{source}: $.skeleton[{i}]: expected two keypoint names")
        if all(isinstance(e, int) and not isinstance(e, bool) for e in ends):
            if not all(0 <= e < len(names) for e in ends):
                raise UsageError(f"{source}: $.skeleton[{i}]: index out of range 0..{len(names) - 1}")
            ends = [names[e] for e in ends]
        if not all(isinstance(e, str) for e in ends):
            raise UsageError(f"{source}: $.skeleton[{i}]: expected two names or indices, got {ends!r}")
        links.append((str(ends[0]), str(ends[1])))
        if isinstance(link, dict) and "color" in link:
            link_colors.append(_color(link["color"], f"{source}: $.skeleton[{i}].color"))
    for key in ("joint_weights", "sigmas"):
        if not isinstance(data[key], list):
            raise UsageError(f"{source}: $.{key}: expected a list of numbers")
    if not isinstance(data["name"], str) or not data["name"]:
        raise UsageError(f"{source}: $.name: expected a non-empty string, got {data['name']!r}")
    paper = data.get("paper_info", [])
    return Layout(
        name=str(data["name"]),
        keypoints=tuple(names),
        swaps=tuple(swaps),
        types=tuple(types),
        skeleton=tuple(links),
        joint_weights=tuple(data["joint_weights"]),
        sigmas=tuple(data["sigmas"]),
        colors=tuple(colors) if len(colors) == len(names) else (),
        skeleton_colors=tuple(link_colors) if len(link_colors) == len(links) else (),
        dataset_name=str(data.get("dataset_name", data["name"])),
        paper_info=tuple(paper if isinstance(paper, list) else [paper]),
        origin=data.get("origin", 0),
    )


def _color(value: Any, where: str) -> tuple[int, int, int]:
    """An RGB triple of integers 0..255, or UsageError naming the place."""
    ok = isinstance(value, list | tuple) and len(value) == 3
    if not ok or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value):
        raise UsageError(f"{where}: expected [r, g, b] with integers 0..255, got {value!r}")
    return (value[0], value[1], value[2])


def builtin_layout_names() -> list[str]:
    """Names of the built-in layouts, in registry order."""
    return list(BUILTIN_ORDER)


def builtin_layout(name: str) -> Layout:
    """A new Layout object for the built-in layout `name`, or raise UsageError listing the known ones."""
    if name not in BUILTIN_ORDER:
        raise UsageError(
            f"unknown layout {name!r} (built-in: {', '.join(BUILTIN_ORDER)}; or give a layout JSON file)"
        )
    # One name per step, from kpmerge.data: when a folder named kpmerge (a clone) shadows the package,
    # `kpmerge` is a namespace package whose resources (a MultiplexedPath) take one name per joinpath
    # and do not hold the data folder.
    text = (resources.files("kpmerge.data") / "layouts" / f"{name}.json").read_text("utf-8")
    return layout_from_dict(json.loads(text), source=f"built-in layout {name}")


def load_layout(spec: str | Path | Layout) -> Layout:
    """A Layout from a built-in name, a path to a layout JSON file, or a Layout (returned as is)."""
    if isinstance(spec, Layout):
        return spec
    text = str(spec)
    if text in BUILTIN_ORDER:
        return builtin_layout(text)
    path = Path(text)
    if text.endswith(".json") or path.exists():
        if not path.exists():
            raise UsageError("layout file not found", file=path)
        try:
            data = load_json(path)
        except KpmergeError as exc:
            raise UsageError(f"cannot read layout JSON: {exc.message}", file=path) from None
        try:
            return layout_from_dict(data, source=str(path))
        except UsageError as exc:
            if exc.file is None and not exc.message.startswith(f"{path}: "):
                raise UsageError(exc.message, file=path) from None
            raise
    return builtin_layout(text)


def detect_layout(names: list[str] | None, k: int, candidates: list[Layout] | None = None) -> Layout:
    """The layout a file uses, from its category keypoint names or, when it has none, from K (SPEC 1.3).

    Names match position by position after normalisation and synonym folding (`head` also stands for
    `head_top`, as in CrowdPose files). Candidates that differ only in name (coco and ochuman) count as one,
    and the earlier one in registry order wins.

    Raises:
        KpmergeError: when no candidate fits, or several different ones do.
    """
    from .errors import KpmergeError

    pool = candidates if candidates is not None else [builtin_layout(n) for n in BUILTIN_ORDER]
    fits = [lay for lay in pool if len(lay) == k]
    if names:
        if len(names) != k:
            raise KpmergeError(f"the category names {len(names)} keypoints but annotations have {k}")
        fits = [
            lay
            for lay in fits
            if all(_same_for_detection(a, b) for a, b in zip(names, lay.keypoints, strict=True))
        ]
    distinct: list[Layout] = []
    for lay in fits:
        if not any(lay.same_content(d) for d in distinct):
            distinct.append(lay)
    if len(distinct) == 1:
        return distinct[0]
    how = "keypoint names" if names else f"K = {k} (the category has no keypoint names)"
    if not distinct:
        raise KpmergeError(f"no built-in layout fits the {how}; give --layout NAME or a layout JSON file")
    listed = ", ".join(d.name for d in distinct)
    raise KpmergeError(f"the {how} fit several layouts ({listed}); choose one with --layout")


def _same_for_detection(a: str, b: str) -> bool:
    ca, cb = canonical_name(a), canonical_name(b)
    if ca == cb:
        return True
    return {ca, cb} == {"head_top", HEAD_FALLBACK}
