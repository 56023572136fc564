"""The click option types and the option decorators the kpmerge commands share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .epochs import parse_epochs
from .errors import KpmergeError
from .exports import EXPORTS
from .formats import format_names
from .job import Job, SourceSpec, parse_source
from .jsonio import load_json
from .sampling import INT64_MAX, MAX_BATCH_SIZE


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


def one_root_per_source(
    ctx: click.Context, param: click.Parameter, value: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """The callback of `show --images`: one root per source name (and one ROOT for all)."""
    keys = [name for name, _ in value]
    if len(set(keys)) != len(keys):
        raise click.BadParameter("one root per source (and one ROOT for all)", ctx, param)
    return value


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
    parsed = [parse_source(s) for s in sources]
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


def job_from_options(
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
