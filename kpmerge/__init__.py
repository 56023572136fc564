"""kpmerge: merge and combine human-pose keypoint datasets offline.

The public API, importable from here (each name is loaded from its module on first use, so that
`import kpmerge` stays cheap for the command line). Inspection and evaluation files live in their
modules: `kpmerge.inspect.inspect`, `kpmerge.project.project`, `kpmerge.show.show`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "KpmergeError": "errors",
    "UsageError": "errors",
    "Layout": "layouts",
    "load_layout": "layouts",
    "builtin_layout": "layouts",
    "detect_layout": "layouts",
    "Dataset": "instances",
    "Images": "instances",
    "Instances": "instances",
    "read_dataset": "formats",
    "Mapping": "mapping",
    "build_mapping": "mapping",
    "apply_mapping": "mapping",
    "Source": "build",
    "Merged": "build",
    "merge": "build",
    "combine": "build",
    "union_layout": "build",
    "write_output": "output",
    "Job": "job",
    "SourceSpec": "job",
    "load_source": "job",
    "run_job": "job",
    "read_recipe": "recipe",
    "ManifestSampler": "sampling",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'kpmerge' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
