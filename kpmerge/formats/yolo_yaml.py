"""The dataset yaml of an Ultralytics YOLO-pose dataset: found, parsed, checked, and its layout.

Read as Ultralytics reads it (`ultralytics.data.utils.check_det_dataset`): PyYAML's safe loader, `names`
as a list or a mapping (or `nc`), `kpt_shape: [K, 2 | 3]`, optional `flip_idx`, `kpt_names: {class:
[names]}` and `kpt_oks_sigmas`. One difference: a relative `path` is taken from the yaml's folder (Ultralytics
takes it from the working directory, then its datasets folder), so a dataset reads the same from anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import KpmergeError, UsageError
from ..layouts import BUILTIN_ORDER, Layout, builtin_layout, detect_layout

YAML_SUFFIXES = (".yaml", ".yml")
_NOT_SPLITS = frozenset({"path", "download", "names", "kpt_names", "yaml_file"})


@dataclass(frozen=True)
class DataYaml:
    """A YOLO-pose dataset yaml, checked.

    Attributes:
        file: The yaml file (for messages and as the base of a relative `path`).
        root: The dataset root.
        splits: Split name -> its entries as written (a string or a list of strings).
        k: Keypoints per row (`kpt_shape[0]`).
        ndim: Values per keypoint, 2 (`x y`) or 3 (`x y v`).
        flip_idx: Flip partner of each keypoint, or None when the yaml has none.
        names: Class id -> class name.
        kpt_names: Class id -> its keypoint names (only the classes the yaml names).
        sigmas: `kpt_oks_sigmas`, or None.
    """

    file: Path
    root: Path
    splits: dict[str, str | list[str]]
    k: int
    ndim: int
    flip_idx: tuple[int, ...] | None
    names: dict[int, str]
    kpt_names: dict[int, tuple[str, ...]] = field(default_factory=dict)
    sigmas: tuple[float, ...] | None = None


def is_yolo_path(path: str | Path) -> bool:
    """Whether `path` names a YOLO dataset: a `.yaml`/`.yml` file, or a folder holding `data.yaml` or a
    yaml with `kpt_shape`."""
    p = Path(path)
    if p.suffix.lower() in YAML_SUFFIXES:
        return True
    return p.is_dir() and bool(_folder_yamls(p))


def find_yaml(path: str | Path) -> Path:
    """The dataset yaml of `path` (the file itself, or the one yaml of the folder).

    Raises:
        UsageError: when nothing or several yamls are found, or the path does not exist.
    """
    p = Path(path)
    if p.is_dir():
        found = _folder_yamls(p)
        if len(found) != 1:
            listed = ", ".join(f.name for f in found)
            what = (
                f"several dataset yamls ({listed}); name one"
                if found
                else "no data.yaml (or yaml with kpt_shape)"
            )
            raise UsageError(f"a YOLO dataset folder needs one dataset yaml, found {what}", file=p)
        return found[0]
    if not p.exists():
        raise UsageError("file not found", file=p)
    if p.suffix.lower() not in YAML_SUFFIXES:
        raise UsageError("a yolo source is a dataset yaml (.yaml, .yml) or a folder holding one", file=p)
    return p


def _folder_yamls(folder: Path) -> list[Path]:
    if (folder / "data.yaml").is_file():
        return [folder / "data.yaml"]
    found = []
    for f in sorted(folder.iterdir()):
        if f.suffix.lower() in YAML_SUFFIXES and f.is_file():
            try:
                if "kpt_shape" in f.read_text("utf-8", errors="replace"):
                    found.append(f)
            except OSError:
                continue
    return found


def load_yaml(path: Path) -> Any:
    """The parsed yaml (PyYAML's safe loader, as Ultralytics), or KpmergeError naming the file."""
    import yaml

    try:
        text = path.read_text("utf-8", errors="ignore")
    except OSError as exc:
        raise UsageError(f"cannot read: {exc.strerror or exc}", file=path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KpmergeError(f"not valid YAML: {' '.join(str(exc).split())}", file=path) from None
    if isinstance(data, dict) and "None" in data.values():  # Ultralytics reads the string None as null
        data = {k: None if v == "None" else v for k, v in data.items()}
    return data


def parse_data_yaml(data: Any, file: str | Path) -> DataYaml:
    """Check a parsed dataset yaml and resolve its root (no disk access).

    Raises:
        KpmergeError: naming the file and key: missing `kpt_shape` or `names`, wrong types, a `flip_idx`
            that is not a permutation of 0..K-1 pairing keypoints, `kpt_names` of the wrong length.
    """
    f = Path(file)

    def fail(key: str, message: str) -> KpmergeError:
        return KpmergeError(message, file=f, json_path=key)

    if not isinstance(data, dict):
        raise KpmergeError("expected a YAML mapping (a dataset yaml)", file=f)
    root = data.get("path")
    if root is not None and not isinstance(root, str):
        raise fail("path", f"expected the dataset root as a string, got {root!r}")
    splits: dict[str, str | list[str]] = {}
    for key, value in data.items():
        if key in _NOT_SPLITS or value in (None, "", []):
            continue
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            splits[str(key)] = value
        elif key in ("train", "val", "test"):
            raise fail(str(key), f"expected an image folder, a .txt list or a list of them, got {value!r}")
    shape = data.get("kpt_shape")
    if shape is None:
        raise fail("kpt_shape", "missing (a YOLO-pose dataset yaml gives kpt_shape: [K, 2 or 3])")
    if not (isinstance(shape, list) and len(shape) == 2 and all(_is_int(v) for v in shape)) or not (
        shape[0] >= 1 and shape[1] in (2, 3)
    ):
        raise fail("kpt_shape", f"expected [K, 2] or [K, 3] with K >= 1, got {shape!r}")
    k, ndim = int(shape[0]), int(shape[1])
    flip = _flip_idx(data.get("flip_idx"), k, fail)
    names = _names(data, fail)
    kpt_names = _kpt_names(data.get("kpt_names"), k, fail)
    sigmas = data.get("kpt_oks_sigmas")
    if sigmas is not None and not (
        isinstance(sigmas, list) and len(sigmas) == k and all(_is_number(s) and s >= 0 for s in sigmas)
    ):
        raise fail("kpt_oks_sigmas", f"expected {k} numbers >= 0, got {sigmas!r}")
    return DataYaml(
        file=f,
        root=f.parent / root if root else f.parent,
        splits=splits,
        k=k,
        ndim=ndim,
        flip_idx=flip,
        names=names,
        kpt_names=kpt_names,
        sigmas=tuple(float(s) for s in sigmas) if sigmas is not None else None,
    )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _flip_idx(flip: Any, k: int, fail: Any) -> tuple[int, ...] | None:
    if flip is None or flip == []:
        return None
    if not (isinstance(flip, list) and all(_is_int(i) for i in flip)) or sorted(flip) != list(range(k)):
        raise fail("flip_idx", f"expected a permutation of 0..{k - 1} (one entry per keypoint), got {flip!r}")
    bad = [i for i, j in enumerate(flip) if flip[j] != i]
    if bad:
        i = bad[0]
        raise fail(
            "flip_idx",
            f"keypoint {i} flips to {flip[i]} but {flip[i]} flips to {flip[flip[i]]}: expected pairs",
        )
    return tuple(flip)


def _names(data: dict[str, Any], fail: Any) -> dict[int, str]:
    names = data.get("names")
    if names is None:
        nc = data.get("nc")
        if not _is_int(nc) or nc < 1:
            raise fail("names", "missing (give names: [..] or nc: N)")
        return {i: f"class_{i}" for i in range(nc)}
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names:
        raise fail("names", f"expected a list or a mapping of class names, got {names!r}")
    try:
        out = {int(key): str(value) for key, value in names.items()}
    except (TypeError, ValueError):
        raise fail("names", f"expected integer class ids, got {list(names)!r}") from None
    if sorted(out) != list(range(len(out))):
        raise fail("names", f"expected class ids 0..{len(out) - 1}, got {sorted(out)!r}")
    return out


def _kpt_names(value: Any, k: int, fail: Any) -> dict[int, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail("kpt_names", f"expected {{class: [names]}}, got {value!r}")
    out = {}
    for key, names in value.items():
        if not (isinstance(names, list) and len(names) == k and all(isinstance(n, str) and n for n in names)):
            raise fail(f"kpt_names.{key}", f"expected {k} keypoint names, got {names!r}")
        try:
            out[int(key)] = tuple(names)
        except (TypeError, ValueError):
            raise fail(f"kpt_names.{key}", "expected an integer class id") from None
    return out


def yaml_layout(spec: DataYaml, class_id: int) -> tuple[Layout, tuple[str, ...]]:
    """The layout of the class's keypoints, and a note when it is not a built-in one.

    From `kpt_names` when present (the built-in layout with those names and flips, else one made of
    them); else the built-in layout whose K and flip permutation match (COCO's 17 with COCO's
    `flip_idx` is `coco`); else a layout made from the yaml, `kp0..kp{K-1}`, flips from `flip_idx`.
    """
    k = spec.k
    flip = list(spec.flip_idx) if spec.flip_idx is not None else list(range(k))
    names = spec.kpt_names.get(class_id)
    if names is not None:
        try:
            lay = detect_layout(list(names), k)
            if lay.flip_indices == flip:
                return replace(lay, origin=0), ()  # YOLO coordinates are 0-based whatever the dataset
        except KpmergeError:
            pass
        return _made_layout(spec, names, flip), (
            f"layout made from {spec.file.name}'s kpt_names and flip_idx (no built-in layout has them); "
            "`auto` maps it by name",
        )
    fits: list[Layout] = []
    if spec.flip_idx is not None:
        for name in BUILTIN_ORDER:
            lay = builtin_layout(name)
            if len(lay) == k and lay.flip_indices == flip and not any(lay.same_content(f) for f in fits):
                fits.append(lay)
    if len(fits) == 1:
        return replace(fits[0], origin=0), ()
    why = (
        f"several built-in layouts have K = {k} and this flip_idx ({', '.join(f.name for f in fits)})"
        if fits
        else f"no built-in layout has K = {k} and this flip_idx"
        if spec.flip_idx is not None
        else "it has no flip_idx"
    )
    placeholder = tuple(f"kp{i}" for i in range(k))
    return _made_layout(spec, placeholder, flip), (
        f"{spec.file.name} has no kpt_names and {why}: keypoints are named kp0..kp{k - 1} by position, so "
        "`auto` maps them by index onto another such layout only; add kpt_names, give --layout, or "
        "--mapping by index",
    )


def _made_layout(spec: DataYaml, names: Sequence[str], flip: list[int]) -> Layout:
    k = spec.k
    stem = spec.file.stem if spec.file.stem != "data" else spec.file.resolve().parent.name
    sigmas = spec.sigmas if spec.sigmas is not None else (1.0 / k,) * k  # Ultralytics' default for K != 17
    return Layout(
        name=f"yolo_{stem}",
        keypoints=tuple(names),
        swaps=tuple(names[j] if j != i else "" for i, j in enumerate(flip)),
        types=("",) * k,
        skeleton=(),
        joint_weights=(1.0,) * k,
        sigmas=tuple(sigmas),
    )


def choose_class(spec: DataYaml, class_id: int | str | None) -> int:
    """The class to read: `class_id` (an id or a class name), or the only class.

    Raises:
        UsageError: for an unknown class, or several classes and no choice (listing them).
    """
    listed = ", ".join(f"{i} {n}" for i, n in sorted(spec.names.items()))
    if class_id is None:
        if len(spec.names) == 1:
            return next(iter(spec.names))
        raise UsageError(
            f"names: several classes ({listed}); choose one with --class NAME=ID (recipe: class)",
            file=spec.file,
        )
    if isinstance(class_id, str) and not class_id.strip().isdigit():
        hits = [i for i, n in spec.names.items() if n == class_id]
        if hits:
            return hits[0]
    elif _is_int(class_id) or isinstance(class_id, str):
        cid = int(class_id)
        if cid in spec.names:
            return cid
    raise UsageError(f"names: no class {class_id!r} (classes: {listed})", file=spec.file)
