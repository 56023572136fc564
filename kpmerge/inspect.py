"""Keypoint statistics and validation of annotation files and kpmerge output folders (`kpmerge inspect`).

Every statistic is an array reduction over the columnar `Instances`; the readers report to a
recording sink (`strict=False`), in the same single pass, so rule violations become `Problem`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import UsageError
from .formats import path_format, read_dataset
from .inspect_folder import inspect_output
from .inspect_names import mapping_preview, name_overlap
from .inspect_plot import plot_report
from .inspect_report import KINDS, FileReport, Report
from .inspect_stats import inspect_dataset
from .inspect_text import format_report
from .layouts import Layout, load_layout

__all__ = [
    "KINDS",
    "FileReport",
    "Report",
    "format_report",
    "inspect",
    "inspect_dataset",
    "inspect_path",
    "plot_report",
]


def inspect(paths: Sequence[str | Path], layout: str | Path | None = None) -> Report:
    """Inspect annotation files (COCO-style, raw AIC) and kpmerge output folders.

    Args:
        paths: Files or output folders, in order; the first is the target of the `auto` mapping report.
        layout: Layout of every file input (a built-in name or a layout JSON file); default: detected.

    Returns:
        A Report; problems in the data are in it, not raised.

    Raises:
        KpmergeError: for a file that cannot be read (not JSON, wrong types, missing fields).
        UsageError: for no paths or an unknown layout.
    """
    if not paths:
        raise UsageError("give at least one file or output folder")
    forced = load_layout(layout) if layout is not None else None
    files = tuple(inspect_path(p, forced) for p in paths)
    if len(files) < 2:
        return Report(files)
    return Report(files, name_overlap(files), tuple(mapping_preview(f, files[0]) for f in files[1:]))


def inspect_path(path: str | Path, layout: Layout | None = None) -> FileReport:
    """Inspect one file or kpmerge output folder (see `inspect`)."""
    p = Path(path)
    if p.is_dir() and path_format(p) is None:  # a dataset folder (YOLO) is read as its train split
        return inspect_output(p)
    return inspect_dataset(read_dataset(p, strict=False), str(path), layout)
