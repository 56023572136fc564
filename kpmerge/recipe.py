"""Recipe files (TOML): a whole merge or combine as data, for CI preprocessing steps."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from .build import check_source_name
from .errors import UsageError
from .exports import EXPORTS
from .job import MODES, Job, SourceSpec
from .publish import check_outside_inputs
from .sampling import INT64_MAX, MAX_BATCH_SIZE

TOP_KEYS = {
    "mode",
    "output",
    "target",
    "force",
    "drop_empty",
    "drop_crowd",
    "gzip",
    "seed",
    "batch_size",
    "sources",
    "export",
    "jobs",
    "allow_missing_sizes",
    "show",
    "yolo_keep_empty",
}
SOURCE_KEYS = {
    "name",
    "path",
    "format",
    "layout",
    "mapping",
    "image_prefix",
    "image_dir",
    "ratio",
    "batch_ratio",
    "split",
    "class",
}


def read_recipe(path: str | Path, force: bool | None = None, output: str | Path | None = None) -> Job:
    """Parse a recipe file into a Job; paths in it are relative to the recipe's folder.

    Raises:
        UsageError: naming the recipe file and the key that is wrong.
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise UsageError("recipe not found", file=p) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read recipe: {exc}", file=p) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"not valid TOML: {exc}", file=p) from None
    job = recipe_to_job(data, p.parent, file=p, force=force, output=output)
    check_outside_inputs(job.output, [p])  # the recipe is an input too
    return job


def recipe_to_job(
    data: dict[str, Any],
    base: Path,
    file: Path | None = None,
    force: bool | None = None,
    output: str | Path | None = None,
) -> Job:
    """A Job from a parsed recipe; relative paths are taken from `base`."""

    def fail(where: str, message: str) -> UsageError:
        return UsageError(message, file=file, json_path=where)

    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key (known: {', '.join(sorted(TOP_KEYS))})")
    mode = data.get("mode")
    if mode not in MODES:
        raise fail("mode", f"expected one of {', '.join(MODES)}, got {mode!r}")
    out = output if output is not None else data.get("output")
    if out is None:
        raise fail("output", 'missing: the output folder (output = "DIR" in the recipe, or -o DIR)')
    if not isinstance(out, str | Path) or not str(out):
        raise fail("output", "expected the output folder as a string")
    sources = data.get("sources")
    if not isinstance(sources, list) or not sources:
        raise fail("sources", "expected at least one [[sources]] table")
    specs = []
    for i, src in enumerate(sources):
        where = f"sources[{i}]"
        if not isinstance(src, dict):
            raise fail(where, "expected a table")
        bad = sorted(set(src) - SOURCE_KEYS)
        if bad:
            raise fail(f"{where}.{bad[0]}", f"unknown key (known: {', '.join(sorted(SOURCE_KEYS))})")
        if not isinstance(src.get("path"), str):
            raise fail(f"{where}.path", "expected the annotation file path as a string")
        for key in ("name", "format", "layout", "image_prefix", "image_dir", "split"):
            if key in src and not isinstance(src[key], str):
                raise fail(f"{where}.{key}", f"expected a string, got {src[key]!r}")
        if "class" in src and not (
            isinstance(src["class"], str) or (_is_number(src["class"], 0) and isinstance(src["class"], int))
        ):
            raise fail(f"{where}.class", f"expected a class id or name, got {src['class']!r}")
        if "name" in src:
            try:
                check_source_name(src["name"])
            except UsageError as exc:
                raise fail(f"{where}.name", exc.message) from None
        mapping = src.get("mapping", "auto")
        if not (mapping == "auto" or isinstance(mapping, list)):
            raise fail(
                f"{where}.mapping",
                'expected "auto", a list of [source, target] entries, or ["auto", entries...] (auto, then '
                "the entries override or add)",
            )
        for key in ("ratio", "batch_ratio"):
            if key in src and not _is_number(src[key], 0):
                raise fail(f"{where}.{key}", f"expected a number >= 0, got {src[key]!r}")
        layout = src.get("layout")
        if layout is not None and (layout.endswith(".json") or "/" in layout):
            layout = base / layout
        specs.append(
            SourceSpec(
                path=base / src["path"],
                name=src.get("name"),
                format=src.get("format"),
                layout=layout,
                mapping=mapping,
                image_prefix=src.get("image_prefix", ""),
                image_dir=base / src["image_dir"] if "image_dir" in src else None,
                label=src["path"],
                factor=float(src.get("ratio", 1.0)),
                batch_ratio=float(src["batch_ratio"]) if "batch_ratio" in src else None,
                split=src.get("split"),
                class_id=src.get("class"),
            )
        )
    target = data.get("target")
    if target is not None and not isinstance(target, str):
        raise fail("target", "expected a layout name or a layout JSON file")
    if target is not None and (target.endswith(".json") or "/" in target):
        target = str(base / target)
    for key in ("force", "drop_empty", "drop_crowd", "gzip", "allow_missing_sizes", "yolo_keep_empty"):
        if key in data and not isinstance(data[key], bool):
            raise fail(key, "expected true or false")
    bounds = (("seed", 0, INT64_MAX), ("batch_size", 1, MAX_BATCH_SIZE), ("jobs", 1, INT64_MAX))
    for key, least, most in bounds:
        if key not in data:
            continue
        value = data[key]
        if not _is_number(value, least) or not isinstance(value, int):
            raise fail(key, f"expected an integer >= {least}, got {value!r}")
        if value > most:
            raise fail(key, f"expected an integer <= {most:,}, got {value!r}")
    exports = data.get("export", [])
    if isinstance(exports, str):
        exports = [exports]
    if not isinstance(exports, list) or not all(isinstance(e, str) for e in exports):
        raise fail("export", 'expected a list of export names, e.g. ["yolo", "detectron2"]')
    for i, name in enumerate(exports):
        if name not in EXPORTS:
            raise fail(f"export[{i}]", f"unknown export {name!r} (known: {', '.join(EXPORTS)})")
    sheet = data.get("show")
    if sheet is not None and (not isinstance(sheet, str) or not sheet):
        raise fail("show", 'expected the contact sheet file as a string, e.g. "sheet.png"')
    return Job(
        mode=mode,
        sources=tuple(specs),
        output=Path(os.path.normpath(base / out)) if output is None else Path(out),
        target=target,
        force=bool(data.get("force", False)) if force is None else force,
        drop_empty=data.get("drop_empty", False),
        drop_crowd=data.get("drop_crowd", False),
        gzip=data.get("gzip", False),
        seed=data.get("seed", 0),
        batch_size=data.get("batch_size"),
        exports=tuple(dict.fromkeys(exports)),
        jobs=data.get("jobs"),
        allow_missing_sizes=data.get("allow_missing_sizes", False),
        show=base / sheet if sheet is not None else None,
        yolo_keep_empty=data.get("yolo_keep_empty", False),
    )


def _is_number(value: Any, least: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= least
