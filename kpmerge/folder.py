"""A kpmerge output folder: the names of its files, and reading it back (for inspect, project, show)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import KpmergeError, UsageError
from .jsonio import load_json
from .layouts import Layout, layout_from_dict

ANNOTATIONS = "annotations.json"
ANNOTATIONS_GZ = "annotations.json.gz"
METAINFO_JSON = "metainfo.json"
METAINFO_PY = "metainfo.py"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
"""The manifest version this kpmerge writes and reads (`kpmerge_manifest`)."""

_SHAPES: dict[str, dict[str, type]] = {
    METAINFO_JSON: {"layout": dict, "sources": list},
    MANIFEST: {"kpmerge_manifest": int, "annotations": int, "sources": list},
}
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}


def annotations_name(gzip: bool) -> str:
    """The name of the annotations file: `annotations.json`, or `annotations.json.gz` with `gzip`."""
    return ANNOTATIONS_GZ if gzip else ANNOTATIONS


@dataclass(frozen=True)
class OutputFolder:
    """A kpmerge output folder as read back.

    Attributes:
        path: The folder.
        annotations: Its annotations file (plain or gzip).
        metainfo: The parsed `metainfo.json` (an object with `layout` and `sources`), None if absent.
        manifest: The parsed `manifest.json` (an object with `kpmerge_manifest`, `annotations` and
            `sources`), None if absent.
    """

    path: Path
    annotations: Path
    metainfo: dict[str, Any] | None
    manifest: dict[str, Any] | None

    @property
    def layout(self) -> Layout | None:
        """The target layout from `metainfo.json` (None without one)."""
        if self.metainfo is None:
            return None
        return layout_from_dict(self.metainfo["layout"], source=str(self.path / METAINFO_JSON))

    @property
    def missing(self) -> tuple[str, ...]:
        """The metadata files the folder lacks."""
        return tuple(n for n, d in ((METAINFO_JSON, self.metainfo), (MANIFEST, self.manifest)) if d is None)


def is_output_folder(path: str | Path) -> bool:
    """Whether `path` is a folder holding a kpmerge manifest or annotations file."""
    p = Path(path)
    return p.is_dir() and any((p / name).is_file() for name in (MANIFEST, ANNOTATIONS, ANNOTATIONS_GZ))


def read_output_folder(path: str | Path, metadata: bool = True) -> OutputFolder:
    """The files of the output folder `path`, metadata checked for shape and version.

    Args:
        path: The folder.
        metadata: Require `metainfo.json` and `manifest.json` (else they may be missing: None).

    Raises:
        UsageError: `path` is not a kpmerge output folder, or (with `metadata`) lacks a metadata file.
        KpmergeError: a metadata file is not valid JSON, has the wrong shape or an unknown version.
    """
    folder = Path(path)
    if not is_output_folder(folder):
        raise UsageError(f"not a kpmerge output folder: no {ANNOTATIONS}", file=folder)
    parsed = {}
    for name in (METAINFO_JSON, MANIFEST):
        file = folder / name
        if not file.is_file():
            if metadata:
                raise UsageError(f"not a kpmerge output folder: no {name}", file=folder)
            parsed[name] = None
            continue
        parsed[name] = _checked(load_json(file), file, _SHAPES[name])
    manifest = parsed[MANIFEST]
    if manifest is not None and manifest["kpmerge_manifest"] != MANIFEST_VERSION:
        got = manifest["kpmerge_manifest"]
        message = f"expected manifest version {MANIFEST_VERSION} (the one this kpmerge reads), got {got!r}"
        raise KpmergeError(message, folder / MANIFEST, "$.kpmerge_manifest")
    return OutputFolder(folder, _annotations_file(folder, manifest), parsed[METAINFO_JSON], manifest)


def _annotations_file(folder: Path, manifest: dict[str, Any] | None) -> Path:
    """The annotations file the manifest names (one of the two names kpmerge writes), else the one there."""
    if manifest is not None and "annotations_file" in manifest:
        name = manifest["annotations_file"]
        if name not in (ANNOTATIONS, ANNOTATIONS_GZ):
            message = f"expected {ANNOTATIONS!r} or {ANNOTATIONS_GZ!r}, got {name!r}"
            raise KpmergeError(message, folder / MANIFEST, "$.annotations_file")
        if not (folder / name).is_file():
            raise UsageError(f"not a kpmerge output folder: no {name} (the manifest names it)", file=folder)
        return folder / name
    for name in (ANNOTATIONS, ANNOTATIONS_GZ):
        if (folder / name).is_file():
            return folder / name
    raise UsageError(f"not a kpmerge output folder: no {ANNOTATIONS}", file=folder)


def _checked(data: object, file: Path, keys: dict[str, type]) -> dict[str, Any]:
    """`data` if it is an object with these keys, of these types, whose `sources` are objects."""
    if not isinstance(data, dict):
        raise KpmergeError(f"expected object, got {_json_type(data)}", file, "$")
    for key, kind in keys.items():
        if key not in data:
            raise KpmergeError("expected a value, got none (missing)", file, f"$.{key}")
        if type(data[key]) is not kind:
            raise KpmergeError(f"expected {_JSON_TYPES[kind]}, got {_json_type(data[key])}", file, f"$.{key}")
    for i, source in enumerate(data["sources"]):
        if not isinstance(source, dict):
            raise KpmergeError(f"expected object, got {_json_type(source)}", file, f"$.sources[{i}]")
    return data


def _json_type(value: object) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)
