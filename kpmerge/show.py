"""Contact sheets (`kpmerge show`): a few instances of every source drawn in its layout (SPEC 8).

One row per source; each cell is an instance's box region, cut from its image when the image is found,
else a plain canvas with the box outline. Links are coloured by side (left, right, centre), visible
keypoints are filled dots, occluded ones hollow, unlabelled ones not drawn. Drawing uses Pillow and its
built-in font, so the same inputs give the same PNG bytes.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson
from PIL import Image

from .build import Merged
from .crops import cut_cells, region
from .errors import KpmergeError, UsageError
from .folder import METAINFO_JSON, is_output_folder, read_output_folder
from .formats.coco import read_coco
from .instances import Instances
from .job import SourceSpec, load_source, parse_source, reads_yolo, source_inputs
from .layouts import Layout, layout_from_dict
from .output import trainable_pools, write_folder
from .pools import trainable_mask
from .publish import Staging, as_write_error, check_output, check_outside_inputs, write_file
from .sheet_draw import draw_sheet

MAX_PER_SOURCE, CELL_RANGE = 100, (48, 1024)


@dataclass(frozen=True, eq=False)
class SheetRow:
    """One source of a contact sheet.

    Attributes:
        name: Source name (led by the output folder's name when several paths are given).
        layout: The layout the instances are drawn in (the target's for an output folder).
        annotations: The source's annotations.
        pool: Its trainable instances (the manifest's pool for an output folder).
        defined: Indices of the keypoints the source defines in `layout`.
        instances: The instances drawn (at most `per_source`, spread over the pool).
        ids: Each drawn instance's original annotation id.
        files: Each drawn instance's image file name (as in the annotations).
        root: Where the image files are, or None.
    """

    name: str
    layout: Layout
    annotations: int
    pool: int
    defined: tuple[int, ...]
    instances: Instances
    ids: tuple[object, ...]
    files: tuple[str, ...]
    root: Path | None = None


@dataclass(frozen=True, eq=False)
class Sheet:
    """A drawn contact sheet.

    Attributes:
        image: The sheet (RGB).
        rows: The sources, in order.
        on_image: Cells drawn on their image (the rest on a plain canvas).
        notes: Images found but not readable.
    """

    image: Image.Image
    rows: tuple[SheetRow, ...]
    on_image: int
    notes: tuple[str, ...] = ()

    @property
    def drawn(self) -> int:
        return sum(len(r.instances) for r in self.rows)

    def png(self) -> bytes:
        """The sheet as PNG bytes (no time stamp or other varying chunk)."""
        buf = io.BytesIO()
        self.image.save(buf, format="PNG")
        return buf.getvalue()


def show(
    paths: Sequence[str | Path | SourceSpec],
    out: str | Path,
    images: str | Path | Mapping[str, str | Path] | None = None,
    per_source: int = 8,
    seed: int = 0,
    names: bool = False,
    cell: int = 160,
    force: bool = False,
    published: list[Path] | None = None,
) -> Sheet:
    """Draw a contact sheet (see `contact_sheet`) and write it as a PNG file atomically (`published`
    gets `out` appended once it is in place).

    Raises:
        UsageError: as `contact_sheet`; when `out` exists without `force`, or cannot be written.
    """
    roots = [Path(r) for r in (images.values() if isinstance(images, Mapping) else [images]) if r]
    inputs: list[Path] = []
    for p in paths:
        read, folders = source_inputs(p if isinstance(p, SourceSpec) else SourceSpec(path=Path(p)))
        inputs += read
        roots += folders
    check_outside_inputs(out, inputs, roots)
    check_output(out, force, folder=False)
    sheet = contact_sheet(paths, images, per_source, seed, names, cell)
    write_file(sheet.png(), out, force, published)
    return sheet


def write_with_sheet(
    merged: Merged,
    files: dict[str, Callable[[], bytes | Iterable[bytes]]],
    out: Path,
    sheet: Path,
    force: bool = False,
    published: list[Path] | None = None,
) -> None:
    """Write the output folder (`output.write_folder`) of `merged` and its contact sheet at `sheet`.

    The sheet is drawn and staged first, so that a failure or an interrupt while drawing leaves nothing
    written; it is moved into place right after the folder.
    """
    png = merged_sheet(merged).png()
    with Staging(check_output(sheet, force, folder=False), force, folder=False, record=published) as staged:
        try:
            staged.path.write_bytes(png)
        except OSError as exc:
            raise as_write_error(exc, sheet) from None
        write_folder(files, out, force, published)
        try:
            staged.publish()
        except OSError as exc:
            raise as_write_error(exc, sheet) from None


def named_sources(texts: Sequence[str]) -> list[str | SourceSpec]:
    """The PATH arguments of `kpmerge show` as `show` takes them: `NAME=FILE` names one source."""
    specs: list[str | SourceSpec] = []
    for text in texts:
        name, path = parse_source(text)
        specs.append(text if name is None else SourceSpec(path=path, name=name))
    return specs


def contact_sheet(
    paths: Sequence[str | Path | SourceSpec],
    images: str | Path | Mapping[str, str | Path] | None = None,
    per_source: int = 8,
    seed: int = 0,
    names: bool = False,
    cell: int = 160,
) -> Sheet:
    """One row per source, `per_source` instances each, drawn in the source's layout.

    Args:
        paths: kpmerge output folders (every source in the target layout, with the manifest's pools;
            any folder that is not a YOLO dataset counts as one), and annotation files, YOLO datasets
            or SourceSpecs (each in its own layout, read as `merge` reads them).
        images: Image root for every source, or per source name (key `*` for the others); a cell is
            cut from ROOT / the record's `file_name` when that file exists.
        per_source: Instances per source, picked with `seed` from its trainable pool, one in each of
            `per_source` equal stretches of the pool.
        seed: Seed of the picks.
        names: Write keypoint names beside the dots.
        cell: Width and height of a cell in pixels.

    Raises:
        UsageError: bad options, an image root that is not a folder, a root for an unknown source.
        KpmergeError: an unreadable input, or no instance to draw.
    """
    if not paths:
        raise UsageError("give at least one output folder or annotation file")
    if not 1 <= per_source <= MAX_PER_SOURCE:
        raise UsageError(f"per_source must be 1..{MAX_PER_SOURCE}, got {per_source}")
    if not CELL_RANGE[0] <= cell <= CELL_RANGE[1]:
        raise UsageError(f"cell must be {CELL_RANGE[0]}..{CELL_RANGE[1]} pixels, got {cell}")
    roots = _roots(images)
    rows: list[SheetRow] = []
    many = len(paths) > 1
    for p in paths:
        spec = p if isinstance(p, SourceSpec) else None
        path = spec.path if spec is not None else Path(p)
        if spec is None and _as_output_folder(path):
            rows += _output_rows(path, per_source, seed, path.name if many else "")
        else:
            rows.append(_input_row(spec or SourceSpec(path=path), per_source, seed))
    return _sheet(rows, roots, seed, names, cell)


def merged_sheet(
    merged: Merged, per_source: int = 8, seed: int = 0, names: bool = False, cell: int = 160
) -> Sheet:
    """The contact sheet of a merge or combine result before it is written: the same picks and
    drawing as `contact_sheet` of the output folder it makes (no images).

    Raises:
        KpmergeError: when no source has a trainable instance.
    """
    if not 1 <= per_source <= MAX_PER_SOURCE:
        raise UsageError(f"per_source must be 1..{MAX_PER_SOURCE}, got {per_source}")
    inst, files = merged.dataset.instances, merged.dataset.images.file_names
    rows = []
    for s, pool in zip(merged.sources, trainable_pools(merged), strict=True):
        chosen = pick(pool.astype(np.int64), per_source, seed, s.name)
        picked = inst[chosen]
        rows.append(
            SheetRow(
                name=s.name,
                layout=merged.layout,
                annotations=s.annotation_range[1] - s.annotation_range[0],
                pool=len(pool),
                defined=tuple(s.mapping.defined),
                instances=picked,
                ids=tuple(merged.source_ids[chosen].tolist()),
                files=tuple(str(f) for f in files[np.maximum(picked.image_index, 0)]),
            )
        )
    return _sheet(rows, {}, seed, names, cell)


def _sheet(rows: list[SheetRow], roots: dict[str, Path], seed: int, names: bool, cell: int) -> Sheet:
    """Draw the rows, each cell on its image where `roots` (per source name, `*` for the others) has it."""
    known = [r.name for r in rows]
    for name in roots:
        if name != "*" and name not in known:
            raise UsageError(f"--images: no source named {name!r} (sources: {', '.join(known)})")
    rows = [replace(r, root=roots.get(r.name, roots.get("*"))) for r in rows]
    if not any(len(r.instances) for r in rows):
        raise KpmergeError("no instance to draw: no source has a trainable instance")
    wanted = [
        ((r, c), row.root / name, region(row.instances, c))
        for r, row in enumerate(rows)
        if row.root is not None
        for c, name in enumerate(row.files)
        if (row.root / name).is_file()
    ]
    backgrounds, notes = cut_cells(wanted, cell)
    image = draw_sheet(rows, backgrounds, cell, names, seed)
    return Sheet(image, tuple(rows), len(backgrounds), tuple(notes))


def _as_output_folder(path: Path) -> bool:
    """Whether `show` draws `path` as a kpmerge output folder: an output folder, or any other folder
    that is not a dataset the readers take (a YOLO dataset folder), to be refused as not an output."""
    return is_output_folder(path) or (path.is_dir() and not reads_yolo(path))


def _roots(images: str | Path | Mapping[str, str | Path] | None) -> dict[str, Path]:
    if images is None:
        return {}
    given = {"*": images} if isinstance(images, str | Path) else dict(images)
    roots = {name: Path(root) for name, root in given.items()}
    for root in roots.values():
        if not root.is_dir():
            raise UsageError("image root not found (expected a folder)", file=root)
    return roots


def pick(pool: npt.NDArray[np.int64], n: int, seed: int, name: str) -> npt.NDArray[np.int64]:
    """At most `n` entries of `pool`, one drawn uniformly in each of `n` equal stretches, in pool order.

    The draw is a function of (seed, name), so a source's picks do not depend on the other sources.
    """
    size = len(pool)
    m = min(n, size)
    if m == 0:
        return pool[:0]
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    lo = np.ceil(np.arange(m) * size / m).astype(np.int64)
    hi = np.ceil(np.arange(1, m + 1) * size / m).astype(np.int64)
    return pool[lo + (rng.random(m) * (hi - lo)).astype(np.int64)]


def _output_rows(folder: Path, per_source: int, seed: int, prefix: str) -> list[SheetRow]:
    """Rows of a kpmerge output folder: its sources in the target layout, picks from the manifest's pools."""
    out = read_output_folder(folder)
    meta, manifest = out.metainfo or {}, out.manifest or {}  # both present: read_output_folder requires them
    try:
        layout = layout_from_dict(meta["layout"], source=str(folder / METAINFO_JSON))
        defined = {s["name"]: s["defined_keypoints"] for s in meta["sources"]}
        entries = [(s["name"], s["annotations"]["range"], s["pool"]) for s in manifest["sources"]]
        ann_file = out.annotations
    except (KeyError, TypeError, AttributeError) as exc:
        raise KpmergeError(f"not a kpmerge metainfo/manifest pair (missing {exc})", file=folder) from None
    dataset = read_coco(ann_file)
    inst, files = dataset.instances, dataset.images.file_names
    rows = []
    for name, (a, b), pool in entries:
        chosen = pick(np.asarray(pool, dtype=np.int64), per_source, seed, name)
        if len(chosen) and not (chosen.min() >= 0 and chosen.max() < len(inst)):
            raise KpmergeError(f"source {name}: pool positions beyond the annotations", file=folder)
        picked = inst[chosen]
        rows.append(
            SheetRow(
                name=f"{prefix}:{name}" if prefix else name,
                layout=layout,
                annotations=int(b) - int(a),
                pool=len(pool),
                defined=tuple(defined.get(name, range(len(layout)))),
                instances=picked,
                ids=tuple(_source_id(e, i) for e, i in zip(picked.extra, picked.ids, strict=True)),
                files=tuple(str(f) for f in files[np.maximum(picked.image_index, 0)]),
            )
        )
    return rows


def _source_id(extra: bytes, fallback: object) -> object:
    """The annotation's `source_id` (its id in the source), else its id."""
    try:
        return orjson.loads(b"{" + extra + b"}").get("source_id", fallback)
    except orjson.JSONDecodeError:
        return fallback


def _input_row(spec: SourceSpec, per_source: int, seed: int) -> SheetRow:
    """The row of one annotation file, in its own layout, read as `merge` reads it."""
    source = load_source(spec, checksum=False)
    inst = source.dataset.instances
    images = source.dataset.images
    ok = trainable_mask(inst, images.widths, images.heights)  # the manifest's pool rule
    pool = np.flatnonzero(ok)
    picked = inst[pick(pool, per_source, seed, source.name)]
    files = source.dataset.images.file_names
    return SheetRow(
        name=source.name,
        layout=source.layout,
        annotations=len(inst),
        pool=len(pool),
        defined=tuple(range(len(source.layout))),
        instances=picked,
        ids=tuple(picked.ids),
        files=tuple(str(f) for f in files[np.maximum(picked.image_index, 0)]),
    )
