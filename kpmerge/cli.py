"""The kpmerge command line: thin click commands over the library."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .build import Merged
from .errors import KpmergeError
from .exports import EXPORTS
from .formats import format_names
from .job import Job, SourceSpec, run_job
from .jsonio import load_json
from .layouts import builtin_layout_names, load_layout
from .output import missing_sizes
from .recipe import read_recipe
from .sampling import FORMATS, INT64_MAX, MAX_BATCH_SIZE, parse_epochs, write_epochs


class _Failure(click.ClickException):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived (raised by the handlers `main` installs)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class KpmergeGroup(click.Group):
    """Turns every KpmergeError into one `Error:` line and its exit code (traceback only with --debug),
    and an interrupt into an exit code that says what happened to the output (see `interrupt_exit`)."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt as exc:  # while the options are read: nothing was written yet
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            code, message = interrupt_exit(signum, ())
            raise _Failure(message, code) from None

    def invoke(self, ctx: click.Context) -> Any:
        written: list[Path] = []
        ctx.meta[_PUBLISHED] = written
        try:
            return super().invoke(ctx)
        except KpmergeError as exc:
            if ctx.params.get("debug") or os.environ.get("KPMERGE_DEBUG"):
                raise
            raise _Failure(str(exc), exc.exit_code) from None
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            code, message = interrupt_exit(signum, tuple(written))
            if code == 0:
                click.echo(message, err=True)
                ctx.exit(0)
            raise _Failure(message, code) from None
        finally:
            _STOP["decided"] = True  # the exit code is settled: later signals change nothing


_PUBLISHED = "kpmerge.published"


def published() -> list[Path]:
    """The outputs this command has moved into place so far: commands pass it to the library's writing
    functions, and an interrupt's exit code is told from it (see `interrupt_exit`)."""
    return click.get_current_context().meta.setdefault(_PUBLISHED, [])


def interrupt_exit(signum: int, written: tuple[Path, ...]) -> tuple[int, str]:
    """The exit code and message of a run stopped by signal `signum`: 0 when it had already written its
    output (`written`: then the output is complete), else 128 + the signal number (130 for SIGINT, 143
    for SIGTERM, 129 for SIGHUP), with nothing written and a previous output untouched."""
    name = signal.Signals(signum).name
    if written:
        return 0, f"kpmerge: {name} after the output was written; {written[-1]} is complete"
    return 128 + signum, f"interrupted by {name}; nothing was written"


class PairValue(click.ParamType):
    """`NAME=VALUE`, or a bare `VALUE` that applies to every source."""

    name = "NAME=VALUE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, val = str(value).partition("=")
        return (key, val) if sep else ("*", key)


class RatioValue(PairValue):
    """`NAME=NUMBER` (or a bare `NUMBER` for every source), the number finite and >= 0."""

    name = "NAME=NUMBER"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        key, text = super().convert(value, param, ctx)
        try:
            number = float(text)
        except ValueError:
            self.fail(f"expected NAME=NUMBER, got {value!r}", param, ctx)
        if not (number >= 0 and number != float("inf")):
            self.fail(f"expected a number >= 0, got {text!r}", param, ctx)
        return key, text


class EpochRange(click.ParamType):
    """`E` or `START:STOP` (STOP excluded)."""

    name = "START:STOP"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> range:
        if isinstance(value, range):
            return value
        try:
            return parse_epochs(str(value))
        except KpmergeError as exc:
            self.fail(exc.message, param, ctx)


class MappingValue(click.ParamType):
    """`auto`, a JSON file of entries, or inline `SRC:TGT,...` with `A+B:TGT` for a midpoint;
    `auto,SRC:TGT,...` maps by name, then the entries override or add."""

    name = "MAPPING"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text == "auto":
            return "auto"
        head, sep, rest = text.partition(",")
        if head.strip() == "auto" and sep:  # auto by name, then the entries override or add
            entries = self.convert(rest, param, ctx)
            return ["auto", *entries] if entries != "auto" else "auto"
        if text.endswith(".json"):
            try:
                entries = load_json(text)
            except KpmergeError as exc:
                self.fail(f"mapping file {exc}", param, ctx)
            if not isinstance(entries, list):
                self.fail(f"{text}: expected a list of [source, target] entries", param, ctx)
            return entries
        entries = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            src, sep, tgt = part.rpartition(":")
            if not sep or not src or not tgt:
                self.fail(f"expected SRC:TGT entries separated by commas, got {part!r}", param, ctx)
            ends = [_token(s) for s in src.split("+")]
            entries.append([ends[0] if len(ends) == 1 else ends, _token(tgt)])
        if not entries:
            self.fail("expected 'auto' or SRC:TGT entries", param, ctx)
        return entries


def _mapping(text: str) -> Any:
    """A --mapping value converted by `MappingValue`, its errors naming the option."""
    try:
        return MappingValue().convert(text, None, None)
    except click.BadParameter as exc:
        raise click.BadParameter(exc.message, param_hint="'--mapping'") from None


def _token(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _parse_source(text: str) -> tuple[str | None, Path]:
    name, sep, path = text.partition("=")
    if sep and name and not Path(text).exists():
        return name, Path(path)
    return None, Path(text)


def source_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Per-source options shared by merge and combine: each takes NAME=VALUE or VALUE for all."""
    options = [
        click.option(
            "--format",
            "formats",
            multiple=True,
            type=PairValue(),
            help=f"Input format per source: {', '.join(format_names()[:-1])} or {format_names()[-1]} "
            "(default: detected).",
        ),
        click.option(
            "--layout",
            "layouts",
            multiple=True,
            type=PairValue(),
            help="Layout per source: a built-in name or a layout JSON file (default: detected).",
        ),
        click.option(
            "--mapping",
            "mappings",
            multiple=True,
            type=PairValue(),
            help="Mapping per source: auto, a JSON file, or SRC:TGT,... (A+B:TGT is a midpoint); "
            "auto,SRC:TGT,... maps by name, then the entries override or add.",
        ),
        click.option(
            "--image-prefix",
            "prefixes",
            multiple=True,
            type=PairValue(),
            help="Prefix for image file names per source, e.g. aic=aic/train/.",
        ),
        click.option(
            "--image-dir",
            "image_dirs",
            multiple=True,
            type=PairValue(),
            help="Image folder per raw AIC or MPII source, to read image sizes (a bare DIR: for each of "
            "them).",
        ),
        click.option(
            "--split",
            "splits",
            multiple=True,
            type=PairValue(),
            help="Split per YOLO source: train (default), val, test or another key of its yaml.",
        ),
        click.option(
            "--class",
            "class_ids",
            multiple=True,
            type=PairValue(),
            help="Class per YOLO source, an id or a name (needed when its yaml names several).",
        ),
        click.option("--drop-empty", is_flag=True, help="Leave out instances with no labelled keypoint."),
        click.option("--drop-crowd", is_flag=True, help="Leave out crowd instances."),
        click.option("--gzip", is_flag=True, help="Write annotations.json.gz instead of annotations.json."),
        click.option(
            "--allow-missing-sizes",
            is_flag=True,
            help="Write images without width/height (MMPose, Detectron2 and exports cannot use the output).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def sampling_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--ratio, --batch-ratio, --batch-size and --seed: how the manifest says to sample (SPEC 6)."""
    options = [
        click.option(
            "--ratio",
            "ratios",
            multiple=True,
            type=RatioValue(),
            help="Dataset-level factor per source: round(pool * F) draws per epoch (default 1).",
        ),
        click.option(
            "--batch-ratio",
            "batch_ratios",
            multiple=True,
            type=RatioValue(),
            help="Share of every batch per source (give one for every source, with --batch-size).",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1, max=MAX_BATCH_SIZE),
            help="Per-rank batch size of the batch composition.",
        ),
        click.option(
            "--seed",
            type=click.IntRange(min=0, max=INT64_MAX),
            default=0,
            show_default=True,
            help="Sampling seed.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """-o/--out, --force and --quiet."""
    f = click.option("--quiet", "-q", is_flag=True, help="No summary or progress on stderr.")(f)
    f = click.option("--force", is_flag=True, help="Replace OUT if it exists.")(f)
    f = click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder.")(f)
    return f


def jobs_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--jobs N: processes to use at most (the same bytes whatever N is)."""
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        help="Processes to use at most (default: the CPUs this process may use; 1: no helper processes).",
    )(f)


def export_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--export NAME (repeatable): extra files for other trainers, in subfolders of OUT."""
    f = click.option(
        "--yolo-keep-empty",
        is_flag=True,
        help="yolo export: keep people with no labelled keypoint as detection-only rows.",
    )(f)
    return click.option(
        "--export",
        "exports",
        multiple=True,
        type=click.Choice(list(EXPORTS)),
        help="Also write files for another trainer into OUT/<name>/ (repeatable).",
    )(f)


_OPTIONS = {
    "formats": "--format",
    "layouts": "--layout",
    "mappings": "--mapping",
    "prefixes": "--image-prefix",
    "image_dirs": "--image-dir",
    "ratios": "--ratio",
    "batch_ratios": "--batch-ratio",
    "splits": "--split",
    "class_ids": "--class",
}
"""The option of each per-source value, for messages."""


def _specs(sources: tuple[str, ...], opts: dict[str, Any]) -> tuple[SourceSpec, ...]:
    parsed = [_parse_source(s) for s in sources]
    names = [n or SourceSpec(path=p).source_name for n, p in parsed]

    def per_source(key: str, convert: Callable[[str], Any] = str) -> list[Any]:
        values: list[Any] = [None] * len(parsed)
        for name, value in opts.get(key, ()):
            if name != "*" and name not in names:
                raise click.BadParameter(
                    f"no source named {name!r} (sources: {', '.join(names)})", param_hint=_OPTIONS[key]
                )
            for i, n in enumerate(names):
                if name in ("*", n):
                    values[i] = convert(value)
        return values

    fmts, lays, maps = per_source("formats"), per_source("layouts"), per_source("mappings", _mapping)
    prefixes, dirs = per_source("prefixes"), per_source("image_dirs", Path)
    factors, batch_ratios = per_source("ratios", float), per_source("batch_ratios", float)
    splits, class_ids = per_source("splits"), per_source("class_ids")
    dirs_for_all = [False] * len(parsed)  # a bare --image-dir DIR: for the sources that take one
    for name, _value in opts.get("image_dirs", ()):
        for i, n in enumerate(names):
            if name in ("*", n):
                dirs_for_all[i] = name == "*"
    return tuple(
        SourceSpec(
            path=p,
            name=names[i],
            format=fmts[i],
            layout=lays[i],
            mapping=maps[i] or "auto",
            image_prefix=prefixes[i] or "",
            image_dir=dirs[i],
            label=sources[i].partition("=")[2] if n else str(p),
            factor=1.0 if factors[i] is None else factors[i],
            batch_ratio=batch_ratios[i],
            split=splits[i],
            class_id=class_ids[i],
            image_dir_if_used=dirs_for_all[i],
        )
        for i, (n, p) in enumerate(parsed)
    )


class _ProgressBars:
    """Draws the library's progress as tqdm bars on stderr (a bar shows once its step takes over 1 s)."""

    def __init__(self) -> None:
        self.step: str | None = None
        self.bar: Any = None
        self.bar_delay = 1.0

    def __call__(self, step: str, done: int, total: int) -> None:
        if step != self.step:
            self.close()
            from tqdm import tqdm

            # No monitor thread: kpmerge forks helper processes only while it runs a single thread.
            tqdm.monitor_interval = 0
            unit = {"read": "source", "write": "record"}.get(step, "step")
            self.bar = tqdm(
                total=total, desc=step, unit=unit, file=sys.stderr, disable=None, delay=self.bar_delay
            )
            self.step = step
        if done:
            self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = self.step = None


def _job(
    mode: str,
    sources: tuple[str, ...],
    out: Path,
    force: bool,
    opts: dict[str, Any],
    target: str | None = None,
) -> Job:
    """The Job that merge or combine describe with their shared options."""
    return Job(
        mode,
        _specs(sources, opts),
        out,
        target=target,
        force=force,
        drop_empty=opts["drop_empty"],
        drop_crowd=opts["drop_crowd"],
        gzip=opts["gzip"],
        seed=opts["seed"],
        batch_size=opts["batch_size"],
        exports=opts["exports"],
        jobs=opts["jobs"],
        allow_missing_sizes=opts["allow_missing_sizes"],
        yolo_keep_empty=opts["yolo_keep_empty"],
    )


def _run(job: Job, quiet: bool, jobs: int | None = None) -> None:
    bars = _ProgressBars() if not quiet and sys.stderr.isatty() else None
    try:
        merged = run_job(job, progress=bars, jobs=jobs, published=published())
    finally:
        if bars is not None:
            bars.close()
    if not quiet:
        click.echo(summary(merged, job.output), err=True)


def summary(merged: Merged, out: Path) -> str:
    """A short table for people: per source, records read, written and not written by reason."""
    rows = [("source", "format", "layout", "images", "read", "written", "not written", "keypoints")]
    for s in merged.sources:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.not_written.items())) or "0"
        kp = f"{len(s.mapping.pairs)}/{len(merged.layout)}"
        rows.append(
            (
                s.name,
                str(s.meta.get("format", "")),
                s.layout,
                str(s.images_written),
                str(s.annotations_read),
                str(s.annotations_written),
                reasons,
                kp,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    head = (
        f"kpmerge {merged.mode}: {len(merged.dataset.instances)} annotations in layout {merged.layout.name} "
        f"({len(merged.layout)} keypoints) -> {out}"
    )
    notes = [f"note: {s.name}: {n}" for s in merged.sources for n in s.notes]
    notes += [
        f"note: {s.name}: {a} matched {b} by synonym" for s in merged.sources for a, b in s.mapping.aliases
    ]
    notes += [
        f"note: {s.name}: target keypoints left unmapped: "
        + ", ".join(merged.layout.keypoints[t] for t in s.mapping.unmapped)
        for s in merged.sources
        if s.mapping.unmapped
    ]
    sizes = missing_sizes(merged)
    if sizes is not None:
        notes.append(
            f"note: {sizes['images']} images have no width/height: {', '.join(sizes['cannot_load'])} cannot "
            f"load this output ({', '.join(sizes['can_load'])} can)"
        )
    return "\n".join([head, *lines, *notes])


@click.group(cls=KpmergeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="kpmerge")
def cli(debug: bool) -> None:
    """Merge and combine human-pose keypoint datasets (COCO, raw AI Challenger, ...) offline."""


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--target", help="Target layout: a built-in name or a layout JSON file (default: the first source's)."
)
@source_options
@sampling_options
@output_options
@export_option
@jobs_option
def merge(
    sources: tuple[str, ...], target: str | None, out: Path, force: bool, quiet: bool, **opts: Any
) -> None:
    """Map every source into one target layout.

    Example: kpmerge merge coco=person_keypoints_train2017.json aic=aic_train.json -o merged/
    """
    _run(_job("merge", sources, out, force, opts, target=target), quiet)


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--target", hidden=True, help="Refused with a pointer to merge (combine builds its layout).")
@source_options
@sampling_options
@output_options
@export_option
@jobs_option
def combine(
    sources: tuple[str, ...], target: str | None, out: Path, force: bool, quiet: bool, **opts: Any
) -> None:
    """Build the union layout of all sources and map every source into it.

    Example: kpmerge combine coco=person_keypoints_train2017.json aic=aic_train.json -o combined/
    """
    _run(_job("combine", sources, out, force, opts, target=target), quiet)


@cli.command()
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Output folder (overrides the recipe's).")
@click.option("--force", is_flag=True, default=None, help="Replace the output folder if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No summary or progress on stderr.")
@jobs_option
def run(recipe: Path, out: Path | None, force: bool | None, quiet: bool, jobs: int | None) -> None:
    """Run a merge or combine described by a TOML recipe.

    Example: kpmerge run sample_data/recipe.toml -o sample_out --force
    """
    job = read_recipe(recipe, force=force, output=out)
    _run(job, quiet, jobs)


@cli.command()
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option(
    "--epochs", type=EpochRange(), default="0", show_default=True, help="E or START:STOP (STOP excluded)."
)
@click.option(
    "--rank", type=click.IntRange(min=0, max=INT64_MAX), help="Write only this rank (default: every rank)."
)
@click.option(
    "--world-size",
    type=click.IntRange(min=1, max=INT64_MAX),
    default=1,
    show_default=True,
    help="Number of ranks.",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True, help="File format."
)
@output_options
def sample(
    manifest: Path,
    epochs: range,
    rank: int | None,
    world_size: int,
    fmt: str,
    out: Path,
    force: bool,
    quiet: bool,
) -> None:
    """Write epochs of a manifest as index files, one per epoch and rank, for any trainer.

    Each file, e.g. OUT/epoch_0003.rank_1_of_4.json, holds that rank's share of that epoch: positions
    in annotations.json, or batches of them when the manifest sets a batch composition (JSON
    {"epoch", "rank", "world_size", "indices" | "batches"}, or an int64 .npy array). At most 10,000
    files (epochs x ranks) are written at once.

    Example: kpmerge sample combined/manifest.json --epochs 0:3 --world-size 2 --format npy -o plan/
    """
    ranks = None if rank is None else [rank]
    names = write_epochs(manifest, out, epochs, ranks, world_size, fmt, force, published())
    if not quiet:
        click.echo(f"kpmerge sample: {len(names)} files ({names[0]} ...) -> {out}", err=True)


@cli.command()
@click.argument("out_dir", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--to", "layout", required=True, help="Layout to write: a built-in name or a layout JSON file.")
@click.option(
    "-o", "--out", "file", required=True, type=click.Path(path_type=Path), help="COCO file to write."
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="Keep this source's images and annotations (repeatable; default: every source that defines "
    "all keypoints of the layout).",
)
@click.option(
    "--original-ids",
    is_flag=True,
    help="Write the ids the images and annotations have in their source (refused unless they are "
    "positive integers).",
)
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No summary on stderr.")
def project(
    out_dir: Path,
    layout: str,
    file: Path,
    sources: tuple[str, ...],
    original_ids: bool,
    force: bool,
    quiet: bool,
) -> None:
    """Write an output folder's annotations back in one source layout, for COCOeval.

    Example: kpmerge project combined/ --to coco -o coco_val_gt.json
    """
    from .project import project as project_file

    result = project_file(out_dir, layout, file, sources or None, force, original_ids, published())
    if not quiet:
        click.echo(
            f"kpmerge project: {result.annotations} annotations, {result.images} images of "
            f"{', '.join(result.sources)} in layout {result.layout.name} ({len(result.layout)} keypoints, "
            f"columns by {result.how}) -> {file}",
            err=True,
        )


@cli.group(invoke_without_command=True)
@click.pass_context
def layouts(ctx: click.Context) -> None:
    """List the built-in layouts; `kpmerge layouts show NAME` prints one.

    Example: kpmerge layouts show coco_aic
    """
    if ctx.invoked_subcommand is None:
        for name in builtin_layout_names():
            lay = load_layout(name)
            click.echo(
                f"{name:14s} {len(lay):4d} keypoints  {', '.join(lay.keypoints[:6])}"
                f"{', ...' if len(lay) > 6 else ''}"
            )


@layouts.command("show")
@click.argument("name")
def layouts_show(name: str) -> None:
    """Print one layout (a built-in name or a layout JSON file) as JSON.

    Example: kpmerge layouts show coco
    """
    from .output import layout_metainfo

    click.echo(json.dumps(layout_metainfo(load_layout(name)), indent=2))


@cli.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--layout", help="Layout of the file inputs: a built-in name or a layout JSON file (default: detected)."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document (schemas/inspect.schema.json)."
)
@click.option(
    "--plot", type=click.Path(path_type=Path), help="Write a PNG of labelled rates and name overlap."
)
@click.option("--strict", is_flag=True, help="Exit with 1 on warnings too, not only on errors.")
@click.pass_context
def inspect_cmd(
    ctx: click.Context,
    paths: tuple[Path, ...],
    layout: str | None,
    as_json: bool,
    plot: Path | None,
    strict: bool,
) -> None:
    """Keypoint statistics and problems of annotation files or kpmerge output folders (exit 1 on errors).

    Also checks left and right in the data: per left/right pair, the share of front-facing people with
    x(left) > x(right), and per same-side link, the share shorter than its crossed twin (warnings
    left_right_swapped and limb_crossed).

    Example: kpmerge inspect person_keypoints_val2017.json aic_val.json --plot overlap.png
    """
    from .inspect import format_report, inspect, plot_report
    from .jsonio import dumps_pretty

    report = inspect(paths, layout=layout)
    if plot is not None:
        plot_report(report, plot, published())
    click.echo(
        dumps_pretty(report.to_dict()).decode("utf-8").rstrip("\n") if as_json else format_report(report)
    )
    ctx.exit(report.exit_code(strict))


@cli.command("show")
@click.argument("paths", metavar="PATH...", nargs=-1, required=True)
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="PNG file to write.")
@click.option(
    "--images",
    multiple=True,
    type=PairValue(),
    metavar="[NAME=]ROOT",
    help="Image root: ROOT for every source or NAME=ROOT for one (repeatable); default: plain canvas.",
)
@click.option(
    "--per-source", type=click.IntRange(1, 100), default=8, show_default=True, help="Instances per source."
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the picks.")
@click.option("--names", is_flag=True, help="Write keypoint names beside the dots.")
@click.option(
    "--cell", type=click.IntRange(48, 1024), default=160, show_default=True, help="Cell size in pixels."
)
@click.option("--force", is_flag=True, help="Replace the PNG file if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No summary on stderr.")
def show_cmd(
    paths: tuple[str, ...],
    out: Path,
    images: tuple[tuple[str, str], ...],
    per_source: int,
    seed: int,
    names: bool,
    cell: int,
    force: bool,
    quiet: bool,
) -> None:
    """Draw a contact sheet: a few instances of every source in its layout (on its images when found).

    PATH is a kpmerge output folder (every source in the target layout) or annotation files, NAME=FILE
    to name one (each in its own layout).

    Example: kpmerge show sample_out -o sheet.png --images data/
    """
    from .show import show

    keys = [name for name, _ in images]
    if len(set(keys)) != len(keys):
        raise click.BadParameter("one root per source (and one ROOT for all)", param_hint="--images")
    specs: list[str | SourceSpec] = []
    for text in paths:
        name, path = _parse_source(text)
        specs.append(text if name is None else SourceSpec(path=path, name=name))
    sheet = show(specs, out, dict(images) or None, per_source, seed, names, cell, force, published())
    if not quiet:
        click.echo(
            f"kpmerge show: {len(sheet.rows)} sources, {sheet.drawn} instances ({sheet.on_image} on their "
            f"images) -> {out}",
            err=True,
        )
        for note in sheet.notes:
            click.echo(f"note: {note}", err=True)


def main() -> None:
    """Entry point of the `kpmerge` command."""
    installed = _handle_stop_signals()
    _no_huge_page_advice()
    try:
        cli(prog_name="kpmerge")
    finally:  # the outcome is settled: a late signal must not turn it into "killed" while Python exits
        for signum in installed:
            signal.signal(signum, signal.SIG_IGN)


STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
_STOP: dict[str, Any] = {"seen": [], "decided": False}


def _handle_stop_signals() -> list[int]:
    """SIGINT, SIGTERM and SIGHUP stop the run alike: the first raises `Interrupted` in the main thread,
    so the temporary folder is removed and the exit code says what happened to the output; a second
    one is ignored while that clean-up runs (it is short), a third ends the process at once. Once the
    command has finished (its exit code is settled), they are ignored. Signals the process was started
    to ignore (`nohup`, background jobs) stay ignored. Returns the signals handled."""
    seen: list[int] = _STOP["seen"]

    def handler(signum: int, frame: object) -> None:
        if _STOP["decided"]:
            return
        seen.append(signum)
        if len(seen) == 1:
            raise Interrupted(signum)
        if len(seen) >= 3:
            os._exit(128 + seen[0])

    installed = []
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, handler)
            installed.append(signum)
    return installed


def _no_huge_page_advice() -> None:
    # numpy asks the kernel for transparent huge pages for large arrays; where the kernel then compacts
    # memory on demand (defrag = madvise), first touches of fresh arrays stall. Measured with `make bench`:
    # about 10% faster without. Only the command does this; the library leaves numpy's setting alone.
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy < 2
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            return
    _set_madvise_hugepage(False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
