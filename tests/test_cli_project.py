"""kpmerge project through the CLI: merge or combine, project back, compare with the original file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from tests.conftest import invoke
from tests.synthfiles import load, raw_aic_file, style_file


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "in"
    return {
        "coco": style_file(folder, "coco", images=4, people=14, crowd=1),
        "aic": style_file(folder, "aic", images=3, people=9),
    }


@pytest.fixture
def combined(tmp_path, files) -> Path:
    out = tmp_path / "out"
    invoke("combine", *(f"{n}={p}" for n, p in files.items()), "-o", out, "-q")
    return out


def _same_annotations(projected: dict, original: dict, original_ids: bool = False) -> None:
    """Keypoints, boxes, areas, crowd flags and image file names as in the original file, in its order."""
    mine, theirs = projected["annotations"], original["annotations"]
    assert len(mine) == len(theirs)
    assert [a["keypoints"] for a in mine] == [a["keypoints"] for a in theirs]
    assert [a["bbox"] for a in mine] == [a["bbox"] for a in theirs]
    assert [a["source_id"] for a in mine] == [a["id"] for a in theirs]
    assert [a.get("iscrowd", 0) for a in mine] == [int(a.get("iscrowd", 0)) for a in theirs]
    if all("area" in a for a in theirs):
        assert [a["area"] for a in mine] == [a["area"] for a in theirs]
    files = {i["id"]: i["file_name"] for i in projected["images"]}
    their_files = {i["id"]: i["file_name"] for i in original["images"]}
    assert [files[a["image_id"]] for a in mine] == [their_files[a["image_id"]] for a in theirs]
    if original_ids:
        assert [a["id"] for a in mine] == [a["id"] for a in theirs]
        assert [i["id"] for i in projected["images"]] == [i["id"] for i in original["images"]]


@pytest.mark.parametrize(("to", "columns"), [("coco", "source coco"), ("aic", "source aic")])
def test_combine_then_project_back_gives_the_original(combined, files, tmp_path, to, columns):
    gt = tmp_path / f"{to}.json"
    result = invoke("project", combined, "--to", to, "-o", gt, "--original-ids")
    n, images = (14, 4) if to == "coco" else (9, 3)
    assert result.stdout == ""
    assert result.stderr == (
        f"kpmerge project: {n} annotations, {images} images of {to} in layout {to} "
        f"({len(load(files[to])['categories'][0]['keypoints'])} keypoints, columns by eval_indices of "
        f"{columns}) -> {gt}\n"
    )
    projected = load(gt)
    _same_annotations(projected, load(files[to]), original_ids=True)
    assert projected["categories"][0]["keypoints"][:3] == (
        ["nose", "left_eye", "right_eye"]
        if to == "coco"
        else ["right_shoulder", "right_elbow", "right_wrist"]
    )


@pytest.mark.parametrize(
    ("style", "target"),
    [("coco", "coco_aic"), ("aic", "coco_aic"), ("crowdpose", "halpe26"), ("ochuman", "halpe26")],
)
def test_merge_into_a_wider_layout_then_project_back(tmp_path, style, target):
    """A source merged into a layout that holds all its keypoints, projected back, is unchanged."""
    path = style_file(tmp_path, style, people=8, crowd=0 if style == "aic" else 1)
    out = tmp_path / "out"
    invoke("merge", f"s={path}", "--target", target, "--layout", f"s={style}", "-o", out, "-q")
    gt = tmp_path / "gt.json"
    invoke("project", out, "--to", style, "-o", gt, "-q")
    _same_annotations(load(gt), load(path))


def test_project_to_a_layout_the_output_cannot_fill(tmp_path):
    path = style_file(tmp_path, "posetrack18", people=5)
    out = tmp_path / "out"
    invoke("merge", path, "--target", "halpe26", "-o", out, "-q")
    gt = tmp_path / "gt.json"
    result = invoke("project", out, "--to", "posetrack18", "-o", gt, ok=False)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: layout halpe26 of the output has no keypoint for head_bottom, head_top "
        "of layout posetrack18\n"
    )
    assert not gt.exists()


def test_project_from_one_based_and_raw_sources(tmp_path):
    """JHMDB (1-based in its file) and raw AIC come back 0-based and in COCO visibility."""
    jhmdb = style_file(tmp_path, "jhmdb", people=5)
    raw, images = raw_aic_file(tmp_path, people=6)
    out = tmp_path / "out"
    invoke("combine", f"jhmdb={jhmdb}", f"aic={raw}", "--image-dir", f"aic={images}", "-o", out, "-q")
    gt = tmp_path / "gt_jhmdb.json"
    invoke("project", out, "--to", "jhmdb", "-o", gt, "-q", "--source", "jhmdb")
    for mine, theirs in zip(load(gt)["annotations"], load(jhmdb)["annotations"], strict=True):
        kp = theirs["keypoints"]
        shifted = [c - 1 if i % 3 < 2 and kp[i - i % 3 + 2] > 0 else c for i, c in enumerate(kp)]
        assert mine["keypoints"] == shifted
        assert mine["bbox"] == [theirs["bbox"][0] - 1, theirs["bbox"][1] - 1, *theirs["bbox"][2:]]
    invoke("project", out, "--to", "aic", "-o", tmp_path / "gt_aic.json", "-q", "--source", "aic")
    records = load(raw)
    want = []
    for rec in records:
        for human in sorted(rec["keypoint_annotations"], key=lambda h: int(h[5:])):
            kp = rec["keypoint_annotations"][human]
            want.append([{1: 2, 2: 1, 3: 0}[c] if i % 3 == 2 else c for i, c in enumerate(kp)])
    assert [a["keypoints"] for a in load(tmp_path / "gt_aic.json")["annotations"]] == want


def test_project_output_exists_and_force(combined, tmp_path):
    gt = tmp_path / "gt.json"
    invoke("project", combined, "--to", "coco", "-o", gt, "-q")
    first = gt.read_bytes()
    result = invoke("project", combined, "--to", "coco", "-o", gt, ok=False)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {gt}: output exists (use --force to replace it)\n"
    assert gt.read_bytes() == first
    result = invoke("project", combined, "--to", "coco", "-o", gt, "--force", "-q", "--source", "coco")
    assert result.stderr == ""
    assert gt.read_bytes() == first


def test_project_unknown_source(combined, tmp_path):
    gt = tmp_path / "gt.json"
    result = invoke("project", combined, "--to", "coco", "-o", gt, "--source", "dog", ok=False)
    assert result.exit_code == 2
    assert result.stderr == f"Error: no source named 'dog' in {combined} (sources: coco, aic)\n"
    assert not gt.exists()


def test_project_not_an_output(tmp_path):
    folder = tmp_path / "not_an_output"
    folder.mkdir()
    result = invoke("project", folder, "--to", "coco", "-o", tmp_path / "gt.json", ok=False)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {folder}: not a kpmerge output folder: no annotations.json\n"
    assert not (tmp_path / "gt.json").exists()


def test_projected_file_loads_in_pycocotools(combined, tmp_path):
    import contextlib
    import sys

    from pycocotools.coco import COCO

    gt = tmp_path / "gt.json"
    invoke("project", combined, "--to", "coco", "-o", gt, "-q")
    with contextlib.redirect_stdout(sys.stderr):
        coco = COCO(str(gt))
    assert len(coco.getAnnIds()) == 14 and len(coco.getImgIds()) == 4
    assert json.loads(gt.read_text())["info"]["layout"] == "coco"


def _coco_original(path):
    """A small COCO file with numeric ids of its own (as real COCO has) and image sizes."""
    names = json.loads(CliRunner().invoke(cli, ["layouts", "show", "coco"]).stdout)["keypoints"]
    images = [{"id": 397133 + i, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in range(3)]
    anns = []
    for j, image in enumerate([0, 0, 1, 2]):
        kp = [
            v
            for k in range(17)
            for v in ((40 + 7 * k + 13 * j, 60 + 5 * k + 9 * j, 2) if k % 4 else (0, 0, 0))
        ]
        anns.append(
            {
                "id": 900100 + j,
                "image_id": 397133 + image,
                "category_id": 1,
                "keypoints": kp,
                "num_keypoints": sum(1 for v in kp[2::3] if v),
                "bbox": [30 + 13 * j, 50 + 9 * j, 150, 110],
                "area": 9000.5,
                "iscrowd": 0,
            }
        )
    cat = {"id": 1, "name": "person", "keypoints": names, "skeleton": [[16, 14]]}
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [cat]}))
    return path


def _aic_raw(folder):
    """Raw AIC records (string image ids) and their image folder."""
    from kpmerge.synth import synth_aic, synth_aic_sizes, tiny_png

    images = folder / "aic_images"
    images.mkdir()
    for image_id, (w, h) in synth_aic_sizes(5 / 210_000).items():
        (images / f"{image_id}.jpg").write_bytes(tiny_png(w, h))
    path = folder / "aic.json"
    path.write_bytes(synth_aic(5 / 210_000))
    return path, images


def _score(gt_file, results, sigmas):
    """COCOeval keypoint AP of `results` against the ground-truth file."""
    import contextlib
    import sys

    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(sys.stderr):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes(results), "keypoints")
        ev.params.kpt_oks_sigmas = np.array(sigmas)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[0]


def test_projected_ids_are_positive_integers_and_score_ap_1_with_cocoeval(tmp_path):
    from kpmerge.layouts import builtin_layout

    runner = CliRunner()
    original = _coco_original(tmp_path / "coco.json")
    aic, aic_images = _aic_raw(tmp_path)
    out = tmp_path / "out"
    args = [
        "combine",
        f"coco={original}",
        f"aic={aic}",
        "--image-dir",
        f"aic={aic_images}",
        "-o",
        str(out),
        "-q",
    ]
    runner.invoke(cli, args, catch_exceptions=False)
    theirs = json.loads(original.read_text())
    sigmas = builtin_layout("coco").sigmas
    for extra in ([], ["--original-ids"]):
        gt = tmp_path / f"gt{len(extra)}.json"
        args = ["project", str(out), "--to", "coco", "--source", "coco", "-o", str(gt), *extra]
        assert runner.invoke(cli, args, catch_exceptions=False).exit_code == 0
        mine = json.loads(gt.read_text())
        ids = [r["id"] for r in mine["images"] + mine["annotations"]] + [
            a["image_id"] for a in mine["annotations"]
        ]
        assert all(type(i) is int and i > 0 for i in ids)
        to_mine = {i["source_id"]: i["id"] for i in mine["images"]}
        assert [a["source_id"] for a in mine["annotations"]] == [a["id"] for a in theirs["annotations"]]
        if extra:
            assert to_mine == {i["id"]: i["id"] for i in theirs["images"]}
        results = [
            {"image_id": to_mine[a["image_id"]], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
            for a in theirs["annotations"]
        ]
        assert _score(gt, results, sigmas) == 1.0
    # raw AIC ids are strings ("<image_id>/humanN"): numeric output ids work, original ids cannot
    gt = tmp_path / "aic_gt.json"
    args = ["project", str(out), "--to", "aic", "--source", "aic", "-o", str(gt)]
    assert runner.invoke(cli, args, catch_exceptions=False).exit_code == 0
    mine = json.loads(gt.read_text())
    assert all(type(a["id"]) is int and type(a["image_id"]) is int for a in mine["annotations"])
    assert all(isinstance(a["source_id"], str) for a in mine["annotations"])
    results = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in mine["annotations"]
    ]
    assert _score(gt, results, builtin_layout("aic").sigmas) == 1.0
    gt.unlink()
    result = runner.invoke(cli, [*args, "--original-ids"])
    assert result.exit_code == 2
    first = json.loads(aic.read_bytes())[0]["image_id"]
    assert result.stderr == (
        "Error: --original-ids: the image ids of source aic are not positive integers "
        f"(e.g. '{first}'), which COCO tools cannot score; "
        "leave the option out (each record keeps its original id in source_id)\n"
    )
    assert not gt.exists()
