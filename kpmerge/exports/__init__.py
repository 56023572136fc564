"""Exports for other trainers: each turns a Merged into files (name -> bytes) under a subfolder of OUT."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..build import Merged
from ..errors import UsageError
from ..output import require_image_sizes, source_size_masks
from .detectron2 import detectron2_files
from .yolo import FOLDER, yolo_export, yolo_files

EXPORTS: dict[str, Callable[[Merged], dict[str, bytes]]] = {
    "yolo": yolo_files,
    "detectron2": detectron2_files,
}
"""Export name -> function making its files (paths relative to the output folder)."""


def check_exports(names: Iterable[str]) -> tuple[str, ...]:
    """The export names, each once, in the order given; UsageError for an unknown one."""
    out: list[str] = []
    for name in names:
        if name not in EXPORTS:
            raise UsageError(f"unknown export {name!r} (known: {', '.join(EXPORTS)})")
        if name not in out:
            out.append(name)
    return tuple(out)


def check_sizes(merged: Merged, names: Iterable[str]) -> None:
    """UsageError when an image lacks width or height: every export needs them (YOLO divides by them,
    Detectron2's loader reads them), so no export is made from a file written without them."""
    require_image_sizes(source_size_masks(merged), f"--export {', '.join(names)} needs")


def export_files(
    merged: Merged, names: Iterable[str], yolo_keep_empty: bool = False
) -> dict[str, Callable[[], bytes]]:
    """The files of the chosen exports, made now (so errors come before anything is written).

    Raises:
        UsageError: for an unknown export or data an export cannot take (e.g. missing image sizes).
    """
    return export_outputs(merged, names, yolo_keep_empty)[0]


def export_outputs(
    merged: Merged, names: Iterable[str], yolo_keep_empty: bool = False
) -> tuple[dict[str, Callable[[], bytes]], dict[str, dict[str, object]]]:
    """The files of the chosen exports and, per export that counts people, its counts for the manifest.

    Args:
        merged: The merged dataset.
        names: Export names.
        yolo_keep_empty: The yolo export keeps people with no labelled keypoint as detection-only rows.

    Raises:
        UsageError: for an unknown export or data an export cannot take (e.g. missing image sizes).
    """
    files: dict[str, Callable[[], bytes]] = {}
    summaries: dict[str, dict[str, object]] = {}
    chosen = check_exports(names)
    if chosen:
        check_sizes(merged, chosen)
    for name in chosen:
        if name == "yolo":  # the yolo export's counts go into the manifest
            export = yolo_export(merged, keep_empty=yolo_keep_empty)
            made = {f"{FOLDER}/{path}": data for path, data in export.files.items()}
            summaries[name] = export.summary()
        else:
            made = EXPORTS[name](merged)
        for path, data in made.items():
            files[path] = lambda data=data: data
    return files, summaries


__all__ = ["EXPORTS", "check_exports", "check_sizes", "export_files", "export_outputs"]
