"""What the trainer tests feed the real tools: small inputs they build, tiny images, kpmerge runs.

Nothing here imports a trainer; each test module imports its tool through `need`, which skips without
it, except in CI (`CI=true`), where `make test-trainers` has installed it and a missing tool fails.
"""

from __future__ import annotations

import gzip
import importlib
import json
import os
import shutil
import struct
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from kpmerge.cli import cli
from kpmerge.layouts import builtin_layout
from kpmerge.synth import AIC_IMAGES, COCO_IMAGES, synth_aic, synth_coco

ALLOW = ("true", "1", "yes")


def in_ci() -> bool:
    """True where a missing trainer must fail instead of skip (CI sets CI=true)."""
    return os.environ.get("CI", "").strip().lower() in ALLOW


def need(module: str) -> ModuleType:
    """Import a trainer's module for a whole test module: skip without it, fail in CI."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = f"{module} cannot be imported ({exc}); `make test-trainers` installs it in its own venv"
        if in_ci():
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message, allow_module_level=True)


# --- images ---------------------------------------------------------------------------------------


def png_bytes(width: int, height: int) -> bytes:
    """A valid grey PNG of that size (a few hundred bytes): enough for kpmerge to read its header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = (b"\x00" + b"\x80" * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def write_jpeg(path: Path, width: int, height: int) -> None:
    """A real grey JPEG (Pillow), for tools that decode and verify images."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (120, 120, 120)).save(path, format="JPEG", quality=30)


# --- inputs -----------------------------------------------------------------------------------------


def coco_file(folder: Path, images: int = 12, seed: int = 3) -> Path:
    """A synthetic COCO person keypoint file with image sizes (kpmerge.synth), `coco.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "coco.json"
    path.write_bytes(synth_coco(images / COCO_IMAGES, seed))
    return path


def aic_file(
    folder: Path, images: int = 10, seed: int = 3, shrink_every: int = 0, jpeg: bool = False
) -> tuple[Path, Path]:
    """A synthetic raw AI Challenger file `aic.json` and its image folder `aic_images/`.

    Each image is just large enough for its people's boxes; with `shrink_every` = n, every n-th image is
    written at a third of that size, so some boxes lie partly or wholly outside their image. PNG bytes
    under the `.jpg` names kpmerge expects (kpmerge reads only the header), or real JPEGs with `jpeg`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "aic.json"
    data = synth_aic(images / AIC_IMAGES, seed)
    path.write_bytes(data)
    image_dir = folder / "aic_images"
    image_dir.mkdir(exist_ok=True)
    for i, record in enumerate(json.loads(data)):
        boxes = np.array(list(record["human_annotations"].values()), dtype=np.float64)
        width, height = int(boxes[:, 2].max()) + 8, int(boxes[:, 3].max()) + 8
        if shrink_every and i % shrink_every == 0:
            width, height = max(16, width // 3), max(16, height // 3)
        target = image_dir / f"{record['image_id']}.jpg"
        if jpeg:
            write_jpeg(target, width, height)
        else:
            target.write_bytes(png_bytes(width, height))
    return path, image_dir


def coco_style_file(
    path: Path, layout: str, images: int = 8, seed: int = 5, image_size: tuple[int, int] = (320, 240)
) -> Path:
    """A COCO-style file in a built-in layout (keypoint names in the category), all boxes inside."""
    lay = builtin_layout(layout)
    rng = np.random.default_rng(seed)
    width, height = image_size
    records, annotations = [], []
    for i in range(images):
        records.append(
            {"id": 500 + i, "file_name": f"{layout}_{i:04d}.jpg", "width": width, "height": height}
        )
        for _ in range(int(rng.integers(1, 4))):
            w, h = float(rng.integers(30, 120)), float(rng.integers(40, 160))
            x, y = float(rng.integers(0, width - int(w))), float(rng.integers(0, height - int(h)))
            v = rng.choice([0, 1, 2], size=len(lay), p=[0.25, 0.25, 0.5])
            px = np.where(v > 0, np.floor(x + rng.uniform(0, 1, len(lay)) * w), 0)
            py = np.where(v > 0, np.floor(y + rng.uniform(0, 1, len(lay)) * h), 0)
            kp = np.stack([px, py, v], axis=1).astype(int).reshape(-1).tolist()
            annotations.append(
                {
                    "id": 9000 + len(annotations),
                    "image_id": 500 + i,
                    "category_id": 1,
                    "keypoints": kp,
                    "num_keypoints": int((v > 0).sum()),
                    "bbox": [x, y, w, h],
                    "area": w * h * 0.6,
                    "iscrowd": 0,
                }
            )
    category = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(lay.keypoints),
        "skeleton": [[a + 1, b + 1] for a, b in lay.skeleton_ids],
    }
    doc = {"images": records, "annotations": annotations, "categories": [category]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def _edge(iid: int, aid: int, bbox: list[float], kp: list[list[float]], iscrowd: int = 0) -> dict[str, Any]:
    full = [[0.0, 0.0, 0]] * 17
    full = [*kp, *full[len(kp) :]]
    return {
        "id": aid,
        "image_id": iid,
        "category_id": 1,
        "keypoints": [c for p in full for c in p],
        "num_keypoints": sum(1 for p in full if p[2] > 0),
        "bbox": bbox,
        "area": max(1.0, bbox[2] * bbox[3]),
        "iscrowd": iscrowd,
    }


EDGE_CASES: list[tuple[str, list[float], list[list[float]], int, bool]] = [
    # (what, bbox on a 100 x 80 image, first keypoints, iscrowd, MMPose keeps it)
    ("inside", [10, 10, 30, 40], [[20, 20, 2], [25, 30, 1]], 0, True),
    ("wholly right of the image", [150, 10, 30, 40], [[160, 20, 2]], 0, False),
    ("wholly below the image", [10, 90, 30, 40], [[20, 95, 2]], 0, False),
    ("starting at the last column", [99, 10, 30, 40], [[99, 20, 2]], 0, False),
    ("wholly left of the image", [-50, 10, 30, 40], [[-40, 20, 2]], 0, False),
    ("partly right of the image", [90, 10, 30, 40], [[95, 20, 2]], 0, True),
    ("partly above the image", [10, -20, 30, 40], [[20, 5, 2]], 0, True),
    ("keypoints all at (0, 0)", [10, 10, 30, 40], [[0, 0, 2], [0, 0, 1]], 0, False),
    ("keypoints all at negative coordinates", [10, 10, 30, 40], [[-3, -4, 2]], 0, False),
    ("one coordinate above 0", [10, 10, 30, 40], [[0, 7, 2]], 0, True),
    ("crowd", [10, 10, 30, 40], [[20, 20, 2]], 1, False),
    ("no labelled keypoint", [10, 10, 30, 40], [], 0, False),
    ("zero-width box", [10, 10, 0, 40], [[10, 20, 2]], 0, False),
    ("thin box", [10, 10, 0.5, 40], [[10, 20, 2]], 0, True),
]
"""Instances MMPose's top-down loader drops or keeps (BaseCocoStyleDataset, MMPose 1.3.2)."""


def edge_file(folder: Path) -> Path:
    """A COCO file of the edge cases above, on two 100 x 80 images, plus an image without people."""
    images = [{"id": i, "file_name": f"edge_{i}.jpg", "width": 100, "height": 80} for i in (1, 2, 3)]
    anns = [
        _edge(1 + j % 2, 100 + j, [float(c) for c in box], kp, crowd)
        for j, (_, box, kp, crowd, _) in enumerate(EDGE_CASES)
    ]
    doc = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": list(builtin_layout("coco").keypoints)}],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "edge.json"
    path.write_text(json.dumps(doc))
    return path


# --- kpmerge ------------------------------------------------------------------------------------------


def kpmerge(*args: Any) -> Result:
    """Run the kpmerge CLI (click's CliRunner); the result has exit_code, stdout and stderr."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def kpmerge_ok(*args: Any) -> Result:
    """Run the kpmerge CLI and require success."""
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, f"kpmerge {' '.join(map(str, args))}: {result.stderr}"
    return result


def gunzip_output(out: Path) -> Path:
    """Decompress OUT/annotations.json.gz beside itself, as the README tells MMPose users to."""
    with gzip.open(out / "annotations.json.gz", "rb") as src, (out / "annotations.json").open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return out / "annotations.json"


def read_json(path: Path) -> Any:
    """A JSON file, parsed."""
    return json.loads(path.read_text("utf-8"))


def pools(out: Path) -> dict[str, set[int]]:
    """The trainable pool of each source in OUT/manifest.json (positions in annotations)."""
    return {s["name"]: set(s["pool"]) for s in read_json(out / "manifest.json")["sources"]}


def keypoint_rows(out: Path) -> dict[int, np.ndarray]:
    """Each annotation's (K, 3) keypoints as kpmerge wrote them, by annotation id."""
    anns = read_json(out / "annotations.json")["annotations"]
    return {a["id"]: np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3) for a in anns}
