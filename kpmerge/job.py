"""A whole run: read the sources, merge or combine them, write the output folder."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .build import Merged, Source, combine, merge
from .errors import KpmergeError, UsageError
from .exports import check_exports, export_files
from .formats.detect import read_dataset
from .handoff import can_fork, fork_with_memory_file, helpers_pay, read_object, write_object
from .instances import Dataset
from .layouts import Layout, detect_layout, load_layout
from .mapping import MappingSpec
from .output import check_output_path, output_files, trainable_pools, write_folder
from .sampling import SamplingOptions

MODES = ("merge", "combine")
FORMAT_LAYOUTS = {"aic": "aic", "mpii": "mpii", "coco_wholebody": "coco_wholebody"}
"""Formats that always hold one layout."""


@dataclass(frozen=True)
class SourceSpec:
    """One input as a user names it.

    Attributes:
        path: The annotation file.
        name: Source name (default: the file stem).
        format: `coco`, `aic`, `mpii` or `coco_wholebody` (default: detected from the content).
        layout: Built-in layout name or layout JSON file (default: detected from names or K).
        mapping: `"auto"` or explicit `[source, target]` entries.
        image_prefix: Prepended to image file names.
        image_dir: Folder of the images, to read sizes for raw AIC.
        label: How the path is shown in the manifest (default: as given).
        factor: Dataset-level sampling factor (slots per epoch = round(pool * factor)).
        batch_ratio: Share of every batch (None: no batch composition; give it for all sources or none).
    """

    path: Path
    name: str | None = None
    format: str | None = None
    layout: str | Path | None = None
    mapping: MappingSpec = "auto"
    image_prefix: str = ""
    image_dir: Path | None = None
    label: str | None = None
    factor: float = 1.0
    batch_ratio: float | None = None

    @property
    def source_name(self) -> str:
        return self.name or _stem(self.path)


@dataclass(frozen=True)
class Job:
    """Everything one `merge` or `combine` needs."""

    mode: str
    sources: tuple[SourceSpec, ...]
    output: Path
    target: str | Path | None = None
    force: bool = False
    drop_empty: bool = False
    drop_crowd: bool = False
    options: dict[str, object] = field(default_factory=dict)
    gzip: bool = False
    seed: int = 0
    batch_size: int | None = None
    exports: tuple[str, ...] = ()


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".json"):
        name = name.removesuffix(suffix)
    return name


def load_source(spec: SourceSpec, checksum: bool = True) -> Source:
    """Read one source: its file, format, layout; facts for the manifest (path, sha256, format, origin).

    Coordinates of a layout with origin 1 (MPII, JHMDB) are shifted to 0-based here. Without
    `checksum`, the manifest's sha256 is left None (for a caller that takes it itself).
    """
    # The checksum is taken in a thread while the file is parsed (hashlib releases the GIL).
    with ThreadPoolExecutor(max_workers=1) as pool:
        sha256 = pool.submit(_sha256, spec.path) if checksum else None
        try:
            dataset = read_dataset(spec.path, spec.format, spec.image_dir)
        except BaseException:
            if sha256 is not None:
                sha256.cancel()
            raise
        digest = sha256.result() if sha256 is not None else None
    k = dataset.instances.k
    if spec.layout is not None:
        layout = load_layout(spec.layout)
        if len(layout) != k and len(dataset.instances):
            raise UsageError(
                f"layout {layout.name} has {len(layout)} keypoints but the file has {k}", file=spec.path
            )
    elif dataset.format in FORMAT_LAYOUTS:
        layout = load_layout(FORMAT_LAYOUTS[dataset.format])
    else:
        names = list(dataset.keypoint_names) if dataset.keypoint_names else None
        try:
            layout = detect_layout(names, k)
        except KpmergeError as exc:
            raise KpmergeError(exc.message, file=spec.path, json_path="$.categories") from None
    origin = layout.origin
    if origin:
        dataset, layout = to_zero_based(dataset, origin), replace(layout, origin=0)
    meta = {
        "path": spec.label if spec.label is not None else spec.path.as_posix(),
        "sha256": digest,
        "format": dataset.format,
        "coordinate_origin": origin,
    }
    return Source(
        name=spec.source_name,
        dataset=dataset,
        layout=layout,
        mapping=spec.mapping,
        image_prefix=spec.image_prefix,
        meta=meta,
    )


def to_zero_based(dataset: Dataset, origin: int) -> Dataset:
    """The dataset with `origin` subtracted from x, y of labelled keypoints and from box x, y."""
    inst = dataset.instances
    keypoints = inst.keypoints.copy()
    keypoints[:, :, :2] -= np.where(keypoints[:, :, 2:] > 0, float(origin), 0.0)
    boxes = inst.boxes.copy()
    boxes[:, :2] -= origin
    return replace(dataset, instances=replace(inst, keypoints=keypoints, boxes=boxes))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sampling_options(job: Job) -> SamplingOptions:
    """The job's seed, batch size, factors and batch ratios, checked (UsageError when they cannot work)."""
    opts = SamplingOptions(
        seed=job.seed,
        batch_size=job.batch_size,
        factors={s.source_name: s.factor for s in job.sources},
        batch_ratios={s.source_name: s.batch_ratio for s in job.sources if s.batch_ratio is not None},
    )
    opts.check([s.source_name for s in job.sources])
    return opts


PARALLEL_MIN_BYTES = 32 * 2**20
"""Inputs after the first of at least this size in all are read in helper processes (where fork exists)."""


Progress = Callable[[str, int, int], None]
"""`progress(step, done, total)`: a step starts with `done=0`, then reports each part it finished."""


def load_sources(
    specs: Sequence[SourceSpec],
    parallel: bool | None = None,
    progress: Progress | None = None,
    checksum: bool = True,
) -> list[Source]:
    """`load_source` of every spec, in order; large inputs are read side by side on several cores.

    The first source is read here while forked helper processes (at most one per spare core) read
    the next ones and leave them in memory files. A helper that fails is retried here, so errors are
    the ones a plain sequential read raises, in source order.

    Args:
        specs: The sources.
        parallel: Force (True) or forbid (False) helper processes; None decides by input size.
        progress: Told of each source read (step `read`).
        checksum: Take each file's sha256 (else left None, for a caller that takes it later).
    """
    if progress is not None:
        progress("read", 0, len(specs))
        step = progress
        done: Callable[[Source], Source] = lambda src: (step("read", 1, len(specs)), src)[1]  # noqa: E731
    else:
        done = lambda src: src  # noqa: E731
    helpers = min(len(specs) - 1, max(1, (os.cpu_count() or 1) - 1))
    if parallel is None:
        parallel = helpers_pay() and sum(_size(s.path) for s in specs[1:]) >= PARALLEL_MIN_BYTES
    if not parallel or helpers < 1 or not can_fork():
        return [done(load_source(s, checksum)) for s in specs]
    children = [_fork_load(spec, checksum) for spec in specs[1 : 1 + helpers]]
    collected: set[int] = set()
    try:
        out = [done(load_source(specs[0], checksum))]
        for spec, child in zip(specs[1 : 1 + helpers], children, strict=True):
            result = None
            if child is not None:
                result = _collect(*child)
                collected.add(child[0])
            out.append(done(result or load_source(spec, checksum)))
        out += [done(load_source(s, checksum)) for s in specs[1 + helpers :]]
    finally:
        for pid, fd in filter(None, children):
            os.close(fd)
            if pid not in collected:  # an error or an interrupt here: the helper's work is not needed
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _reap(pid)
    return out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _fork_load(spec: SourceSpec, checksum: bool) -> tuple[int, int] | None:
    """Start a helper process that reads `spec` and leaves the Source (or None) in a memory file.

    None when no helper can be started (no memory for a fork, say): the caller reads `spec` itself.
    """
    started = fork_with_memory_file("kpmerge-source")
    if started is None:
        return None
    pid, fd, _ = started
    if pid == 0:  # the helper: never returns
        try:
            try:
                result = load_source(spec, checksum)
            except BaseException:
                result = None
            write_object(fd, result)
        finally:
            os._exit(0)
    return pid, fd


def _collect(pid: int, fd: int) -> Source | None:
    """The helper's Source, its arrays backed by the memory file (None when it failed)."""
    _reap(pid)
    try:
        result = read_object(fd)
    except Exception:
        result = None
    return result if isinstance(result, Source) else None


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def build_job(job: Job, progress: Progress | None = None) -> Merged:
    """Read every source and merge or combine them (no output written); see `run_job` for `progress`."""
    if job.mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, got {job.mode!r}")
    names = [s.source_name for s in job.sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"source name {dupes[0]!r} is used twice; name sources NAME=PATH")
    sampling_options(job)
    if job.mode == "combine" and job.target is not None:
        raise UsageError("combine builds its own layout: --target goes with merge")
    target: Layout | None = load_layout(job.target) if job.target is not None else None
    if target is not None and target.origin:
        target = replace(target, origin=0)  # outputs are 0-based
    sources = load_sources(job.sources, progress=progress, checksum=False)
    if progress is not None:
        progress(job.mode, 0, 1)
    # Checksums are taken in threads while the sources are merged, which leaves a core free (reading
    # keeps every core busy); hashlib releases the GIL.
    with ThreadPoolExecutor(max_workers=max(1, len(sources))) as pool:
        digests = [pool.submit(_sha256, spec.path) for spec in job.sources]
        try:
            if job.mode == "merge":
                merged = merge(sources, target, drop_empty=job.drop_empty, drop_crowd=job.drop_crowd)
            else:
                merged = combine(sources, drop_empty=job.drop_empty, drop_crowd=job.drop_crowd)
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
        reports = tuple(
            replace(r, meta={**r.meta, "sha256": d.result()})
            for r, d in zip(merged.sources, digests, strict=True)
        )
    if progress is not None:
        progress(job.mode, 1, 1)
    return replace(merged, sources=reports)


def _check_inputs_outside(job: Job) -> None:
    """UsageError when the output folder is an input or holds one (replacing it would delete inputs)."""
    out = job.output.resolve()
    for spec in job.sources:
        for p in (spec.path, spec.image_dir):
            if p is not None and (out == p.resolve() or out in p.resolve().parents):
                raise UsageError(f"the output folder holds the input {p}; choose another", file=job.output)


def run_job(job: Job, progress: Progress | None = None) -> Merged:
    """Build the job and write its output folder atomically; returns what was written.

    Args:
        job: What to do.
        progress: Optional `progress(step, done, total)` callback (see `Progress`); steps are `read`
            (sources), the mode (`merge` or `combine`) and `write` (records of annotations.json).
            kpmerge itself draws nothing.
    """
    check_output_path(job.output, job.force)
    check_exports(job.exports)
    _check_inputs_outside(job)
    merged = build_job(job, progress)
    sampling = sampling_options(job)
    sampling.check([s.name for s in merged.sources], [len(p) for p in trainable_pools(merged)])
    write = None
    if progress is not None:
        total = len(merged.dataset.images) + len(merged.dataset.instances)
        progress("write", 0, total)
        step = progress
        write = lambda n: step("write", n, total)  # noqa: E731
    files = output_files(merged, sampling, gzip=job.gzip, progress=write, chunked=True)
    files.update(export_files(merged, job.exports))
    write_folder(files, job.output, job.force)
    return merged
