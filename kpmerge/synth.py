"""Deterministic synthetic COCO keypoint and raw AI Challenger files, for samples and benchmarks.

`python -m kpmerge.synth OUT --scale 1.0` writes files shaped like COCO person_keypoints_train2017
(118,287 images, 262,465 annotations, polygons and a few RLE crowd masks) and raw AIC train
(210,000 images, 378,374 people) into OUT; `--scale` shrinks or grows both. `--wholebody` writes
COCO-WholeBody train instead: the same images and annotations, each with 6 foot, 68 face and 2 x 21
hand keypoints, part boxes and valid flags (about 700 MB at scale 1).
"""

from __future__ import annotations

import argparse
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .layouts import builtin_layout

COCO_IMAGES, COCO_ANNOTATIONS = 118_287, 262_465
AIC_IMAGES, AIC_PEOPLE = 210_000, 378_374


def _people_per_image(rng: np.random.Generator, images: int, people: int) -> np.ndarray:
    """How many people each image holds: at least one each, the rest spread at random."""
    counts = np.ones(images, dtype=np.int64)
    extra = people - images
    if extra > 0:
        np.add.at(counts, rng.integers(0, images, size=extra), 1)
    return counts


# A standing person facing the camera, as (x, y) shares of the box: the person's left is on the image's
# right. Partners share y, so a same-side link is shorter than the link to the other side at any box shape.
POSE: dict[str, tuple[float, float]] = {
    "head_top": (0.5, 0.0),
    "nose": (0.5, 0.09),
    "left_eye": (0.54, 0.07),
    "right_eye": (0.46, 0.07),
    "left_ear": (0.58, 0.08),
    "right_ear": (0.42, 0.08),
    "neck": (0.5, 0.17),
    "left_shoulder": (0.7, 0.2),
    "right_shoulder": (0.3, 0.2),
    "left_elbow": (0.8, 0.36),
    "right_elbow": (0.2, 0.36),
    "left_wrist": (0.86, 0.5),
    "right_wrist": (0.14, 0.5),
    "left_hip": (0.62, 0.53),
    "right_hip": (0.38, 0.53),
    "left_knee": (0.66, 0.75),
    "right_knee": (0.34, 0.75),
    "left_ankle": (0.68, 0.97),
    "right_ankle": (0.32, 0.97),
}
FACE = ("nose", "left_eye", "right_eye")
"""Keypoints not seen on a person who turns their back to the camera."""
VISIBILITY = (0.3, 0.15, 0.55)
"""Shares of v = 0, 1, 2 in synthetic keypoints."""


def posed_keypoints(
    rng: np.random.Generator,
    boxes: np.ndarray,
    names: tuple[str, ...] | list[str],
    back: float = 0.2,
    viewer: float = 0.0,
    unlabelled: float = VISIBILITY[0],
) -> np.ndarray:
    """(n, k, 3) keypoints of standing people in (n, 4) boxes, in COCO visibility (0, 1, 2).

    Names of `POSE` get their place in the box plus a small jitter; other names a random place. A share
    `back` of the people (rounded) turn their back (mirrored, face keypoints unlabelled); a share
    `viewer` of the others (rounded) face the camera but are labelled from the viewer's side (mirrored,
    face kept). Besides the face of those turning their back, each keypoint is unlabelled (v = 0, x = y
    = 0) with probability `unlabelled`; labelled ones are occluded (v = 1) or visible (v = 2) in the
    proportion of `VISIBILITY`.
    """
    n, k = len(boxes), len(names)
    known = np.array([name in POSE for name in names])
    place = np.array([POSE.get(name, (0.5, 0.5)) for name in names]).reshape(k, 2)
    fx = np.where(known, place[:, 0], rng.uniform(0, 1, k)) + rng.uniform(-0.01, 0.01, (n, k))
    fy = np.where(known, place[:, 1], rng.uniform(0, 1, k)) + rng.uniform(-0.01, 0.01, (n, k))
    n_back = round(n * back)
    n_viewer = round((n - n_back) * viewer)
    kind = rng.permutation(np.repeat([0, 1, 2], [n_back, n_viewer, n - n_back - n_viewer]))
    fx = np.where((kind < 2)[:, None], 1 - fx, fx)
    x, y, w, h = (boxes[:, i : i + 1] for i in range(4))
    px = np.floor(x + np.clip(fx, 0, 1) * w)
    py = np.floor(y + np.clip(fy, 0, 1) * h)
    occluded = VISIBILITY[1] / (VISIBILITY[1] + VISIBILITY[2])
    v = np.where(rng.uniform(0, 1, (n, k)) < occluded, 1.0, 2.0)
    v[rng.uniform(0, 1, (n, k)) < unlabelled] = 0
    face = np.array([name in FACE for name in names])
    v[(kind == 0)[:, None] & face] = 0
    return np.stack([np.where(v > 0, px, 0), np.where(v > 0, py, 0), v], axis=2)


def _poses(
    rng: np.random.Generator, n: int, names: tuple[str, ...], width: np.ndarray, height: np.ndarray
) -> tuple[Any, Any]:
    """Boxes (n, 4) inside the image and posed keypoints (n, k, 3) in COCO visibility (0, 1, 2)."""
    h = np.round(rng.uniform(0.2, 0.9, n) * height, 2)
    w = np.round(np.minimum(rng.uniform(0.35, 0.65, n) * h, 0.9 * width), 2)  # a standing person's shape
    x = np.round(rng.uniform(0, 1, n) * (width - w), 2)
    y = np.round(rng.uniform(0, 1, n) * (height - h), 2)
    boxes = np.stack([x, y, w, h], axis=1)
    return boxes, posed_keypoints(rng, boxes, names)


def synth_coco(scale: float = 1.0, seed: int = 0) -> bytes:
    """COCO person keypoint JSON bytes: images, annotations with polygons, a few RLE crowd regions."""
    rng = np.random.default_rng([seed, 1])
    n_img = max(1, round(COCO_IMAGES * scale))
    n_ann = max(n_img, round(COCO_ANNOTATIONS * scale))
    width = rng.choice([480, 500, 612, 640], n_img)
    height = rng.choice([360, 375, 427, 480], n_img)
    per = _people_per_image(rng, n_img, n_ann)
    img_of = np.repeat(np.arange(n_img), per)
    boxes, kp = _poses(rng, n_ann, builtin_layout("coco").keypoints, width[img_of], height[img_of])
    crowd = rng.uniform(0, 1, n_ann) < 0.01
    kp[crowd] = 0
    area = np.round(boxes[:, 2] * boxes[:, 3] * rng.uniform(0.4, 0.7, n_ann), 4)
    n_pts = rng.integers(10, 66, n_ann)
    images = [
        {
            "license": int(lic),
            "file_name": f"{i + 1:012d}.jpg",
            "coco_url": f"http://images.example/{i + 1:012d}.jpg",
            "height": int(h),
            "width": int(w),
            "date_captured": "2013-11-14 16:28:13",
            "id": i + 1,
        }
        for i, (w, h, lic) in enumerate(zip(width, height, rng.integers(1, 8, n_img), strict=True))
    ]
    annotations = []
    kp_list, box_list, area_list = (
        kp.reshape(n_ann, -1).astype(np.int64).tolist(),
        boxes.tolist(),
        area.tolist(),
    )
    for j in range(n_ann):
        b = box_list[j]
        if crowd[j]:
            seg: Any = {
                "counts": rng.integers(0, 400, 60).tolist(),
                "size": [int(height[img_of[j]]), int(width[img_of[j]])],
            }
        else:
            m = int(n_pts[j])
            xs = np.round(b[0] + rng.uniform(0, 1, m) * b[2], 2)
            ys = np.round(b[1] + rng.uniform(0, 1, m) * b[3], 2)
            seg = [np.stack([xs, ys], axis=1).reshape(-1).tolist()]
        annotations.append(
            {
                "segmentation": seg,
                "num_keypoints": int(np.count_nonzero(kp[j, :, 2] > 0)),
                "area": area_list[j],
                "iscrowd": int(crowd[j]),
                "keypoints": kp_list[j],
                "image_id": int(img_of[j]) + 1,
                "bbox": b,
                "category_id": 1,
                "id": 100_000 + j,
            }
        )
    coco = builtin_layout("coco")
    category = {
        "supercategory": "person",
        "id": 1,
        "name": "person",
        "keypoints": list(coco.keypoints),
        "skeleton": [[a + 1, b + 1] for a, b in coco.skeleton_ids],
    }
    doc = {
        "info": {"description": "kpmerge synthetic COCO keypoints", "version": "1.0"},
        "licenses": [{"url": "", "id": i, "name": f"license {i}"} for i in range(1, 8)],
        "images": images,
        "annotations": annotations,
        "categories": [category],
    }
    return orjson.dumps(doc)


def tiny_png(width: int, height: int) -> bytes:
    """A valid black PNG of `width` x `height` pixels in a few hundred bytes (1-bit greyscale).

    Stands in for a real image where only its size matters (the header kpmerge reads, and what image
    loaders check), e.g. the images of `sample_data/`.
    """
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte 0, then the packed bits of one row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    pixels = zlib.compress(row * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


WHOLEBODY_PARTS = (("foot_kpts", 6), ("face_kpts", 68), ("lefthand_kpts", 21), ("righthand_kpts", 21))
_WHOLEBODY_LABELLED = {"foot_kpts": 0.7, "face_kpts": 0.6, "lefthand_kpts": 0.5, "righthand_kpts": 0.5}
"""Share of annotations with each part labelled (the others are all zeros and not valid)."""
_CHUNK = 4096


def write_synth_wholebody(path: str | Path, scale: float = 1.0, seed: int = 0) -> Path:
    """Write a COCO-WholeBody file: `synth_coco`'s images and annotations plus the whole-body members.

    Members are in the order of the official files (face, hand boxes, hand and face keypoints, valid
    flags, foot last). Part coordinates have two decimals, part visibilities are 0, 1 or 2. The file is
    written in pieces, so that memory stays small.
    """
    doc = orjson.loads(synth_coco(scale, seed))
    rng = np.random.default_rng([seed, 3])
    anns = doc.pop("annotations")
    out = Path(path)
    with out.open("wb") as f:
        f.write(orjson.dumps(doc)[:-1] + b',"annotations":[')
        for lo in range(0, len(anns), _CHUNK):
            chunk = anns[lo : lo + _CHUNK]
            if lo:
                f.write(b",")
            f.write(b",".join(orjson.dumps(a) for a in _wholebody_members(rng, chunk)))
        f.write(b"]}")
    return out


def _wholebody_members(rng: np.random.Generator, anns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The annotations with whole-body members added, in the official member order."""
    n = len(anns)
    boxes = np.array([a["bbox"] for a in anns], dtype=np.float64)
    parts: dict[str, list[list[float]]] = {}
    valid: dict[str, list[bool]] = {}
    for name, k in WHOLEBODY_PARTS:
        labelled = (rng.uniform(0, 1, n) < _WHOLEBODY_LABELLED[name]) & (boxes[:, 2] > 1)
        x = np.round(boxes[:, :1] + rng.uniform(0, 1, (n, k)) * boxes[:, 2:3], 2)
        y = np.round(boxes[:, 1:2] + rng.uniform(0, 1, (n, k)) * boxes[:, 3:4], 2)
        v = rng.choice([1.0, 2.0], size=(n, k), p=[0.2, 0.8])
        kp = np.where(labelled[:, None, None], np.stack([x, y, v], axis=2), 0.0).reshape(n, 3 * k)
        parts[name] = [[int(c) if c.is_integer() else c for c in row] for row in kp.tolist()]
        valid[name] = labelled.tolist()
    part_boxes = {}
    for name in ("face_box", "lefthand_box", "righthand_box"):
        side = np.round(boxes[:, 2:3] * rng.uniform(0.1, 0.3, (n, 1)), 2)
        part_boxes[name] = np.round(np.concatenate([boxes[:, :2], side, side], axis=1), 2).tolist()
    out = []
    for j, a in enumerate(anns):
        out.append(
            a
            | {
                "face_box": part_boxes["face_box"][j],
                "lefthand_box": part_boxes["lefthand_box"][j],
                "righthand_box": part_boxes["righthand_box"][j],
                "lefthand_kpts": parts["lefthand_kpts"][j],
                "righthand_kpts": parts["righthand_kpts"][j],
                "face_kpts": parts["face_kpts"][j],
                "face_valid": valid["face_kpts"][j],
                "lefthand_valid": valid["lefthand_kpts"][j],
                "righthand_valid": valid["righthand_kpts"][j],
                "foot_kpts": parts["foot_kpts"][j],
                "foot_valid": valid["foot_kpts"][j],
            }
        )
    return out


def synth_aic(scale: float = 1.0, seed: int = 0) -> bytes:
    """Raw AI Challenger keypoint JSON bytes: one record per image, several people each."""
    return _synth_aic(scale, seed)[0]


def synth_aic_sizes(scale: float = 1.0, seed: int = 0) -> dict[str, tuple[int, int]]:
    """The (width, height) of every image of `synth_aic(scale, seed)`, by image id (its poses fit in it)."""
    return _synth_aic(scale, seed)[1]


def _synth_aic(scale: float, seed: int) -> tuple[bytes, dict[str, tuple[int, int]]]:
    rng = np.random.default_rng([seed, 2])
    n_img = max(1, round(AIC_IMAGES * scale))
    n_people = max(n_img, round(AIC_PEOPLE * scale))
    width = rng.choice([640, 800, 900, 950], n_img)
    height = rng.choice([480, 596, 600, 641], n_img)
    per = _people_per_image(rng, n_img, n_people)
    img_of = np.repeat(np.arange(n_img), per)
    boxes, kp = _poses(rng, n_people, builtin_layout("aic").keypoints, width[img_of], height[img_of])
    kp[:, :, 2] = np.array([3, 2, 1])[kp[:, :, 2].astype(np.int64)]  # COCO -> raw AIC visibility
    xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1).round().astype(np.int64)
    kp_list, box_list = kp.reshape(n_people, -1).astype(np.int64).tolist(), xyxy.tolist()
    records, j, sizes = [], 0, {}
    for i in range(n_img):
        image_id = f"{rng.integers(0, 2**63):016x}{i:024x}"
        sizes[image_id] = (int(width[i]), int(height[i]))
        humans = [f"human{h + 1}" for h in range(int(per[i]))]
        order = humans[::-1]  # files list humans in no particular order
        records.append(
            {
                "url": f"http://images.example/aic/{image_id}.jpg",
                "image_id": image_id,
                "keypoint_annotations": {h: kp_list[j + humans.index(h)] for h in order},
                "human_annotations": {h: box_list[j + humans.index(h)] for h in order},
            }
        )
        j += len(humans)
    # The real file was written by Python's json module: `, ` and `: ` separators.
    return json.dumps(records).encode("ascii"), sizes


def write_synth(out: str | Path, scale: float = 1.0, seed: int = 0) -> dict[str, Path]:
    """Write `coco_synth.json` and `aic_synth.json` into `out`; returns their paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"coco": folder / "coco_synth.json", "aic": folder / "aic_synth.json"}
    paths["coco"].write_bytes(synth_coco(scale, seed))
    paths["aic"].write_bytes(synth_aic(scale, seed))
    return paths


SAMPLE_COCO_IMAGES, SAMPLE_AIC_IMAGES = 6, 5


SAMPLE_AIC_IMAGE_DIR = "aic_images"
"""The folder of `sample_data/` holding an image per sample AIC record (a tiny PNG of its size)."""


def write_samples(out: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write the small `coco_sample.json` and `aic_sample.json` of `sample_data/` into `out`, and for
    the raw AIC records (which hold no image sizes) an image of the right size each in `aic_images/`."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"coco": folder / "coco_sample.json", "aic": folder / "aic_sample.json"}
    paths["coco"].write_bytes(synth_coco(SAMPLE_COCO_IMAGES / COCO_IMAGES, seed))
    data, sizes = _synth_aic(SAMPLE_AIC_IMAGES / AIC_IMAGES, seed)
    paths["aic"].write_bytes(data)
    images = folder / SAMPLE_AIC_IMAGE_DIR
    images.mkdir(exist_ok=True)
    for image_id, (width, height) in sizes.items():
        # Raw AIC names every image <image_id>.jpg; image readers go by the content, not the suffix.
        (images / f"{image_id}.jpg").write_bytes(tiny_png(width, height))
    paths["aic_images"] = images
    return paths


def main(argv: list[str] | None = None) -> None:
    """`python -m kpmerge.synth OUT [--scale S] [--seed N] [--sample]`."""
    parser = argparse.ArgumentParser(prog="python -m kpmerge.synth", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write coco_synth.json and aic_synth.json into")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = full COCO train + AIC train sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", action="store_true", help="write the small files of sample_data/ instead")
    parser.add_argument("--wholebody", action="store_true", help="write coco_wholebody_synth.json instead")
    args = parser.parse_args(argv)
    if args.wholebody:
        path = write_synth_wholebody(Path(args.out) / "coco_wholebody_synth.json", args.scale, args.seed)
        print(f"coco_wholebody: {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return
    write = (
        write_samples(args.out, args.seed) if args.sample else write_synth(args.out, args.scale, args.seed)
    )
    for name, path in write.items():
        size = sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size
        print(f"{name}: {path} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
