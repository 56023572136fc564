"""Exports for other trainers: each turns a Merged into files (name -> bytes) under a subfolder of OUT."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..build import Merged
from ..errors import UsageError
from ..output import missing_sizes
from .detectron2 import detectron2_files
from .yolo import yolo_files

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
    missing = missing_sizes(merged)
    if missing is None:
        return
    name, count = next(iter(missing["sources"].items()))
    raise UsageError(
        f"--export {', '.join(names)} needs every image's width and height: source {name} has "
        f"{count} images without them (give --image-dir {name}=DIR, recipe key image_dir, to read them "
        "from the images)"
    )


def export_files(merged: Merged, names: Iterable[str]) -> dict[str, Callable[[], bytes]]:
    """The files of the chosen exports, made now (so errors come before anything is written).

    Raises:
        UsageError: for an unknown export or data an export cannot take (e.g. missing image sizes).
    """
    files: dict[str, Callable[[], bytes]] = {}
    chosen = check_exports(names)
    if chosen:
        check_sizes(merged, chosen)
    for name in chosen:
        for path, data in EXPORTS[name](merged).items():
            files[path] = lambda data=data: data
    return files


__all__ = ["EXPORTS", "check_exports", "check_sizes", "export_files"]
