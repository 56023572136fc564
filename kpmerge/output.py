"""The output folder, written atomically: annotations.json, metainfo.json, metainfo.py, manifest.json."""

from __future__ import annotations

import contextlib
import queue
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import __version__
from .build import AREA_FACTOR, Merged
from .errors import UsageError
from .folder import ANNOTATIONS, MANIFEST, MANIFEST_VERSION, METAINFO_JSON, METAINFO_PY, annotations_name
from .formats import find_format
from .formats.coco_writer import dataset_to_coco_chunks
from .instances import Images
from .jsonwrite import Chunks, dumps_pretty
from .metainfo import metainfo, metainfo_py
from .publish import Staging, as_write_error, check_output
from .tags import SourceTags

if TYPE_CHECKING:
    from .sampling import SamplingOptions


GZIP_LEVEL = 1
"""`--gzip`'s compression level, fixed so the bytes are reproducible. On kpmerge's JSON, level 1 is about
6x faster than level 6 for a file about 17% larger (docs/output.md)."""


class GzipStream:
    """One gzip member made piece by piece, whatever the pieces: the bytes Python's
    `gzip.GzipFile(compresslevel=GZIP_LEVEL, mtime=0, filename="")` writes (no time stamp, no file
    name, OS byte 255 on every platform)."""

    def __init__(self) -> None:
        self._packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._crc = 0
        self._size = 0
        self._header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"  # mtime 0; XFL 4: fastest; OS unknown

    def compress(self, data: bytes) -> bytes:
        """The next compressed bytes for `data`."""
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        head, self._header = self._header, b""
        return head + self._packer.compress(data)

    def finish(self) -> bytes:
        """The last compressed bytes and the trailer (CRC-32 and size)."""
        head, self._header = self._header, b""
        tail = self._crc.to_bytes(4, "little") + (self._size & 0xFFFFFFFF).to_bytes(4, "little")
        return head + self._packer.flush() + tail


class GzipChunks:
    """Chunks that `write_folder` writes compressed (`GzipStream`) in its writer thread: zlib runs without
    the GIL, so compressing overlaps making the next chunk."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        """The compressed bytes in pieces, for callers that write them some other way."""
        stream = GzipStream()
        for chunk in self.chunks:
            yield stream.compress(chunk)
        yield stream.finish()


def gzip_bytes(data: bytes) -> bytes:
    """`data` compressed as `--gzip` writes it."""
    stream = GzipStream()
    return stream.compress(data) + stream.finish()


def annotations_bytes(merged: Merged) -> bytes:
    """The merged dataset as COCO keypoint JSON."""
    return b"".join(annotations_chunks(merged))


def annotations_chunks(merged: Merged, progress: Callable[[int], None] | None = None) -> Chunks:
    """`annotations_bytes` as consecutive chunks; `progress` gets the records each chunk holds."""
    lay = merged.layout
    info = {
        "description": f"kpmerge {merged.mode} of {', '.join(s.name for s in merged.sources)}",
        "layout": lay.name,
    }
    skeleton = [[a + 1, b + 1] for a, b in lay.skeleton_ids]
    names = [s.name for s in merged.sources]
    return dataset_to_coco_chunks(
        merged.dataset,
        list(lay.keypoints),
        skeleton,
        info,
        progress=progress,
        image_tags=SourceTags(names, merged.image_source_index, merged.image_source_ids),
        annotation_tags=SourceTags(names, merged.source_index, merged.source_ids),
    )


def trainable_pools(merged: Merged) -> list[np.ndarray]:
    """Per source, (n,) positions in the annotations array that training may draw (`Merged.trainable_pools`:
    the instances MMPose 1.3 keeps in top-down mode)."""
    return list(merged.trainable_pools)


NEED_SIZES = ("MMPose", "Detectron2", "Ultralytics (kpmerge --export yolo)")
"""Trainers whose loaders read every image's width and height (MMPose's CocoDataset: `img['width']`)."""
LOAD_WITHOUT_SIZES = ("pycocotools",)
"""Tools that load an annotations file whose images lack width and height."""


def missing_size_mask(images: Images) -> npt.NDArray[np.bool_]:
    """(M,) the images without width or height (NaN: what the readers leave unknown)."""
    return np.isnan(images.widths) | np.isnan(images.heights)


def require_image_sizes(
    sources: Iterable[tuple[str, str | None, npt.NDArray[np.bool_]]], needed_by: str, opt_out: bool = False
) -> None:
    """UsageError naming the first source whose images lack width or height: how many, who needs them
    and the fix.

    Args:
        sources: Per source, its name, its format and `missing_size_mask` of its images.
        needed_by: Who needs the sizes, with its verb (`"MMPose and Detectron2 need"`).
        opt_out: Say that `--allow-missing-sizes` writes the output without them.
    """
    for name, fmt, missing in sources:
        count = int(np.count_nonzero(missing))
        if not count:
            continue
        known = find_format(fmt) if fmt is not None else None
        if known is not None and not known.sizes_in_file and not known.no_image_dir:
            fix = f"give --image-dir {name}=DIR (recipe key image_dir) to read them from the images"
        else:
            fix = "add them to the file's images"
        if opt_out:
            fix += ", or write without them with --allow-missing-sizes (recipe key allow_missing_sizes)"
        raise UsageError(
            f"source {name}: {count} of {len(missing)} images have no width/height, which {needed_by}: {fix}"
        )


def source_size_masks(merged: Merged) -> list[tuple[str, str | None, npt.NDArray[np.bool_]]]:
    """Per source of `merged`, its name, format and `missing_size_mask` of its images (for
    `require_image_sizes`)."""
    missing = missing_size_mask(merged.dataset.images)
    return [(s.name, s.meta.get("format"), missing[slice(*s.image_range)]) for s in merged.sources]


def missing_sizes(merged: Merged) -> dict[str, Any] | None:
    """What the manifest says when images lack width or height (written with `allow_missing_sizes`):
    how many, per source, and which trainers cannot load the file; None when every image has both."""
    missing = missing_size_mask(merged.dataset.images)
    if not missing.any():
        return None
    per_source = np.bincount(merged.image_source_index[missing], minlength=len(merged.sources))
    return {
        "images": int(np.count_nonzero(missing)),
        "sources": {s.name: int(n) for s, n in zip(merged.sources, per_source.tolist(), strict=True) if n},
        "cannot_load": list(NEED_SIZES),
        "can_load": list(LOAD_WITHOUT_SIZES),
    }


def manifest(
    merged: Merged,
    sampling: SamplingOptions | None = None,
    annotations_file: str = ANNOTATIONS,
    exports: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """manifest.json: per source the input, counts by reason, where its records are and how to sample
    them (trainable pool, factor, batch ratio); `sampling` gives the factors, ratios, seed and batch
    size (default: factor 1, no batch composition, seed 0); `exports`, what exports counted (e.g. the
    people the yolo export leaves out), under `exports`."""
    pools = trainable_pools(merged)
    entries = []
    for s, pool in zip(merged.sources, pools, strict=True):
        entry = _source_entry(s)
        entry["factor"] = sampling.factor(s.name) if sampling else 1.0
        entry["batch_ratio"] = sampling.batch_ratio(s.name) if sampling else None
        entry["pool"] = pool.tolist()
        entries.append(entry)
    out: dict[str, Any] = {
        "kpmerge_manifest": MANIFEST_VERSION,
        "kpmerge_version": __version__,
        "mode": merged.mode,
        "layout": merged.layout.name,
        "num_keypoints": len(merged.layout),
        "annotations_file": annotations_file,
        "images": len(merged.dataset.images),
        "annotations": len(merged.dataset.instances),
    }
    sizes = missing_sizes(merged)
    if sizes is not None:  # only then: outputs of inputs with sizes stay as they were
        out["missing_image_sizes"] = sizes
    out["sampling"] = {
        "seed": sampling.seed if sampling else 0,
        "batch_size": sampling.batch_size if sampling else None,
    }
    out["sources"] = entries
    if exports:
        out["exports"] = exports
    return out


def _source_entry(s: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": s.name}
    entry.update(s.meta)
    entry["layout"] = s.layout
    entry["images"] = {"read": s.images_read, "written": s.images_written, "range": list(s.image_range)}
    entry["annotations"] = {
        "read": s.annotations_read,
        "written": s.annotations_written,
        "not_written": dict(sorted(s.not_written.items())),
        "range": list(s.annotation_range),
    }
    entry["area"] = {
        "computed": s.area_computed,
        "rule": f"bbox w * h * {AREA_FACTOR}" if s.area_computed else "kept",
    }
    entry["mapping"] = {
        "pairs": s.mapping.index_pairs(),
        "aliases": [list(a) for a in s.mapping.aliases],
        "dropped": [s.mapping.source.keypoints[i] for i in s.mapping.dropped],
        "unmapped": [s.mapping.target.keypoints[i] for i in s.mapping.unmapped],
    }
    entry["defined_keypoints"] = s.mapping.defined
    entry["eval_indices"] = s.eval_indices
    entry["notes"] = list(s.notes)
    return entry


def output_files(
    merged: Merged,
    sampling: SamplingOptions | None = None,
    gzip: bool = False,
    progress: Callable[[int], None] | None = None,
    chunked: bool = False,
    exports: dict[str, Any] | None = None,
) -> dict[str, Callable[[], bytes | Iterable[bytes]]]:
    """Each output file's name and a function making its bytes (`sampling`: see `manifest`).

    With `chunked`, `annotations.json` comes as an iterable of chunks (for `write_folder`, which writes
    them as they are made); `progress` gets the records each chunk holds. With `gzip`, the annotations
    are written as `annotations.json.gz` (no time stamp in the header, so the bytes stay reproducible)
    and the manifest names that file.
    """
    name = annotations_name(gzip)

    def annotations() -> bytes | Iterable[bytes]:
        chunks = annotations_chunks(merged, progress)
        if chunked:
            return GzipChunks(chunks) if gzip else chunks
        data = b"".join(chunks)
        return gzip_bytes(data) if gzip else data

    return {
        name: annotations,
        METAINFO_JSON: lambda: dumps_pretty(metainfo(merged)),
        METAINFO_PY: lambda: metainfo_py(merged).encode("utf-8"),
        MANIFEST: lambda: dumps_pretty(manifest(merged, sampling, annotations_file=name, exports=exports)),
    }


def check_output_path(out: str | Path, force: bool = False) -> Path:
    """The output folder as a Path; UsageError when it exists without `force` or cannot be made (what
    dead runs left beside it is removed first: see `publish`)."""
    return check_output(out, force)


def write_folder(
    files: dict[str, Callable[[], bytes | Iterable[bytes]]],
    out: str | Path,
    force: bool = False,
    published: list[Path] | None = None,
) -> Path:
    """Write all files into `out` at once: into a temporary folder beside it, then one move.

    A file's maker returns its bytes, or an iterable of consecutive chunks. Without `force`, nothing
    that is at `out` when the move happens is replaced (UsageError instead); see `publish`.

    On any failure nothing is left: no temporary folder, and with `force` the previous `out` intact.
    `published` gets `out` appended once it is in place (see `kpmerge.publish.Staging`).
    """
    path = check_output_path(out, force)
    with Staging(path, force, record=published) as stage:
        try:
            for name, make in files.items():
                target = stage.path / name
                target.parent.mkdir(parents=True, exist_ok=True)
                data = make()
                if isinstance(data, bytes | bytearray):
                    target.write_bytes(data)
                elif isinstance(data, GzipChunks):
                    write_chunks(target, data.chunks, GzipStream())
                else:
                    write_chunks(target, data)
            stage.publish()
        except OSError as exc:
            raise as_write_error(exc, path) from None
    return path


def write_chunks(path: Path, chunks: Iterable[bytes], stream: GzipStream | None = None) -> None:
    """Write chunks to a new file in order; a thread writes while the next chunk is made (and compresses
    it first through `stream`, when given).

    Any exception (an interrupt too) stops both at once: the thread is told to stop, the queue it
    reads is emptied so nothing blocks, and the exception goes on to the caller.
    """
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
    failed: list[BaseException] = []
    with open(path, "wb") as f:

        def writer() -> None:
            while (chunk := pending.get()) is not None:
                if not failed:
                    try:
                        f.write(stream.compress(chunk) if stream else chunk)
                    except BaseException as exc:  # handed to the caller's thread below
                        failed.append(exc)
            if stream and not failed:
                try:
                    f.write(stream.finish())
                except BaseException as exc:
                    failed.append(exc)

        thread = threading.Thread(target=writer, name="kpmerge-writer", daemon=True)
        thread.start()
        try:
            for chunk in chunks:
                if failed:
                    break
                pending.put(chunk)
            pending.put(None)
            thread.join()
        except BaseException:
            failed.append(InterruptedError())
            _stop(pending)
            thread.join(timeout=WRITER_STOP_SECONDS)
            raise
    if failed:
        raise failed[0]


WRITER_STOP_SECONDS = 1.0
"""How long a failed or interrupted write waits for the thread to finish the chunk it is writing."""


def _stop(pending: queue.Queue[bytes | None]) -> None:
    """Empty the queue and put the end mark in it, without blocking (this thread is its only writer)."""
    with contextlib.suppress(queue.Empty):
        while True:
            pending.get_nowait()
    pending.put_nowait(None)


def write_output(
    merged: Merged,
    out: str | Path,
    force: bool = False,
    sampling: SamplingOptions | None = None,
    gzip: bool = False,
    progress: Callable[[int], None] | None = None,
    allow_missing_sizes: bool = False,
    published: list[Path] | None = None,
) -> Path:
    """Write the output files of a merge or combine into the folder `out`, atomically.

    `annotations.json` is written in chunks; `progress` gets the records each chunk holds; `published`
    (if given) gets `out` once it is in place (see `write_folder`).

    Raises:
        UsageError: when images lack width or height (MMPose's and Detectron2's loaders need them),
            unless `allow_missing_sizes` (as `Job.allow_missing_sizes` and `--allow-missing-sizes`).
    """
    if not allow_missing_sizes:
        require_image_sizes(source_size_masks(merged), "MMPose and Detectron2 need", opt_out=True)
    files = output_files(merged, sampling, gzip, progress, chunked=True)
    return write_folder(files, out, force, published=published)
