"""pycocotools' and xtcocotools' COCOeval on `kpmerge project` files, with numeric and original ids.

Runs in the MMPose environment of `make test-trainers`, which holds both (xtcocotools 1.14.3 needs
numpy 1).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.trainers.data import aic_file, coco_file, kpmerge, kpmerge_ok, need, read_json


class CocoApi:
    """pycocotools or xtcocotools: its COCO and COCOeval (skipped without it, failed in CI)."""

    def __init__(self, name: str):
        self.name = name
        self.coco: ModuleType = need(f"{name}.coco")
        self.cocoeval: ModuleType = need(f"{name}.cocoeval")

    def ap(self, gt: Path, results: list[dict], sigmas: list[float]) -> np.ndarray:
        """COCOeval keypoint stats of `results` against the ground truth file `gt`."""
        with contextlib.redirect_stdout(io.StringIO()):
            truth = self.coco.COCO(str(gt))
            found = truth.loadRes(results)
            if self.name == "xtcocotools":
                ev = self.cocoeval.COCOeval(truth, found, "keypoints", np.array(sigmas), use_area=True)
            else:
                ev = self.cocoeval.COCOeval(truth, found, "keypoints")
                ev.params.kpt_oks_sigmas = np.array(sigmas)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return ev.stats


@pytest.fixture(params=["pycocotools", "xtcocotools"])
def tool(request: pytest.FixtureRequest) -> CocoApi:
    return CocoApi(request.param)


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """coco + raw AIC (sizes from an image folder) combined: (original coco file, raw aic file, OUT)."""
    root = tmp_path_factory.mktemp("cocoeval")
    coco = coco_file(root)
    aic, aic_dir = aic_file(root / "aic")
    out = root / "out"
    kpmerge_ok("combine", f"coco={coco}", f"aic={aic}", "--image-dir", f"aic={aic_dir}", "-o", out, "-q")
    return coco, aic, out


def _sigmas(layout: str) -> list[float]:
    """The layout's OKS sigmas, as kpmerge's metainfo carries them."""
    return json.loads(kpmerge_ok("layouts", "show", layout).stdout)["sigmas"]


def _perfect(annotations: list[dict], image_of: dict) -> list[dict]:
    """Every labelled, non-crowd person as a detection with score 1 on the image `image_of` maps to."""
    return [
        {"image_id": image_of[a["image_id"]], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in annotations
        if a.get("num_keypoints", 1) > 0 and not a.get("iscrowd", 0)
    ]


@pytest.mark.parametrize("original_ids", [False, True], ids=["numeric_ids", "original_ids"])
def test_project_to_coco_scores_the_original_at_ap_1(
    tool: CocoApi, original_ids: bool, combined: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    coco, _, out = combined
    gt = tmp_path / "coco_gt.json"
    kpmerge_ok("project", out, "--to", "coco", "-o", gt, "-q", *(["--original-ids"] if original_ids else []))
    projected = read_json(gt)
    ids = [x["id"] for x in projected["images"] + projected["annotations"]]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    image_of = {i["source_id"]: i["id"] for i in projected["images"]}
    if original_ids:
        assert all(k == v for k, v in image_of.items())
    original = read_json(coco)
    sigmas = _sigmas("coco")
    # the projected file as ground truth, the original people as detections ...
    stats = tool.ap(gt, _perfect(original["annotations"], image_of), sigmas)
    assert stats[0] == pytest.approx(1.0) and stats[5] == pytest.approx(1.0)
    # ... and the other way round
    back = {v: k for k, v in image_of.items()}
    stats = tool.ap(coco, _perfect(projected["annotations"], back), sigmas)
    assert stats[0] == pytest.approx(1.0) and stats[5] == pytest.approx(1.0)


def test_project_raw_aic_scores_its_people_at_ap_1(
    tool: CocoApi, combined: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Raw AIC's own keypoints (as detections) against the projected AIC ground truth, AIC sigmas."""
    _, aic, out = combined
    gt = tmp_path / "aic_gt.json"
    kpmerge_ok("project", out, "--to", "aic", "--source", "aic", "-o", gt, "-q")
    projected = read_json(gt)
    image_of = {i["source_id"]: i["id"] for i in projected["images"]}
    results = [
        {"image_id": image_of[r["image_id"]], "category_id": 1, "keypoints": kp, "score": 1.0}
        for r in json.loads(aic.read_text())
        for kp in r["keypoint_annotations"].values()
        if any(v != 3 for v in kp[2::3])
    ]
    stats = tool.ap(gt, results, _sigmas("aic"))
    assert stats[0] == pytest.approx(1.0) and stats[5] == pytest.approx(1.0)


def test_project_original_ids_of_raw_aic_is_refused(
    combined: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Raw AIC ids are strings: --original-ids cannot keep them as integers, so it says so (exit 2)."""
    _, _, out = combined
    gt = tmp_path / "aic_gt.json"
    result = kpmerge("project", out, "--to", "aic", "--source", "aic", "--original-ids", "-o", gt)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert not gt.exists()
