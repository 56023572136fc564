"""kpmerge project through the CLI."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kpmerge.cli import cli
from tests.conftest import fixture, needs_fixtures


@needs_fixtures
def test_project(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    sources = [f"coco={fixture('coco/test_coco.json')}", f"aic={fixture('aic/test_aic.json')}"]
    runner.invoke(cli, ["combine", *sources, "-o", str(out), "-q"], catch_exceptions=False)
    gt = tmp_path / "gt.json"
    result = runner.invoke(cli, ["project", str(out), "--to", "coco", "-o", str(gt)], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.startswith("kpmerge project: 14 annotations, 4 images of coco in layout coco")
    assert len(json.loads(gt.read_text())["annotations"]) == 14
    first = gt.read_bytes()
    result = runner.invoke(cli, ["project", str(out), "--to", "coco", "-o", str(gt)])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {gt}: output exists (use --force to replace it)\n"
    args = ["project", str(out), "--to", "coco", "-o", str(gt), "--force", "-q", "--source", "coco"]
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0 and result.stderr == ""
    assert gt.read_bytes() == first


@needs_fixtures
def test_project_unknown_source(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    runner.invoke(cli, ["merge", f"coco={fixture('coco/test_coco.json')}", "-o", str(out), "-q"])
    gt = tmp_path / "gt.json"
    result = runner.invoke(cli, ["project", str(out), "--to", "coco", "-o", str(gt), "--source", "aic"])
    assert result.exit_code == 2
    assert result.stderr == f"Error: no source named 'aic' in {out} (sources: coco)\n"
    assert not gt.exists()


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
