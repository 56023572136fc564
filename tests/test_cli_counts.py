"""Nothing lost: per source, read = written + not written (by reason), and numbers keep their values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from tests.conftest import AIC_RAW, COCO_STYLE, fixture, needs_fixtures

LAYOUT = {"halpe/test_halpe.json": "halpe", "posetrack18/test_posetrack18_val.json": "posetrack18"}
FLAGS = [[], ["--drop-empty"], ["--drop-crowd"], ["--drop-empty", "--drop-crowd"]]


def _with_crowd_and_dog(tmp_path: Path) -> Path:
    """test_coco.json plus a second, non-person category with one annotation, and one crowd annotation."""
    data = json.loads(fixture("coco/test_coco.json").read_text())
    data["categories"].append({"id": 18, "name": "dog", "supercategory": "animal"})
    dog = dict(data["annotations"][0], id=999001, category_id=18)
    data["annotations"].insert(3, dog)
    data["annotations"][5]["iscrowd"] = 1
    path = tmp_path / "coco_crowd_dog.json"
    path.write_text(json.dumps(data))
    return path


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


@needs_fixtures
@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "+".join(f) or "plain")
def test_counts_conserved_every_fixture_combined(tmp_path, flags, aic_raw_images):
    sources = [f"s{i}={fixture(rel)}" for i, rel in enumerate(COCO_STYLE)]
    sources.insert(1, f"dog={_with_crowd_and_dog(tmp_path)}")
    sources.append(f"aicraw={AIC_RAW}")
    layouts = [f"--layout=s{i}={LAYOUT[rel]}" for i, rel in enumerate(COCO_STYLE) if rel in LAYOUT]
    out = tmp_path / "OUT"
    images = ["--image-dir", f"aicraw={aic_raw_images}"]
    manifest, stderr = _run(["combine", *sources, *layouts, *flags, *images], out)
    annotations = json.loads((out / "annotations.json").read_text())
    _check_conserved(manifest, stderr, annotations)
    dog = next(s for s in manifest["sources"] if s["name"] == "dog")["annotations"]
    assert dog["read"] == 15
    assert dog["not_written"].get("other_category") == 1
    assert dog["not_written"].get("crowd", 0) == (1 if "--drop-crowd" in flags else 0)
    if "--drop-empty" in flags:
        assert dog["not_written"]["no_labelled_keypoints"] == 2


@needs_fixtures
def test_counts_in_merge_with_drop_flags(tmp_path, aic_raw_images):
    out = tmp_path / "OUT"
    path = _with_crowd_and_dog(tmp_path)
    args = ["merge", str(path), f"aic={AIC_RAW}", "--image-dir", f"aic={aic_raw_images}"]
    manifest, stderr = _run([*args, "--drop-empty", "--drop-crowd"], out)
    annotations = json.loads((out / "annotations.json").read_text())
    _check_conserved(manifest, stderr, annotations)
    coco = manifest["sources"][0]["annotations"]
    assert coco == {
        "read": 15,
        "written": 11,
        "not_written": {"crowd": 1, "no_labelled_keypoints": 2, "other_category": 1},
        "range": [0, 11],
    }


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


ORIGIN = {"jhmdb/test_jhmdb_sub1.json": 1}  # 1-based coordinates, shifted to 0-based on read


def _same(a: Any, b: Any) -> bool:
    """Same value, and an integer (or an integral float such as 313.0) is written as an integer."""
    if a != b:
        return False
    if float(a).is_integer():
        return isinstance(b, int)
    return isinstance(b, float)


@needs_fixtures
@pytest.mark.parametrize("rel", COCO_STYLE)
def test_numbers_keep_their_values(tmp_path, rel):
    out = tmp_path / "OUT"
    layout = ["--layout", LAYOUT[rel]] if rel in LAYOUT else []
    _run(["merge", str(fixture(rel)), *layout, "-q"], out)
    source = json.loads(fixture(rel).read_text())
    written = json.loads((out / "annotations.json").read_text())["annotations"]
    by_id = {a["id"]: a for a in source["annotations"]}
    assert len(written) == len(by_id)
    for ann in written:
        original = by_id[ann["source_id"]]
        got, want = _numbers(ann), _numbers(original, ORIGIN.get(rel, 0))
        if "area" not in original:
            got = got[:-1]
        assert len(got) == len(want)
        bad = [(i, w, g) for i, (w, g) in enumerate(zip(want, got, strict=True)) if not _same(w, g)]
        assert bad == [], f"annotation {original['id']}: (position, input, output) {bad[:5]}"
    text = (out / "annotations.json").read_text()
    assert not re.search(r"[\[,:]-?\d+\.0[,\]}]", text), "an integral number written as a float"


@needs_fixtures
def test_raw_aic_numbers_match_the_converted_file(tmp_path, aic_raw_images):
    """Raw AIC through kpmerge gives the same values as MMPose's converted test_aic.json."""
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


@needs_fixtures
def test_two_runs_write_identical_bytes(tmp_path, aic_raw_images):
    args = ["combine", f"coco={fixture('coco/test_coco.json')}", f"aic={AIC_RAW}", "--drop-empty", "-q"]
    args += ["--image-dir", f"aic={aic_raw_images}"]
    _run(args, tmp_path / "one")
    _run(args, tmp_path / "two")
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
