"""`kpmerge inspect --plot`: labelled rates per keypoint and the name overlap in one PNG (matplotlib)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .errors import UsageError
from .inspect_names import name_key
from .inspect_report import Report
from .job import SourceSpec, source_inputs
from .publish import check_outside_inputs, write_file


def plot_report(report: Report, path: str | Path, published: list[Path] | None = None) -> Path:
    """Write one PNG: per-keypoint labelled rates per input (or per source of an output folder) as bars,
    and the keypoint name overlap as a presence grid. Needs matplotlib (`pip install kpmerge[plot]`).
    `published` gets `path` appended once it is in place.

    Raises:
        UsageError: when `path` is, holds or lies inside an input of the report, or when matplotlib is
            not installed.
    """
    inputs: list[Path] = []
    folders: list[Path] = []
    for f in report.files:
        if f.path:
            read, images = source_inputs(SourceSpec(path=Path(f.path)))
            inputs += read
            folders += images
    check_outside_inputs(path, inputs, folders)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install kpmerge[plot]") from None
    names, series = _series(report)
    k, s = len(names), len(series)
    fig = Figure(figsize=(max(8.0, 0.35 * k * max(1, s) ** 0.5 + 2), 7.5 + 0.25 * s), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1 + 0.3 * s])
    width = 0.8 / max(1, s)
    xs = np.arange(k)
    for j, (label, present, rates) in enumerate(series):
        heights = np.where(present, rates, 0.0)
        top.bar(xs - 0.4 + width * (j + 0.5), heights, width, label=label)
    top.set_xticks(xs, names, rotation=90, fontsize=7)
    top.set_ylim(0, 1)
    top.set_ylabel("labelled rate (v > 0)")
    top.set_title("labelled keypoints per input")
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    grid = np.array([present for _, present, _ in series], dtype=float).reshape(s, k)
    bottom.imshow(grid, aspect="auto", cmap="Greens", vmin=0, vmax=1.2)
    bottom.set_xticks(xs, names, rotation=90, fontsize=7)
    bottom.set_yticks(np.arange(s), [label for label, _, _ in series], fontsize=7)
    bottom.set_xticks(xs[:-1] + 0.5, minor=True)
    bottom.set_yticks(np.arange(s - 1) + 0.5, minor=True)
    bottom.grid(which="minor", color="white", linewidth=1)
    bottom.tick_params(which="minor", length=0)
    bottom.set_title("keypoint names each input has (defined keypoints for output sources)")
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100, metadata={"Software": None})
    return write_file(png.getvalue(), path, True, published)  # --plot has always replaced the file


def _series(report: Report) -> tuple[list[str], list[tuple[str, np.ndarray, np.ndarray]]]:
    """Union names (by canonical name) and per series: label, presence mask, labelled rate."""
    order: dict[str, str] = {}
    raw: list[tuple[str, list[str], list[float], list[bool]]] = []
    for f in report.files:
        label = Path(f.path).name or f.path
        if f.sources:
            for s in f.sources:
                rates = [k.labelled / s.annotations if s.annotations else 0.0 for k in s.keypoints]
                present = [k.defined is not False for k in s.keypoints]
                raw.append((f"{label}:{s.name}", list(f.keypoint_names), rates, present))
        else:
            rates = [k.labelled / f.annotations if f.annotations else 0.0 for k in f.keypoints]
            raw.append((label, list(f.keypoint_names), rates, [True] * len(f.keypoints)))
    keyed = []
    for label, names, rates, present in raw:
        taken: set[str] = set()
        keys = []
        for n in names:
            key = name_key(n, taken)
            taken.add(key)
            keys.append(key)
            order.setdefault(key, n)
        keyed.append((label, keys, rates, present))
    index = {key: i for i, key in enumerate(order)}
    series = []
    for label, keys, rates, present in keyed:
        mask = np.zeros(len(order), dtype=bool)
        values = np.zeros(len(order))
        pos = [index[key] for key in keys]
        mask[pos] = present
        values[pos] = rates
        series.append((label, mask, values))
    return list(order.values()), series
