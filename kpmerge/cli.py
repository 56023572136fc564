"""The kpmerge command line: thin click commands over the library."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .cli_options import (
    EpochRange,
    PairValue,
    export_option,
    job_from_options,
    jobs_option,
    one_root_per_source,
    output_options,
    sampling_options,
    source_options,
)
from .cli_report import ProgressBars, summary
from .epochs import FORMATS, write_epochs
from .errors import KpmergeError
from .interrupts import Interrupted, check_stop, handle_stop_signals, interrupt_exit, settle
from .job import Job, run_job
from .layouts import builtin_layout_names, load_layout
from .recipe import read_recipe
from .sampling import INT64_MAX

__all__ = ["KpmergeGroup", "cli", "main", "published"]


class _Failure(click.ClickException):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


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
            try:
                result = super().invoke(ctx)
            except click.exceptions.Exit:
                check_stop()
                raise
            check_stop()  # a signal whose interrupt was swallowed still stops the command
            return result
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
            settle()  # the exit code is settled: later signals change nothing


_PUBLISHED = "kpmerge.published"


def published() -> list[Path]:
    """The outputs this command has moved into place so far: commands pass it to the library's writing
    functions, and an interrupt's exit code is told from it (see `interrupt_exit`)."""
    return click.get_current_context().meta.setdefault(_PUBLISHED, [])


def _run(job: Job, quiet: bool, jobs: int | None = None) -> None:
    bars = ProgressBars() if not quiet and sys.stderr.isatty() else None
    try:
        merged = run_job(job, progress=bars, jobs=jobs, published=published())
    finally:
        if bars is not None:
            bars.close()
    if not quiet:
        click.echo(summary(merged, job.output), err=True)


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
    _run(job_from_options("merge", sources, out, force, opts, target=target), quiet)


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
    _run(job_from_options("combine", sources, out, force, opts, target=target), quiet)


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
    from .metainfo import layout_metainfo

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
    from .jsonwrite import dumps_pretty

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
    callback=one_root_per_source,
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
    from .show import named_sources, show

    sheet = show(
        named_sources(paths), out, dict(images) or None, per_source, seed, names, cell, force, published()
    )
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
    installed = handle_stop_signals()
    _no_huge_page_advice()
    try:
        cli(prog_name="kpmerge")
    finally:  # the outcome is settled: a late signal must not turn it into "killed" while Python exits
        for signum in installed:
            signal.signal(signum, signal.SIG_IGN)


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
