"""kpmerge.inspect_folder: output folders per source, and their manifest checked against the annotations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kpmerge.inspect import inspect
from kpmerge.inspect_report import OUTPUT_FORMAT
from kpmerge.job import Job, SourceSpec, run_job
from tests.synthfiles import raw_aic_file, style_file
from tests.test_inspect import plain_stats


def test_output_folder_per_source(tmp_path):
    out = tmp_path / "out"
    coco = style_file(tmp_path, "coco", images=4, people=14, crowd=1)
    aic_raw, aic_images = raw_aic_file(tmp_path, images=3, people=9)
    aic = SourceSpec(aic_raw, name="aic", image_dir=aic_images)
    run_job(Job("combine", (SourceSpec(coco, name="coco"), aic), out))
    report = inspect([out]).files[0]
    assert (report.format, report.layout, report.annotations) == (OUTPUT_FORMAT, "coco_aic", 23)
    assert not [p for p in report.problems if p.severity == "error"]
    coco_src, aic_src = report.sources
    assert (coco_src.name, coco_src.annotation_range, aic_src.name, aic_src.annotation_range) == (
        "coco",
        (0, 14),
        "aic",
        (14, 23),
    )
    meta = json.loads((out / "metainfo.json").read_text())
    names = meta["keypoints"]
    for src, defined in zip(report.sources, meta["sources"], strict=True):
        assert [k.defined for k in src.keypoints] == [i in defined["defined_keypoints"] for i in range(19)]
    coco_plain = json.loads(coco.read_text())
    expected = plain_stats(coco_plain["annotations"], coco_plain["images"], 17)
    assert [k.labelled for k in coco_src.keypoints] == [*expected["labelled"], 0, 0]
    assert [k.occluded for k in coco_src.keypoints[:17]] == expected["occluded"]
    aic_alone = inspect([aic_raw]).files[0]
    by_name = {k.name: k for k in aic_src.keypoints}
    assert [by_name[k.name].labelled for k in aic_alone.keypoints] == [
        k.labelled for k in aic_alone.keypoints
    ]
    assert [k.defined for k in aic_src.keypoints if k.name in ("nose", "neck")] == [False, True]
    assert [k.name for k in report.keypoints] == names
    assert report.trainable == coco_src.trainable + aic_src.trainable


@pytest.mark.parametrize(
    ("change", "kind", "examples"),
    [
        (lambda out: (out / "manifest.json").unlink(), "missing_metadata", ("manifest.json",)),
        (lambda out: _edit_manifest(out, annotations=99), "manifest_mismatch", ("annotations",)),
        (lambda out: _edit_manifest(out, first_range=[0, 5]), "manifest_mismatch", ("aic",)),
    ],
)
def test_output_folder_problems(tmp_path, change, kind, examples):
    out = tmp_path / "out"
    aic_raw, aic_images = raw_aic_file(tmp_path, images=3, people=9)
    coco = SourceSpec(style_file(tmp_path, "coco", images=4, people=14))
    run_job(Job("combine", (coco, SourceSpec(aic_raw, name="aic", image_dir=aic_images)), out))
    change(out)
    report = inspect([out]).files[0]
    assert [(p.kind, p.examples) for p in report.problems if p.kind == kind] == [(kind, examples)]


def _edit_manifest(out: Path, annotations: int | None = None, first_range: list[int] | None = None) -> None:
    path = out / "manifest.json"
    doc = json.loads(path.read_text())
    if annotations is not None:
        doc["annotations"] = annotations
    if first_range is not None:
        doc["sources"][0]["annotations"]["range"] = first_range
    path.write_text(json.dumps(doc))
