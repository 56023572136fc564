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
from tests.synthfiles import style_file


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


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """A COCO file (4 images, 14 people) and a COCO-style AIC file (3 images, 9 people)."""
    folder = tmp_path / "in"
    return {
        "coco": style_file(folder, "coco", images=4, people=14),
        "aic": style_file(folder, "aic", images=3, people=9),
    }


def _sources(files: dict[str, Path]):
    return [load_source(SourceSpec(files[name], name=name)) for name in ("coco", "aic")]


@pytest.fixture
def combined(tmp_path, files) -> Path:
    return write_output(combine(_sources(files)), tmp_path / "combined")


def test_coco_from_the_union_scores_like_the_original(combined, files, tmp_path):
    coco = builtin_layout("coco")
    original = self_score(files["coco"], coco.sigmas)
    result = project(combined, "coco", tmp_path / "gt.json")
    assert result.sources == ("coco",)  # aic does not define the eyes and ears
    assert result.how == "eval_indices of source coco"
    assert result.columns == list(range(17))
    projected = self_score(tmp_path / "gt.json", coco.sigmas)
    assert original[0] == projected[0] == 1.0
    np.testing.assert_array_equal(original, projected)
    mine = json.loads((tmp_path / "gt.json").read_text())
    theirs = json.loads(files["coco"].read_text())
    assert [c["keypoints"] for c in mine["categories"]] == [c["keypoints"] for c in theirs["categories"]]
    assert [a["keypoints"] for a in mine["annotations"]] == [a["keypoints"] for a in theirs["annotations"]]
    assert [a["source_id"] for a in mine["annotations"]] == [a["id"] for a in theirs["annotations"]]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_aic_from_the_union(combined, files, tmp_path):
    aic = builtin_layout("aic")
    result = project(combined, "aic", tmp_path / "aic.json")
    assert result.sources == ("aic",)
    assert result.columns == [6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 17, 18]
    assert self_score(tmp_path / "aic.json", aic.sigmas)[0] == 1.0
    theirs = json.loads(files["aic"].read_text())
    mine = json.loads((tmp_path / "aic.json").read_text())
    assert [a["keypoints"] for a in mine["annotations"]] == [a["keypoints"] for a in theirs["annotations"]]


def test_columns_and_chosen_sources(tmp_path, files):
    merged = merge(
        _sources(files)[:1], builtin_layout("coco_aic")
    )  # coco in the 19-point layout: no eval for aic
    out = write_output(merged, tmp_path / "out")
    result = project_output(out, "coco")
    assert result.how == "eval_indices of source coco"
    both = project_output(write_output(combine(_sources(files)), tmp_path / "c"), "coco", ["coco", "aic"])
    assert both.sources == ("coco", "aic") and both.annotations == 23 and both.images == 7
    crowdpose = project_output(tmp_path / "c", "crowdpose", ["aic"])
    assert crowdpose.how == "names"
    assert crowdpose.annotations == 9


@pytest.mark.parametrize(
    ("to", "sources", "message"),
    [
        ("aic", None, r"layout coco of the output has no keypoint for head_top, neck of layout aic"),
        ("coco", ["nope"], r"no source named 'nope'"),
        ("ochuman", None, r"no source of .* defines every keypoint of layout ochuman"),
    ],
)
def test_errors(tmp_path, files, to, sources, message):
    read = _sources(files)
    merged = merge(read[:1]) if to != "ochuman" else merge(read[1:], builtin_layout("coco"))
    out = write_output(merged, tmp_path / "out")
    with pytest.raises(UsageError, match=message):
        project(out, to, tmp_path / "gt.json", sources)
    assert not (tmp_path / "gt.json").exists()


def test_not_an_output(tmp_path):
    with pytest.raises(UsageError, match=r"not a kpmerge output folder: no annotations\.json"):
        project_output(tmp_path, "coco")


def test_existing_file_needs_force(combined, tmp_path):
    target = tmp_path / "gt.json"
    target.write_text("old")
    with pytest.raises(UsageError, match="output exists"):
        project(combined, "coco", target)
    assert target.read_text() == "old"
    project(combined, "coco", target, force=True)
    assert json.loads(target.read_text())["info"]["layout"] == "coco"


def test_original_ids(combined, files, tmp_path):
    result = project(combined, "coco", tmp_path / "gt.json", original_ids=True)
    mine = json.loads(result.data)
    theirs = json.loads(files["coco"].read_text())
    assert [i["id"] for i in mine["images"]] == [i["id"] for i in theirs["images"]]
    assert [a["id"] for a in mine["annotations"]] == [a["id"] for a in theirs["annotations"]]
    assert [a["image_id"] for a in mine["annotations"]] == [a["image_id"] for a in theirs["annotations"]]
    assert self_score(tmp_path / "gt.json", builtin_layout("coco").sigmas)[0] == 1.0


def test_original_ids_must_not_repeat(tmp_path, files):
    aic = _sources(files)[1]
    twice = combine([aic, load_source(SourceSpec(files["aic"], name="aic2"))])
    out = write_output(twice, tmp_path / "out")
    assert project_output(out, "aic").annotations == 18
    with pytest.raises(UsageError, match="original image ids repeat across the chosen sources"):
        project_output(out, "aic", original_ids=True)
    assert project_output(out, "aic", ["aic2"], original_ids=True).annotations == 9


def test_gzip_output(combined, files, tmp_path):
    gz = write_output(combine(_sources(files)), tmp_path / "gz", gzip=True)
    assert (gz / "annotations.json.gz").exists()
    assert project_output(gz, "coco").data == project_output(combined, "coco").data
