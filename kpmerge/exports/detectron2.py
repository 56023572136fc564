"""Detectron2 export: keypoint metadata as JSON and a register.py that registers the output (pure, no I/O).

Detectron2 reads the output's COCO annotations.json itself (`register_coco_instances`); what it cannot read
from that file is the metadata its keypoint models need: `keypoint_names` (index order), `keypoint_flip_map`
(pairs of names whose flip partners differ; `create_keypoint_hflip_indices` turns it into flip indices),
`keypoint_connection_rules` (name, name, RGB 0-255, for its Visualizer) and the OKS sigmas
(`cfg.TEST.KEYPOINT_OKS_SIGMAS`, which its COCOEvaluator requires to have K entries).
"""

from __future__ import annotations

import re
from typing import Any

from ..build import Merged
from ..jsonwrite import dumps_pretty
from ..layouts import Layout

FOLDER = "detectron2"
METADATA = "metadata.json"
REGISTER = "register.py"
DEFAULT_LINK_COLOR = (0, 255, 0)


def dataset_name(layout: Layout) -> str:
    """The default Detectron2 dataset name: `kpmerge_<layout>` with non-word characters as `_`."""
    return "kpmerge_" + re.sub(r"\W+", "_", layout.name).strip("_")


def detectron2_metadata(layout: Layout) -> dict[str, Any]:
    """The Detectron2 metadata of a layout, JSON-ready (tuples as lists)."""
    names = list(layout.keypoints)
    colors = layout.skeleton_colors or (DEFAULT_LINK_COLOR,) * len(layout.skeleton)
    return {
        "name": dataset_name(layout),
        "layout": layout.name,
        "num_keypoints": len(names),
        "thing_classes": ["person"],
        "keypoint_names": names,
        "keypoint_flip_map": [[names[i], names[j]] for i, j in layout.flip_pairs],
        "keypoint_connection_rules": [
            [a, b, [int(c) for c in color]] for (a, b), color in zip(layout.skeleton, colors, strict=True)
        ],
        "keypoint_oks_sigmas": list(layout.sigmas),
    }


def register_py(merged: Merged, annotations: str = "annotations.json") -> str:
    """A register.py that registers the output with Detectron2 and sets its keypoint metadata."""
    meta = detectron2_metadata(merged.layout)
    flip = [tuple(p) for p in meta["keypoint_flip_map"]]
    rules = [(a, b, tuple(c)) for a, b, c in meta["keypoint_connection_rules"]]
    sources = ", ".join(s.name for s in merged.sources)
    lines = [
        f'"""Register the kpmerge {merged.mode} of {sources} (layout {merged.layout.name}) with Detectron2.',
        "",
        "    from register import register, configure",
        "    register(image_root='/data/images')          # the data root your image file names start from",
        "    cfg.DATASETS.TRAIN = (NAME,); configure(cfg)  # keypoint head size and OKS sigmas",
        "",
        "Written by kpmerge; the same values are in metadata.json.",
        '"""',
        "",
        "import os",
        "",
        "from detectron2.data import MetadataCatalog",
        "from detectron2.data.datasets import register_coco_instances",
        "",
        f"NAME = {meta['name']!r}",
        f"ANNOTATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', {annotations!r})",
        f"KEYPOINT_NAMES = {tuple(meta['keypoint_names'])!r}",
        f"KEYPOINT_FLIP_MAP = {tuple(flip)!r}",
        f"KEYPOINT_CONNECTION_RULES = {rules!r}",
        f"KEYPOINT_OKS_SIGMAS = {meta['keypoint_oks_sigmas']!r}",
        "",
        "",
        "def register(image_root, name=NAME, json_file=ANNOTATIONS):",
        '    """Register the annotations under `name` and set the keypoint metadata."""',
        "    if not os.path.exists(json_file) and os.path.exists(json_file + '.gz'):",
        "        raise FileNotFoundError(f'{json_file}: decompress it first (gunzip -k {json_file}.gz)')",
        "    register_coco_instances(name, {}, json_file, image_root)",
        "    MetadataCatalog.get(name).set(",
        "        thing_classes=['person'],",
        "        keypoint_names=KEYPOINT_NAMES,",
        "        keypoint_flip_map=KEYPOINT_FLIP_MAP,",
        "        keypoint_connection_rules=KEYPOINT_CONNECTION_RULES,",
        "    )",
        "    return name",
        "",
        "",
        "def configure(cfg):",
        '    """Set the keypoint head size and the OKS sigmas of a Detectron2 config."""',
        f"    cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = {len(merged.layout)}",
        "    cfg.TEST.KEYPOINT_OKS_SIGMAS = list(KEYPOINT_OKS_SIGMAS)",
        "    return cfg",
        "",
    ]
    return "\n".join(lines)


def detectron2_files(merged: Merged) -> dict[str, bytes]:
    """The export's files under `detectron2/`: name -> bytes."""
    return {
        f"{FOLDER}/{METADATA}": dumps_pretty(detectron2_metadata(merged.layout)),
        f"{FOLDER}/{REGISTER}": register_py(merged).encode("utf-8"),
    }
