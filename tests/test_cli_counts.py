"""Nothing lost: per source, read = written + not written (by reason), and numbers keep their values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from kpmerge.synth_styles import STYLES, synth_style
from tests.conftest import AIC_RAW, COCO_STYLE, fixture, needs_fixtures
from tests.synthfiles import raw_aic_file, style_file, write_json

FLAGS = [[], ["--drop-empty"], ["--drop-crowd"], ["--drop-empty", "--drop-crowd"]]
CROWD = {s: 0 if s in ("aic", "jhmdb") else 1 for s in STYLES}
"""Crowd regions per synthetic style (AIC and JHMDB files have no iscrowd field)."""


def _with_crowd_and_dog(tmp_path: Path) -> Path:
    """A COCO file of 14 people (2 unlabelled, none crowd) plus a second, non-person category with one
    annotation, and one person turned into a crowd region."""
    data = synth_style("coco", images=4, people=14, unlabelled=2)
    data["categories"].append({"id": 18, "name": "dog", "supercategory": "animal"})
    dog = dict(data["annotations"][0], id=999001, category_id=18)
    data["annotations"].insert(3, dog)
    data["annotations"][5]["iscrowd"] = 1
    return write_json(tmp_path / "coco_crowd_dog.json", data)


def _run(args: list[str], out: Path) -> tuple[dict[str, Any], str]:
    result = CliRunner().invoke(cli, [*args, "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return json.loads((out / "manifest.json").read_text()), result.stderr


def _summary_rows(stderr: str) -> dict[str, dict[str, str]]:
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("source "))
    head = re.split(r"\s{2,}", lines[start].strip())
    rows = {}
    for line in lines[start + 2 :]:
        if line.startswith("note:") or not line.strip():
            break
        cells = dict(zip(head, re.split(r"\s{2,}", line.strip()), strict=True))
        rows[cells["source"]] = cells
    return rows


def _reasons(cell: str) -> dict[str, int]:
    if cell == "0":
        return {}
    return {k: int(v) for k, v in (part.rsplit(" ", 1) for part in cell.split(", "))}


def _check_conserved(manifest: dict[str, Any], stderr: str, annotations: dict[str, Any]) -> None:
    rows = _summary_rows(stderr)
    total = 0
    for src in manifest["sources"]:
        counts = src["annotations"]
        assert counts["read"] == counts["written"] + sum(counts["not_written"].values())
        row = rows[src["name"]]
        assert int(row["read"]) == counts["read"]
        assert int(row["written"]) == counts["written"]
        assert _reasons(row["not written"]) == counts["not_written"]
        start, stop = counts["range"]
        assert stop - start == counts["written"]
        in_range = annotations["annotations"][start:stop]
        assert {a["source"] for a in in_range} <= {src["name"]}
        total += counts["written"]
    assert total == manifest["annotations"] == len(annotations["annotations"])


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "+".join(f) or "plain")
def test_counts_conserved_every_style_combined(tmp_path, flags):
    sources = [f"{n}={style_file(tmp_path, n, people=5, crowd=CROWD[n])}" for n in STYLES]
    sources.insert(1, f"dog={_with_crowd_and_dog(tmp_path)}")
    raw, images = raw_aic_file(tmp_path, people=4)
    sources.append(f"aicraw={raw}")
    out = tmp_path / "OUT"
    manifest, stderr = _run(["combine", *sources, "--image-dir", f"aicraw={images}", *flags], out)
    annotations = json.loads((out / "annotations.json").read_text())
    _check_conserved(manifest, stderr, annotations)
    counts = {s["name"]: s["annotations"] for s in manifest["sources"]}
    dog = counts["dog"]
    assert dog["read"] == 15
    assert dog["not_written"].get("other_category") == 1
    assert dog["not_written"].get("crowd", 0) == (1 if "--drop-crowd" in flags else 0)
    if "--drop-empty" in flags:
        assert dog["not_written"]["no_labelled_keypoints"] == 2
    for name in STYLES:
        crowd = CROWD[name] if "--drop-crowd" in flags else 0
        empty = 1 + CROWD[name] - crowd if "--drop-empty" in flags else 0
        assert counts[name]["read"] == 5
        assert counts[name]["written"] == 5 - crowd - empty, name


def test_counts_in_merge_with_drop_flags(tmp_path):
    out = tmp_path / "OUT"
    path = _with_crowd_and_dog(tmp_path)
    raw, images = raw_aic_file(tmp_path, people=6, unlabelled=1)
    args = ["merge", str(path), f"aic={raw}", "--image-dir", f"aic={images}", "--drop-empty", "--drop-crowd"]
    manifest, stderr = _run(args, out)
    annotations = json.loads((out / "annotations.json").read_text())
    _check_conserved(manifest, stderr, annotations)
    coco, aic = (s["annotations"] for s in manifest["sources"])
    assert coco == {
        "read": 15,
        "written": 11,
        "not_written": {"crowd": 1, "no_labelled_keypoints": 2, "other_category": 1},
        "range": [0, 11],
    }
    assert aic == {"read": 6, "written": 5, "not_written": {"no_labelled_keypoints": 1}, "range": [11, 16]}


def _numbers(ann: dict[str, Any], origin: int = 0) -> list[Any]:
    """Keypoints, box and area; with `origin` 1, shifted as kpmerge reads a 1-based file."""
    kp = list(ann["keypoints"])
    box = list(ann["bbox"])
    if origin:
        for i in range(0, len(kp), 3):
            if kp[i + 2] > 0:
                kp[i], kp[i + 1] = kp[i] - origin, kp[i + 1] - origin
        box[0], box[1] = box[0] - origin, box[1] - origin
    return [*kp, *box, *([ann["area"]] if "area" in ann else [])]


ORIGIN = {"jhmdb": 1}  # 1-based coordinates, shifted to 0-based on read


def _same(a: Any, b: Any) -> bool:
    """Same value, and an integer (or an integral float such as 313.0) is written as an integer."""
    if a != b:
        return False
    if float(a).is_integer():
        return isinstance(b, int)
    return isinstance(b, float)


def _check_numbers(source_file: Path, out: Path, origin: int) -> None:
    source = json.loads(source_file.read_text())
    written = json.loads((out / "annotations.json").read_text())["annotations"]
    by_id = {a["id"]: a for a in source["annotations"]}
    assert len(written) == len(by_id)
    for ann in written:
        original = by_id[ann["source_id"]]
        got, want = _numbers(ann), _numbers(original, origin)
        if "area" not in original:
            got = got[:-1]
        assert len(got) == len(want)
        bad = [(i, w, g) for i, (w, g) in enumerate(zip(want, got, strict=True)) if not _same(w, g)]
        assert bad == [], f"annotation {original['id']}: (position, input, output) {bad[:5]}"
    text = (out / "annotations.json").read_text()
    assert not re.search(r"[\[,:]-?\d+\.0[,\]}]", text), "an integral number written as a float"


@pytest.mark.parametrize("style", STYLES)
def test_numbers_keep_their_values(tmp_path, style):
    out = tmp_path / "OUT"
    path = style_file(tmp_path, style, people=8, crowd=CROWD[style])
    layout = ["--layout", style] if style in ("halpe", "posetrack18") else []
    _run(["merge", str(path), *layout, "-q"], out)
    _check_numbers(path, out, ORIGIN.get(style, 0))


def test_raw_aic_numbers_are_the_coco_conversion(tmp_path):
    """Raw AIC through kpmerge: v 1 -> 2, 2 -> 1, 3 -> 0; [x1, y1, x2, y2] -> [x, y, w, h]; people in
    numeric order of humanN; integers stay integers."""
    out = tmp_path / "OUT"
    raw, images = raw_aic_file(tmp_path, images=3, people=12)
    _run(["merge", str(raw), "--image-dir", str(images), "-q"], out)
    written = json.loads((out / "annotations.json").read_text())["annotations"]
    want = []
    for rec in json.loads(raw.read_text()):
        for human in sorted(rec["keypoint_annotations"], key=lambda h: int(h[5:])):
            kp = rec["keypoint_annotations"][human]
            kp = [{1: 2, 2: 1, 3: 0}[v] if i % 3 == 2 else v for i, v in enumerate(kp)]
            x1, y1, x2, y2 = rec["human_annotations"][human]
            want.append((f"{rec['image_id']}/{human}", kp, [x1, y1, x2 - x1, y2 - y1]))
    assert len(written) == len(want) == 12
    for ann, (source_id, kp, box) in zip(written, want, strict=True):
        assert ann["source_id"] == source_id
        assert all(_same(w, g) for w, g in zip(kp, ann["keypoints"], strict=True))
        assert all(_same(w, g) for w, g in zip(box, ann["bbox"], strict=True))
        assert ann["num_keypoints"] == sum(1 for v in kp[2::3] if v > 0)


@needs_fixtures
def test_numbers_keep_their_values_in_mmpose_files(tmp_path, aic_raw_images):
    """Every COCO-style file of MMPose keeps its numbers; raw AIC gives MMPose's converted test_aic.json."""
    layouts = {"halpe/test_halpe.json": "halpe", "posetrack18/test_posetrack18_val.json": "posetrack18"}
    for i, rel in enumerate(COCO_STYLE):
        out = tmp_path / f"OUT{i}"
        layout = ["--layout", layouts[rel]] if rel in layouts else []
        _run(["merge", str(fixture(rel)), *layout, "-q"], out)
        _check_numbers(fixture(rel), out, ORIGIN.get(rel.split("/")[0], 0))
    out = tmp_path / "OUT"
    _run(["merge", str(AIC_RAW), "--image-dir", str(aic_raw_images), "-q"], out)
    written = json.loads((out / "annotations.json").read_text())["annotations"]
    converted = json.loads(fixture("aic/test_aic.json").read_text())["annotations"]
    assert len(written) == len(converted) == 9
    key = {(a["keypoints"][0], a["keypoints"][1], a["bbox"][0]): a for a in converted}
    for ann in written:
        ref = key[(ann["keypoints"][0], ann["keypoints"][1], ann["bbox"][0])]
        assert all(_same(w, g) for w, g in zip(ref["keypoints"], ann["keypoints"], strict=True))
        assert all(_same(w, g) for w, g in zip(ref["bbox"], ann["bbox"], strict=True))
        assert ann["num_keypoints"] == ref["num_keypoints"]


def test_two_runs_write_identical_bytes(tmp_path):
    raw, images = raw_aic_file(tmp_path)
    coco = style_file(tmp_path, "coco", crowd=1)
    args = ["combine", f"coco={coco}", f"aic={raw}", "--image-dir", f"aic={images}", "--drop-empty", "-q"]
    _run(args, tmp_path / "one")
    _run(args, tmp_path / "two")
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
