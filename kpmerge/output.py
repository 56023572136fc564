"""The output folder, written atomically: annotations.json, metainfo.json, metainfo.py, manifest.json."""

from __future__ import annotations

import contextlib
import gzip as gzip_module
import os
import queue
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from . import __version__
from .build import AREA_FACTOR, Merged
from .errors import KpmergeError, UsageError
from .formats.coco import SourceTags, dataset_to_coco_chunks
from .handoff import can_fork, fork_with_memory_file, helpers_pay
from .jsonio import Chunks, dumps_pretty, no_gc
from .layouts import Layout
from .pools import trainable_mask

if TYPE_CHECKING:
    from .sampling import SamplingOptions

ANNOTATIONS = "annotations.json"
METAINFO_JSON = "metainfo.json"
METAINFO_PY = "metainfo.py"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


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


def layout_metainfo(layout: Layout) -> dict[str, Any]:
    """A layout's metainfo: names, flip indices and pairs, links, weights, sigmas, body halves."""
    return {
        "dataset_name": layout.name,
        "num_keypoints": len(layout),
        "keypoints": list(layout.keypoints),
        "flip_indices": layout.flip_indices,
        "flip_pairs": layout.flip_pairs,
        "skeleton": layout.skeleton_ids,
        "skeleton_names": [list(link) for link in layout.skeleton],
        "joint_weights": list(layout.joint_weights),
        "sigmas": list(layout.sigmas),
        "upper_body_ids": layout.upper_body_ids,
        "lower_body_ids": layout.lower_body_ids,
        "layout": layout.to_dict(),
    }


def metainfo(merged: Merged) -> dict[str, Any]:
    """metainfo.json: the target layout plus, per source, defined keypoints and evaluation indices."""
    out = layout_metainfo(merged.layout)
    out["sources"] = [
        {
            "name": s.name,
            "layout": s.layout,
            "defined_keypoints": s.mapping.defined,
            "eval_indices": s.eval_indices,
            "mapping": s.mapping.index_pairs(),
        }
        for s in merged.sources
    ]
    return out


def metainfo_py(merged: Merged) -> str:
    """metainfo.py: an MMPose `dataset_info` file (load with `metainfo=dict(from_file=...)`)."""
    lay = merged.layout
    names = ", ".join(s.name for s in merged.sources)
    lines = [
        f"# MMPose dataset_info written by kpmerge {merged.mode} of {names}.",
        "# Load it with metainfo=dict(from_file='.../metainfo.py').",
        "dataset_info = dict(",
        f"    dataset_name={lay.name!r},",
        f"    paper_info={_paper(lay)!r},",
        "    keypoint_info={",
    ]
    for i, name in enumerate(lay.keypoints):
        color = list(lay.colors[i]) if lay.colors else [255, 128, 0]
        lines.append(
            f"        {i}: dict(name={name!r}, id={i}, color={color!r}, type={lay.types[i]!r}, "
            f"swap={lay.swaps[i]!r}),"
        )
    lines.append("    },")
    lines.append("    skeleton_info={")
    for i, (a, b) in enumerate(lay.skeleton):
        color = list(lay.skeleton_colors[i]) if lay.skeleton_colors else [0, 255, 0]
        lines.append(f"        {i}: dict(link=({a!r}, {b!r}), id={i}, color={color!r}),")
    lines.append("    },")
    lines.append(f"    joint_weights={list(lay.joint_weights)!r},")
    lines.append(f"    sigmas={list(lay.sigmas)!r},")
    lines.append(")")
    lines.append("")
    lines.append("# Target keypoints each source defines (1 = annotated by that dataset, for loss masks).")
    lines.append("source_keypoints = {")
    lines += [f"    {s.name!r}: {s.mapping.defined!r}," for s in merged.sources]
    lines.append("}")
    lines.append(
        "# Positions of each source's own keypoints in this layout (MMPose output_keypoint_indices)."
    )
    lines.append("eval_indices = {")
    lines += [f"    {s.name!r}: {s.eval_indices!r}," for s in merged.sources]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _paper(layout: Layout) -> Any:
    papers = list(layout.paper_info)
    return papers[0] if len(papers) == 1 else papers


def trainable_pools(merged: Merged) -> list[np.ndarray]:
    """Per source, (n,) positions in the annotations array that training may draw: the instances
    MMPose 1.3 keeps in top-down mode (`kpmerge.pools.trainable_mask`)."""
    images = merged.dataset.images
    positions = np.flatnonzero(trainable_mask(merged.dataset.instances, images.widths, images.heights))
    owner = np.asarray(merged.source_index)[positions]
    return [positions[owner == i] for i in range(len(merged.sources))]


NEED_SIZES = ("MMPose", "Detectron2", "Ultralytics (kpmerge --export yolo)")
"""Trainers whose loaders read every image's width and height (MMPose's CocoDataset: `img['width']`)."""
LOAD_WITHOUT_SIZES = ("pycocotools",)
"""Tools that load an annotations file whose images lack width and height."""


def missing_sizes(merged: Merged) -> dict[str, Any] | None:
    """What the manifest says when images lack width or height (written with `allow_missing_sizes`):
    how many, per source, and which trainers cannot load the file; None when every image has both."""
    images = merged.dataset.images
    missing = np.isnan(images.widths) | np.isnan(images.heights)
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
    if exports:  # i14: the yolo export's counts
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
    name = ANNOTATIONS + ".gz" if gzip else ANNOTATIONS

    def annotations() -> bytes | Iterable[bytes]:
        chunks = annotations_chunks(merged, progress)
        if chunked and not gzip:
            return chunks
        data = b"".join(chunks)
        return gzip_module.compress(data, compresslevel=6, mtime=0) if gzip else data

    return {
        name: annotations,
        METAINFO_JSON: lambda: dumps_pretty(metainfo(merged)),
        METAINFO_PY: lambda: metainfo_py(merged).encode("utf-8"),
        MANIFEST: lambda: dumps_pretty(manifest(merged, sampling, annotations_file=name, exports=exports)),
    }


def check_output_path(out: str | Path, force: bool = False) -> Path:
    """The output folder as a Path; UsageError when it exists without `force` or cannot be made."""
    path = Path(out)
    if path.exists() and not force:
        raise UsageError("output exists (use --force to replace it)", file=path)
    if path.exists() and not path.is_dir():
        raise UsageError("output exists and is not a folder", file=path)
    parent = path.absolute().parent
    if not parent.is_dir():
        raise UsageError("the folder to hold the output does not exist", file=parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError("cannot write into this folder", file=parent)
    return path


def write_folder(
    files: dict[str, Callable[[], bytes | Iterable[bytes]]], out: str | Path, force: bool = False
) -> Path:
    """Write all files into `out` at once: into a temporary folder beside it, then one rename.

    A file's maker returns its bytes, or an iterable of consecutive chunks.

    On any failure nothing is left: no temporary folder, and with `force` the previous `out` intact.
    """
    path = check_output_path(out, force)
    parent = path.absolute().parent
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.kpmerge-", dir=parent))
    except OSError as exc:
        raise UsageError(f"cannot write into this folder: {exc.strerror or exc}", file=parent) from None
    backup: Path | None = None
    try:
        for name, make in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            data = make()
            if isinstance(data, bytes | bytearray):
                target.write_bytes(data)
            else:
                _write_chunks(target, data)
        if path.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{path.name}.kpmerge-old-", dir=parent))
            os.rename(path, backup / "old")
        os.rename(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if backup is not None and (backup / "old").exists() and not path.exists():
            os.rename(backup / "old", path)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
        if isinstance(exc, OSError):
            raise KpmergeError(f"cannot write output: {exc.strerror or exc}", file=path) from None
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    return path


PARALLEL_MIN_PIECES = 64
"""`Chunks` of at least this many pieces are made by two processes at once (where fork exists)."""


def _write_chunks(path: Path, chunks: Iterable[bytes]) -> None:
    """Write chunks in order; large `Chunks` are made from both ends at once, the last ones by a helper."""
    large = isinstance(chunks, Chunks) and len(chunks) >= PARALLEL_MIN_PIECES
    if large and helpers_pay() and can_fork() and _write_from_both_ends(path, chunks):
        return
    with open(path, "wb") as f:
        _write_in_thread(f, chunks)


def _write_in_thread(f: BinaryIO, chunks: Iterable[bytes]) -> None:
    """Write chunks to `f` in order; a thread does the writing while the next chunk is made."""
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
    failed: list[BaseException] = []

    def writer() -> None:
        while (chunk := pending.get()) is not None:
            if not failed:
                try:
                    f.write(chunk)
                except BaseException as exc:  # handed to the caller's thread below
                    failed.append(exc)

    thread = threading.Thread(target=writer, name="kpmerge-writer", daemon=True)
    thread.start()
    try:
        for chunk in chunks:
            if failed:
                break
            pending.put(chunk)
    finally:
        pending.put(None)
        thread.join()
    if failed:
        raise failed[0]


def _write_from_both_ends(path: Path, chunks: Chunks) -> bool:
    """Write `chunks` into `path`: this process makes pieces from the front, a forked helper from the back.

    The helper writes each piece it makes to a part file beside `path` and notes where in a shared
    table; once the two meet, its pieces are copied after this process's ones, in order. If the helper
    fails, this process makes the helper's pieces itself, so errors are the ones a plain write raises.
    False (nothing written) when no helper can be started (no memory for a fork, say).
    """
    n = len(chunks)
    # [front, back] then (offset, length) per piece: the front takes pieces front, front+1, ...; the
    # back takes back-1, back-2, ...; both under a lock on the table, a memory file both map.
    start = np.concatenate([[0, n], np.full(2 * n, -1)]).astype(np.int64)
    started = fork_with_memory_file("kpmerge-pieces", start.tobytes())
    if started is None:
        return False
    pid, table_fd, mapping = started
    table = np.frombuffer(mapping, dtype=np.int64)
    places = table[2:].reshape(n, 2)
    part = path.with_name(path.name + ".part")
    if pid == 0:  # the helper: never returns
        code = 1
        try:
            with open(part, "wb") as f, no_gc():
                offset = 0
                while (i := _take(table_fd, table, back=True)) is not None:
                    data = chunks.make(i)
                    f.write(data)
                    places[i] = offset, len(data)
                    offset += len(data)
            code = 0
        finally:
            os._exit(code)
    reaped = False
    try:
        told = n  # the helper's pieces told to progress: told..n-1

        def front() -> Iterator[bytes]:
            nonlocal told
            while (i := _take(table_fd, table, back=False)) is not None:
                data = chunks.make(i)
                if chunks.progress is not None:
                    done = told
                    while done > 0 and places[done - 1, 1] >= 0:
                        done -= 1
                    chunks.progress(chunks.records(i) + sum(chunks.records(j) for j in range(done, told)))
                    told = done
                yield data

        with open(path, "wb") as f, no_gc():
            _write_in_thread(f, front())
        _, status = os.waitpid(pid, 0)
        reaped = True
        first = int(table[0])
        rest = range(first, n)
        if os.waitstatus_to_exitcode(status) == 0 and (places[first:, 1] >= 0).all():
            with open(part, "rb") as src, open(path, "r+b") as dst:
                at = dst.seek(0, os.SEEK_END)
                for i in rest:
                    _copy_range(src.fileno(), dst.fileno(), int(places[i, 0]), at, int(places[i, 1]))
                    at += int(places[i, 1])
        else:
            with open(path, "ab") as f:
                _write_in_thread(f, Chunks([chunks.pieces[i] for i in rest]))
        if chunks.progress is not None and told > first:
            chunks.progress(sum(chunks.records(j) for j in range(first, told)))
    finally:
        if not reaped:  # an error or an interrupt here: the helper's work is not needed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        os.close(table_fd)  # the shared table is unmapped when the last array over it goes
        part.unlink(missing_ok=True)
    return True


def _take(fd: int, table: np.ndarray, back: bool) -> int | None:
    """Claim the next piece from the back or the front of the table; None when none is left."""
    import fcntl  # POSIX only; this path runs only where fork exists

    fcntl.lockf(fd, fcntl.LOCK_EX)
    try:
        front, end = int(table[0]), int(table[1])
        if front >= end:
            return None
        if back:
            table[1] = end - 1
            return end - 1
        table[0] = front + 1
        return front
    finally:
        fcntl.lockf(fd, fcntl.LOCK_UN)


def _copy_range(src: int, dst: int, src_at: int, dst_at: int, size: int) -> None:
    """Copy `size` bytes between files in the kernel (copy_file_range), else through memory."""
    while size > 0:
        try:
            done = os.copy_file_range(src, dst, size, src_at, dst_at)
        except OSError:
            done = 0
        if done <= 0:
            done = os.pwrite(dst, os.pread(src, min(size, 1 << 24), src_at), dst_at)
        src_at, dst_at, size = src_at + done, dst_at + done, size - done


def write_output(
    merged: Merged,
    out: str | Path,
    force: bool = False,
    sampling: SamplingOptions | None = None,
    gzip: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write the output files of a merge or combine into the folder `out`, atomically.

    `annotations.json` is written in chunks; `progress` gets the records each chunk holds.
    """
    return write_folder(output_files(merged, sampling, gzip, progress, chunked=True), out, force)
