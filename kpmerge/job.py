"""A whole run: read the sources, merge or combine them, write the output folder."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from .build import Merged, Source, check_source_name, combine, merge
from .errors import KpmergeError, UsageError
from .exports import check_exports, export_outputs
from .folder import MANIFEST
from .formats import default_layout, find_format, path_format, read_dataset
from .formats.yolo_files import dataset_paths
from .instances import Dataset
from .layouts import Layout, detect_layout, load_layout
from .mapping import MappingSpec
from .output import (
    check_output_path,
    missing_size_mask,
    output_files,
    require_image_sizes,
    trainable_pools,
    write_folder,
)
from .parallel import processes, resolve_jobs, run_tasks
from .publish import check_output, check_outside_inputs
from .sampling import SamplingOptions

MODES = ("merge", "combine")


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
        image_dir: Folder of the images, to read sizes for raw AIC and MPII.
        image_dir_if_used: `image_dir` was given for every source (the CLI's bare `--image-dir DIR`):
            used only when this source is raw AIC or MPII, else left out (for any other format, an
            image folder given to this source alone is refused).
        label: How the path is shown in the manifest (default: as given).
        factor: Dataset-level sampling factor (slots per epoch = round(pool * factor)).
        batch_ratio: Share of every batch (None: no batch composition; give it for all sources or none).
        split: YOLO dataset: the split to read (default `train`).
        class_id: YOLO dataset: the class to read (an id or a name; needed when it has several).
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
    split: str | None = None
    class_id: int | str | None = None
    image_dir_if_used: bool = False

    @property
    def source_name(self) -> str:
        return self.name or _stem(self.path)


@dataclass(frozen=True)
class Job:
    """Everything one `merge` or `combine` needs.

    `allow_missing_sizes` writes sources whose images lack width or height (else refused: MMPose's and
    Detectron2's loaders need them); the manifest then says which trainers cannot load the output.
    """

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
    jobs: int | None = None
    """Processes to use at most (None: the CPUs this process may use; 1: no helper processes)."""
    allow_missing_sizes: bool = False
    show: Path | None = None
    """A contact sheet of the output to write as well (PNG file; see kpmerge.show)."""
    yolo_keep_empty: bool = False  # the yolo export keeps people with no labelled keypoint


def _stem(path: Path) -> str:
    """The file name without .json or .gz, other characters than those of a source name as `_`."""
    name = path.name
    for suffix in (".gz", ".json", ".yaml", ".yml"):
        name = name.removesuffix(suffix)
    if name == "data" and path.suffix in (".yaml", ".yml"):  # my_set/data.yaml is my_set
        name = path.resolve().parent.name or name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "source"


def load_source(spec: SourceSpec, checksum: bool = True) -> Source:
    """Read one source: its file, format, layout; facts for the manifest (path, sha256, format, origin).

    Coordinates of a layout with origin 1 (MPII, JHMDB) are shifted to 0-based here. Without
    `checksum`, the manifest's sha256 is left None (for a caller that takes it itself).
    """
    # The checksum is taken in a thread while the file is parsed (hashlib releases the GIL).
    with ThreadPoolExecutor(max_workers=1) as pool:
        sha256 = pool.submit(_sha256, spec.path) if checksum else None
        try:
            dataset = read_dataset(
                *(spec.path, spec.format, spec.image_dir),
                split=spec.split,
                class_id=spec.class_id,
                image_dir_optional=spec.image_dir_if_used,
            )
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
    elif dataset.layout is not None:  # the dataset yaml defines its layout
        layout = dataset.layout
    elif (fixed := default_layout(dataset.format)) is not None:
        layout = load_layout(fixed)
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


def sizes_from_images(format: str) -> bool:
    """Whether sources of `format` read their image sizes from an image folder (their files hold none)."""
    fmt = find_format(format)
    return fmt is not None and not fmt.sizes_in_file and not fmt.no_image_dir


def to_zero_based(dataset: Dataset, origin: int) -> Dataset:
    """The dataset with `origin` subtracted from x, y of labelled keypoints and from box x, y."""
    inst = dataset.instances
    keypoints = inst.keypoints.copy()
    keypoints[:, :, :2] -= np.where(keypoints[:, :, 2:] > 0, float(origin), 0.0)
    boxes = inst.boxes.copy()
    boxes[:, :2] -= origin
    return replace(dataset, instances=replace(inst, keypoints=keypoints, boxes=boxes))


def _sha256(path: Path) -> str:
    if path.is_dir():  # a dataset folder; its checksum is its dataset yaml's
        from .formats.yolo_yaml import find_yaml

        path = find_yaml(path)
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
"""Inputs after the first are read in helper processes only when they hold at least this many bytes."""


Progress = Callable[[str, int, int], None]
"""`progress(step, done, total)`: a step starts with `done=0`, then reports each part it finished."""


def load_sources(
    specs: Sequence[SourceSpec],
    jobs: int | None = None,
    progress: Progress | None = None,
    checksum: bool = True,
) -> list[Source]:
    """`load_source` of every spec, in order; with `jobs` > 1, large inputs are read side by side.

    The same sources come back whatever `jobs` is (see `kpmerge.parallel.run_tasks`).

    Args:
        specs: The sources.
        jobs: Processes to use at most (None: the CPUs this process may use). Sources are read in
            helper processes when the inputs after the first hold at least `PARALLEL_MIN_BYTES`; else
            one by one, each reader may share its work out (`kpmerge.parallel.in_parts`).
        progress: Told of each source read (step `read`).
        checksum: Take each file's sha256 (else left None, for a caller that takes it later).
    """
    done = None
    if progress is not None:
        progress("read", 0, len(specs))
        step = progress
        done = lambda src: (step("read", 1, len(specs)), src)[1]  # noqa: E731
    jobs = resolve_jobs(jobs)
    tasks = [partial(load_source, spec, checksum) for spec in specs]
    if sum(_size(s.path) for s in specs[1:]) >= PARALLEL_MIN_BYTES:
        return run_tasks(tasks, jobs, done)
    with processes(jobs):  # one large input: read with every process (`kpmerge.parallel.in_parts`)
        return run_tasks(tasks, 1, done)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def build_job(job: Job, progress: Progress | None = None, jobs: int | None = None) -> Merged:
    """Read every source and merge or combine them (no output written); see `run_job` for the rest."""
    if job.mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, got {job.mode!r}")
    names = [s.source_name for s in job.sources]
    for name in names:
        check_source_name(name)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"source name {dupes[0]!r} is used twice; name sources NAME=PATH")
    sampling_options(job)
    if job.mode == "combine" and job.target is not None:
        raise UsageError("combine builds its own layout: --target goes with merge")
    target: Layout | None = load_layout(job.target) if job.target is not None else None
    if target is not None and target.origin:
        target = replace(target, origin=0)  # outputs are 0-based
    sources = load_sources(job.sources, jobs if jobs is not None else job.jobs, progress, checksum=False)
    if any(s.image_dir_if_used for s in job.sources) and not any(
        sizes_from_images(src.dataset.format) for src in sources
    ):
        raise UsageError(
            "--image-dir DIR (for every source) is used by no source: it gives the image folder of raw AIC "
            "and MPII files"
        )
    if not job.allow_missing_sizes:
        # MMPose's CocoDataset and Detectron2's loader read every image's width and height.
        require_image_sizes(
            ((s.name, s.dataset.format, missing_size_mask(s.dataset.images)) for s in sources),
            "MMPose and Detectron2 need",
            opt_out=True,
        )
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


def reads_yolo(path: Path, format: str | None = None) -> bool:
    """Whether a source at `path` is read as a YOLO dataset (its format, or else its path says so)."""
    return format == "yolo" or (format is None and path_format(path) == "yolo")


def source_inputs(spec: SourceSpec) -> tuple[list[Path], list[Path]]:
    """What a source reads: (inputs, image folders). An output may lie inside an image folder but may
    not be or hold one; it may not be, hold or lie inside an input.

    A YOLO dataset reads its yaml, and its image and label folders (inputs: Ultralytics searches image
    folders recursively, so an output inside one changes the dataset); its root (and the folder named
    as the source) count as image folders (an output may go beside the images).
    """
    images = [spec.image_dir] if spec.image_dir is not None else []
    if reads_yolo(spec.path, spec.format):
        root, read = dataset_paths(spec.path, spec.split or "train")
        folder = [spec.path] if spec.path.is_dir() else []
        return [*([] if folder else [spec.path]), *read], [*images, *folder, *([root] if root else [])]
    return [spec.path], images


def check_export_options(job: Job) -> None:
    """UsageError for options that cannot go together: `--gzip` with the detectron2 export (Detectron2
    reads only a plain annotations.json) and `--yolo-keep-empty` without the yolo export."""
    if job.gzip and "detectron2" in job.exports:
        raise UsageError(
            "--gzip cannot go with --export detectron2: Detectron2 reads only a plain annotations.json "
            "(leave out --gzip, recipe key gzip)"
        )
    if job.yolo_keep_empty and "yolo" not in job.exports:
        raise UsageError(
            "--yolo-keep-empty (recipe key yolo_keep_empty) goes with --export yolo (recipe key export): "
            "without the yolo export it changes nothing"
        )


def _check_inputs_outside(job: Job) -> None:
    """UsageError when the output folder is, holds or lies inside an input (source, image folder or
    layout file): replacing it would delete or change that input."""
    layouts = [job.target, *(spec.layout for spec in job.sources)]
    files = [p for p in layouts if isinstance(p, str | Path) and Path(p).is_file()]
    inputs: list[Path | str] = []
    images: list[Path] = []
    for spec in job.sources:
        read, folders = source_inputs(spec)
        inputs += read
        images += folders
    inputs += files
    check_outside_inputs(job.output, inputs, images)
    if job.show is not None:
        check_outside_inputs(job.show, inputs, images)


def run_job(
    job: Job,
    progress: Progress | None = None,
    jobs: int | None = None,
    published: list[Path] | None = None,
) -> Merged:
    """Build the job and write its output folder atomically; returns what was written.

    Args:
        job: What to do.
        progress: Optional `progress(step, done, total)` callback (see `Progress`); steps are `read`
            (sources), the mode (`merge` or `combine`) and `write` (records of annotations.json).
            kpmerge itself draws nothing.
        jobs: Processes to use at most, overriding `job.jobs` (None: as the job says; 1: no helper
            processes). The output is the same bytes whatever it is.
        published: Gets the output folder (and the sheet) appended once each is in place.

    With `job.show`, the contact sheet of the output (`kpmerge.show.merged_sheet`, no images) is drawn
    before anything is written and published right after the folder.
    """
    _check_inputs_outside(job)
    check_output_path(job.output, job.force)
    check_exports(job.exports)
    check_export_options(job)
    if job.show is not None:
        check_output(job.show, job.force, folder=False)
    merged = build_job(job, progress, jobs)
    sampling = sampling_options(job)  # checked, except against the pools
    # The trainable pools (numpy, which lets go of the GIL) are taken in a thread while annotations.json
    # is made. Batch ratios are the only options checked against them (`SamplingOptions.check`): with
    # them, the check waits for the pools, before anything is written.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pools = pool.submit(trainable_pools, merged)
        if sampling.batch_ratios:
            sampling.check([s.name for s in merged.sources], [len(p) for p in pools.result()])
        write = None
        if progress is not None:
            total = len(merged.dataset.images) + len(merged.dataset.instances)
            progress("write", 0, total)
            step = progress
            write = lambda n: step("write", n, total)  # noqa: E731
        extra, counts = export_outputs(merged, job.exports, job.yolo_keep_empty)
        files = output_files(merged, sampling, gzip=job.gzip, progress=write, chunked=True, exports=counts)
        make_manifest = files[MANIFEST]

        def manifest_after_pools() -> bytes | Iterable[bytes]:
            pools.result()  # the manifest reads the pools the thread took: they are not taken twice
            return make_manifest()

        files[MANIFEST] = manifest_after_pools
        files.update(extra)
        if job.show is None:
            write_folder(files, job.output, job.force, published)
            return merged
        from .show import write_with_sheet

        pools.result()  # the sheet picks from the pools: taken once, by the thread
        write_with_sheet(merged, files, job.output, job.show, job.force, published)
    return merged


def parse_source(text: str) -> tuple[str | None, Path]:
    """A source as the command line gives it: `NAME=PATH` names it (unless a file of that whole name
    exists), else the path alone (name None)."""
    name, sep, path = text.partition("=")
    if sep and name and not Path(text).exists():
        return name, Path(path)
    return None, Path(text)
