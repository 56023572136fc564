"""kpmerge.project: evaluation files in a source layout, scored with pycocotools' COCOeval."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from kpmerge.build import combine, merge
from kpmerge.errors import UsageError
from kpmerge.job import SourceSpec, load_source
from kpmerge.layouts import builtin_layout
from kpmerge.output import write_output
from kpmerge.project import project, project_output
from tests.conftest import fixture, needs_fixtures


def self_score(gt_file: Path, sigmas: tuple[float, ...]) -> np.ndarray:
    """COCOeval keypoint stats of a ground-truth file scored against its own keypoints."""
    with contextlib.redirect_stdout(sys.stderr):
        gt = COCO(str(gt_file))
        results = [
            {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
            for a in gt.dataset["annotations"]
            if a["num_keypoints"] > 0 and not a.get("iscrowd", 0)
        ]
        ev = COCOeval(gt, gt.loadRes(results), "keypoints")
        ev.params.kpt_oks_sigmas = np.array(sigmas)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def _sources():
    return [
        load_source(SourceSpec(fixture("coco/test_coco.json"), name="coco")),
        load_source(SourceSpec(fixture("aic/test_aic.json"), name="aic")),
    ]


@pytest.fixture
def combined(tmp_path) -> Path:
    return write_output(combine(_sources()), tmp_path / "combined")


@needs_fixtures
def test_coco_from_the_union_scores_like_the_original(combined, tmp_path):
    coco = builtin_layout("coco")
    original = self_score(fixture("coco/test_coco.json"), coco.sigmas)
    result = project(combined, "coco", tmp_path / "gt.json")
    assert result.sources == ("coco",)  # aic does not define the eyes and ears
    assert result.how == "eval_indices of source coco"
    assert result.columns == list(range(17))
    projected = self_score(tmp_path / "gt.json", coco.sigmas)
    assert original[0] == projected[0] == 1.0
    np.testing.assert_array_equal(original, projected)
    mine = json.loads((tmp_path / "gt.json").read_text())
    theirs = json.loads(fixture("coco/test_coco.json").read_text())
    assert [c["keypoints"] for c in mine["categories"]] == [c["keypoints"] for c in theirs["categories"]]
    assert [a["keypoints"] for a in mine["annotations"]] == [a["keypoints"] for a in theirs["annotations"]]
    assert [a["source_id"] for a in mine["annotations"]] == [a["id"] for a in theirs["annotations"]]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@needs_fixtures
def test_aic_from_the_union(combined, tmp_path):
    aic = builtin_layout("aic")
    result = project(combined, "aic", tmp_path / "aic.json")
    assert result.sources == ("aic",)
    assert result.columns == [6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 17, 18]
    assert self_score(tmp_path / "aic.json", aic.sigmas)[0] == 1.0
    theirs = json.loads(fixture("aic/test_aic.json").read_text())
    mine = json.loads((tmp_path / "aic.json").read_text())
    assert [a["keypoints"] for a in mine["annotations"]] == [a["keypoints"] for a in theirs["annotations"]]


@needs_fixtures
def test_columns_and_chosen_sources(tmp_path):
    merged = merge(_sources()[:1], builtin_layout("coco_aic"))  # coco in the 19-point layout: no eval for aic
    out = write_output(merged, tmp_path / "out")
    result = project_output(out, "coco")
    assert result.how == "eval_indices of source coco"
    both = project_output(write_output(combine(_sources()), tmp_path / "c"), "coco", ["coco", "aic"])
    assert both.sources == ("coco", "aic") and both.annotations == 23 and both.images == 7
    crowdpose = project_output(tmp_path / "c", "crowdpose", ["aic"])
    assert crowdpose.how == "names"
    assert crowdpose.annotations == 9


@needs_fixtures
@pytest.mark.parametrize(
    ("to", "sources", "message"),
    [
        ("aic", None, r"layout coco of the output has no keypoint for head_top, neck of layout aic"),
        ("coco", ["nope"], r"no source named 'nope'"),
        ("ochuman", None, r"no source of .* defines every keypoint of layout ochuman"),
    ],
)
def test_errors(tmp_path, to, sources, message):
    merged = merge(_sources()[:1]) if to != "ochuman" else merge(_sources()[1:], builtin_layout("coco"))
    out = write_output(merged, tmp_path / "out")
    with pytest.raises(UsageError, match=message):
        project(out, to, tmp_path / "gt.json", sources)
    assert not (tmp_path / "gt.json").exists()


def test_not_an_output(tmp_path):
    with pytest.raises(UsageError, match=r"metainfo\.json: not found; give a kpmerge output folder"):
        project_output(tmp_path, "coco")


@needs_fixtures
def test_existing_file_needs_force(combined, tmp_path):
    target = tmp_path / "gt.json"
    target.write_text("old")
    with pytest.raises(UsageError, match="output exists"):
        project(combined, "coco", target)
    assert target.read_text() == "old"
    project(combined, "coco", target, force=True)
    assert json.loads(target.read_text())["info"]["layout"] == "coco"


@needs_fixtures
def test_original_ids(combined, tmp_path):
    result = project(combined, "coco", tmp_path / "gt.json", original_ids=True)
    mine = json.loads(result.data)
    theirs = json.loads(fixture("coco/test_coco.json").read_text())
    assert [i["id"] for i in mine["images"]] == [i["id"] for i in theirs["images"]]
    assert [a["id"] for a in mine["annotations"]] == [a["id"] for a in theirs["annotations"]]
    assert [a["image_id"] for a in mine["annotations"]] == [a["image_id"] for a in theirs["annotations"]]
    assert self_score(tmp_path / "gt.json", builtin_layout("coco").sigmas)[0] == 1.0


@needs_fixtures
def test_original_ids_must_not_repeat(tmp_path):
    aic = _sources()[1]
    twice = combine([aic, load_source(SourceSpec(fixture("aic/test_aic.json"), name="aic2"))])
    out = write_output(twice, tmp_path / "out")
    assert project_output(out, "aic").annotations == 18
    with pytest.raises(UsageError, match="original image ids repeat across the chosen sources"):
        project_output(out, "aic", original_ids=True)
    assert project_output(out, "aic", ["aic2"], original_ids=True).annotations == 9


@needs_fixtures
def test_gzip_output(combined, tmp_path):
    gz = write_output(combine(_sources()), tmp_path / "gz", gzip=True)
    assert (gz / "annotations.json.gz").exists()
    assert project_output(gz, "coco").data == project_output(combined, "coco").data
