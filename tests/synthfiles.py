"""Input files the tests build themselves (from `kpmerge.synth`), written into a test's tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kpmerge.synth_styles import synth_mpii, synth_raw_aic, synth_style, write_image_headers


def write_json(path: Path, doc: Any) -> Path:
    """Write `doc` as JSON to `path` (parents made) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def style_file(folder: Path, dataset: str = "coco", name: str | None = None, **kwargs: Any) -> Path:
    """A COCO-style file shaped like `dataset`'s (see `kpmerge.synth.synth_style`); `kwargs` go there."""
    return write_json(folder / f"{name or dataset}.json", synth_style(dataset, **kwargs))


def raw_aic_file(folder: Path, name: str = "aic_raw", **kwargs: Any) -> tuple[Path, Path]:
    """A raw AI Challenger file and the folder of its images' headers (for their sizes)."""
    records, sizes = synth_raw_aic(**kwargs)
    return write_json(folder / f"{name}.json", records), write_image_headers(folder / f"{name}_images", sizes)


def mpii_file(folder: Path, name: str = "mpii", **kwargs: Any) -> tuple[Path, Path]:
    """An MMPose MPII file and the folder of its images' headers (for their sizes)."""
    records, sizes = synth_mpii(**kwargs)
    return write_json(folder / f"{name}.json", records), write_image_headers(folder / f"{name}_images", sizes)


def load(path: Path) -> Any:
    """The JSON value in `path`."""
    return json.loads(path.read_text())
