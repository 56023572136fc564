"""Small deterministic input files for tests and examples, shaped like each dataset's own files.

`synth_style` builds a COCO-style document like the COCO-style file of a dataset (COCO, converted AIC,
CrowdPose, Halpe, OCHuman, PoseTrack18, JHMDB: their field sets, name spellings, coordinate origins and
visibility values); `synth_raw_aic` and `synth_mpii` build raw AI Challenger and MMPose MPII records with
the sizes of their images, which `write_image_headers` writes as tiny PNG files. Every image has a size
and every box lies inside its image, so the files pass the checks a real run makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .layouts import builtin_layout
from .synth import tiny_png

STYLES = ("coco", "aic", "crowdpose", "halpe", "ochuman", "posetrack18", "jhmdb")
"""Datasets whose COCO-style files (as MMPose ships them) `synth_style` imitates."""

_NO_CROWD_FIELD = ("aic", "jhmdb")


def _style_names(dataset: str, names: tuple[str, ...]) -> list[str]:
    """Category keypoint names as the dataset's own files spell them."""
    if dataset == "halpe":
        return []  # Halpe files leave the list empty: the layout is known by K = 136
    if dataset == "aic":
        return [n.replace("_", " ").title() for n in names]  # `Right Shoulder`, `Head Top`
    if dataset == "crowdpose":
        return ["head" if n == "top_head" else n for n in names]
    return list(names)


def synth_style(
    dataset: str = "coco",
    images: int = 3,
    people: int = 6,
    seed: int = 0,
    unlabelled: int = 1,
    crowd: int = 0,
) -> dict[str, Any]:
    """A small COCO-style document shaped like the COCO-style file of `dataset` (one of `STYLES`).

    Every image has a width and a height, every box lies inside its image with `x, y >= 1`, and
    every labelled keypoint inside its box. Person 0 and all persons after the first `unlabelled`
    ones have at least one labelled keypoint; persons `1 .. unlabelled` have none; the last `crowd`
    persons are crowd regions (`iscrowd` 1, no keypoints, an RLE mask). The fields follow the
    dataset's files: AIC and CrowdPose have no `area`, AIC and JHMDB no `iscrowd`, JHMDB no
    `num_keypoints` and 1-based coordinates with `v` written as 2.0, PoseTrack18 `v` in {0, 1},
    `track_id`, `bbox_head` and a boolean `iscrowd`, CrowdPose images a `crowdIndex`, Halpe an
    empty keypoint name list, COCO polygons and OCHuman RLE masks.

    Raises:
        ValueError: for an unknown dataset, or counts that do not fit.
    """
    if dataset not in STYLES:
        raise ValueError(f"dataset: expected one of {', '.join(STYLES)}, got {dataset!r}")
    if people < 1 + unlabelled + crowd or images < 1:
        raise ValueError(f"people: expected at least {1 + unlabelled + crowd}, got {people}")
    if crowd and dataset in _NO_CROWD_FIELD:
        raise ValueError(f"{dataset} files have no iscrowd field")
    layout = builtin_layout(dataset)
    k = len(layout)
    rng = np.random.default_rng([seed, 3, STYLES.index(dataset)])
    width = rng.choice([320, 640, 900], images)
    height = rng.choice([240, 425, 600], images)
    img_of = np.arange(people) * images // people
    iw, ih = width[img_of], height[img_of]
    w = np.round(rng.uniform(0.2, 0.5, people) * iw, 2)
    h = np.round(rng.uniform(0.3, 0.8, people) * ih, 2)
    x = np.round(1 + rng.uniform(0, 1, people) * (iw - w - 2), 2)
    y = np.round(1 + rng.uniform(0, 1, people) * (ih - h - 2), 2)
    px = np.ceil(x)[:, None] + np.floor(rng.uniform(0, 1, (people, k)) * (w[:, None] - 2))
    py = np.ceil(y)[:, None] + np.floor(rng.uniform(0, 1, (people, k)) * (h[:, None] - 2))
    px += rng.choice([0.0, 0.5], (people, k), p=[0.8, 0.2])
    levels = {"posetrack18": [0, 1], "jhmdb": [2]}.get(dataset, [0, 1, 2])
    v = rng.choice(levels, size=(people, k)).astype(np.float64)
    v[np.arange(people), rng.integers(0, k, people)] = max(levels)  # at least one labelled
    is_crowd = np.zeros(people, dtype=bool)
    is_crowd[people - crowd :] = True
    v[1 : 1 + unlabelled] = 0
    v[is_crowd] = 0
    origin = 1 if dataset == "jhmdb" else 0
    kp = np.stack([np.where(v > 0, px + origin, 0), np.where(v > 0, py + origin, 0), v], axis=2)
    boxes = np.stack([x + origin, y + origin, w, h], axis=1)
    area = np.round(w * h * rng.uniform(0.4, 0.7, people), 4)

    image_list: list[dict[str, Any]] = []
    for i in range(images):
        size = {"width": int(width[i]), "height": int(height[i])}
        if dataset == "aic":
            image_id = f"{int(rng.integers(0, 2**63)):016x}{i:024x}"
            rec = {"url": f"http://images.example/{image_id}.jpg", "file_name": f"{image_id}.jpg"}
            rec |= {"height": size["height"], "width": size["width"], "id": i + 1}
        elif dataset == "crowdpose":
            rec = {"file_name": f"{100_000 + i}.jpg", "id": 100_000 + i, **size}
            rec["crowdIndex"] = round(float(rng.uniform(0, 1)), 2)
        elif dataset in ("posetrack18", "jhmdb"):
            frame = 10_000_000_000 + i
            rec = {"is_labeled": True, "file_name": f"images/val/000{i // 2:03d}/{i:06d}.jpg", "nframes": 40}
            rec |= {"frame_id": frame, "vid_id": f"000{i // 2:03d}", "id": frame, **size}
            if dataset == "posetrack18":
                rec |= {"ignore_regions_x": [], "ignore_regions_y": []}
        else:
            rec = {"license": 4, "file_name": f"{785 + 13 * i:012d}.jpg", "id": 785 + 13 * i, **size}
        image_list.append(rec)

    kp_rows = [[int(c) if float(c).is_integer() else float(c) for c in row] for row in kp.reshape(people, -1)]
    if dataset == "jhmdb":
        kp_rows = [[float(c) for c in row] for row in kp.reshape(people, -1)]
    annotations: list[dict[str, Any]] = []
    for j in range(people):
        image = image_list[int(img_of[j])]
        box = [float(c) for c in boxes[j]]
        n_kp = int(np.count_nonzero(v[j] > 0))
        ann: dict[str, Any] = {"id": 400_000 + 7 * j, "image_id": image["id"], "category_id": 1}
        ann |= {"keypoints": kp_rows[j], "bbox": box}
        if dataset != "jhmdb":
            ann["num_keypoints"] = n_kp
        if dataset not in ("aic", "crowdpose", "jhmdb", "posetrack18"):
            ann["area"] = float(area[j])
        if dataset == "posetrack18":
            ann |= {"iscrowd": bool(is_crowd[j]), "track_id": j, "bbox_head": box, "scores": []}
        elif dataset == "jhmdb":
            ann |= {"track_id": 0, "scores": []}
        elif dataset != "aic":
            ann["iscrowd"] = int(is_crowd[j])
        hw = [image["height"], image["width"]]
        rle = {"counts": [hw[0] * hw[1] // 2, 10, hw[0] * hw[1] - hw[0] * hw[1] // 2 - 10], "size": hw}
        if is_crowd[j] or dataset == "ochuman":
            ann["segmentation"] = rle
        elif dataset == "coco":
            b = box
            ann["segmentation"] = [
                [b[0], b[1], b[0] + b[2], b[1], b[0] + b[2], b[1] + b[3], b[0], b[1] + b[3]]
            ]
        annotations.append(ann)
    category = {"supercategory": "person", "id": 1, "name": "person"}
    category |= {"keypoints": _style_names(dataset, layout.keypoints)}
    category["skeleton"] = [[a + 1, b + 1] for a, b in layout.skeleton_ids]
    return {"images": image_list, "annotations": annotations, "categories": [category]}


def synth_raw_aic(
    images: int = 3, people: int = 6, seed: int = 0, unlabelled: int = 1
) -> tuple[list[dict[str, Any]], dict[str, tuple[int, int]]]:
    """Small raw AI Challenger records and the size (width, height) of each image by file name.

    People are listed as `human1 .. humanN` per image in reverse order (files keep no order), boxes
    lie inside the image, persons `1 .. unlabelled` (0-based, over the whole file) have no labelled
    keypoint and every other person at least one.
    """
    doc = synth_style("coco", images, people, seed, unlabelled)
    rng = np.random.default_rng([seed, 4])
    raw_v = np.array([3, 2, 1])  # COCO v 0, 1, 2 -> raw AIC 3, 2, 1
    records: list[dict[str, Any]] = []
    sizes: dict[str, tuple[int, int]] = {}
    for i, image in enumerate(doc["images"]):
        image_id = f"{int(rng.integers(0, 2**63)):016x}{i:024x}"
        sizes[f"{image_id}.jpg"] = (image["width"], image["height"])
        mine = [a for a in doc["annotations"] if a["image_id"] == image["id"]]
        kps, boxes = {}, {}
        for h, ann in reversed(list(enumerate(mine, start=1))):
            kp = np.array(ann["keypoints"], dtype=np.float64).reshape(17, 3)[:14]
            kp[:, 2] = raw_v[kp[:, 2].astype(np.int64)]
            kps[f"human{h}"] = kp.reshape(-1).astype(np.int64).tolist()
            x, y, w, hh = ann["bbox"]
            boxes[f"human{h}"] = [round(x), round(y), round(x + w), round(y + hh)]
        records.append(
            {
                "url": f"http://images.example/aic/{image_id}.jpg",
                "image_id": image_id,
                "keypoint_annotations": kps,
                "human_annotations": boxes,
            }
        )
    return records, sizes


def synth_mpii(
    images: int = 3, people: int = 5, seed: int = 0
) -> tuple[list[dict[str, Any]], dict[str, tuple[int, int]]]:
    """Small MMPose MPII records (1-based joints, `joints_vis` 0 or 1, each with a labelled joint) and
    the size (width, height) of each image by file name; centres and boxes lie inside the image."""
    rng = np.random.default_rng([seed, 5])
    sizes = {f"{5_808_361 + i:09d}.jpg": (1280, 720) for i in range(images)}
    names = list(sizes)
    records = []
    for j in range(people):
        scale = round(float(rng.uniform(1.0, 2.5)), 6)
        center = [float(np.floor(rng.uniform(300, 980))), float(np.floor(rng.uniform(300, 400)))]
        half = 100 * scale
        xs = np.floor(rng.uniform(center[0] - half, center[0] + half, 16))
        ys = np.floor(rng.uniform(center[1] - half + 15 * scale, center[1] + half, 16))
        vis = rng.integers(0, 2, 16)
        vis[rng.integers(0, 16)] = 1
        joints = [[float(a), float(b)] if s else [-1.0, -1.0] for a, b, s in zip(xs, ys, vis, strict=True)]
        records.append(
            {
                "joints_vis": vis.tolist(),
                "joints": joints,
                "image": names[j * images // people],
                "scale": scale,
                "center": center,
            }
        )
    return records, sizes


def write_image_headers(folder: str | Path, sizes: dict[str, tuple[int, int]]) -> Path:
    """Write a `tiny_png` of each size in `sizes` (file name -> (width, height)) into `folder`."""
    root = Path(folder)
    for name, (w, h) in sizes.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tiny_png(w, h))
    return root
