"""kpmerge.job: image sizes are required (MMPose and Detectron2 read them), unless explicitly allowed."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from kpmerge.errors import UsageError
from kpmerge.job import Job, SourceSpec, run_job
from kpmerge.recipe import recipe_to_job
from kpmerge.synth import synth_aic, synth_aic_sizes, synth_coco, tiny_png

ROOT = Path(__file__).resolve().parents[1]
SCALE = 4 / 210_000
"""Four raw AIC records."""


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    aic = tmp_path / "aic.json"
    aic.write_bytes(synth_aic(SCALE))
    images = tmp_path / "aic_images"
    images.mkdir()
    for image_id, (w, h) in synth_aic_sizes(SCALE).items():
        (images / f"{image_id}.jpg").write_bytes(tiny_png(w, h))
    coco = tmp_path / "coco.json"
    coco.write_bytes(synth_coco(3 / 118_287))
    unsized = json.loads(coco.read_bytes())
    for image in unsized["images"][1:]:
        del image["width"]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(unsized))
    return {"aic": aic, "images": images, "coco": coco, "bare": bare}


def invoke(*args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


AIC_REFUSED = (
    "Error: source aic: 4 of 4 images have no width/height, which MMPose and Detectron2 need: give "
    "--image-dir aic=DIR (recipe key image_dir) to read them from the images, or write without them with "
    "--allow-missing-sizes (recipe key allow_missing_sizes)\n"
)


@pytest.mark.parametrize("mode", ["merge", "combine"])
def test_a_source_without_sizes_is_refused_before_anything_is_written(inputs, tmp_path, mode):
    out = tmp_path / "out"
    result = invoke(mode, f"coco={inputs['coco']}", f"aic={inputs['aic']}", "-o", out)
    assert result.exit_code == 2
    assert result.stderr == AIC_REFUSED
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    result = invoke(mode, f"bare={inputs['bare']}", "-o", out)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: source bare: 2 of 3 images have no width/height, which MMPose and Detectron2 need: add them "
        "to the file's images, or write without them with --allow-missing-sizes (recipe key "
        "allow_missing_sizes)\n"
    )
    assert not out.exists()


def test_the_recipe_and_the_library_refuse_too(inputs, tmp_path):
    recipe = {"mode": "combine", "output": "out", "sources": [{"name": "aic", "path": "aic.json"}]}
    with pytest.raises(UsageError) as exc:
        run_job(recipe_to_job(recipe, tmp_path))
    assert f"Error: {exc.value}\n" == AIC_REFUSED
    with pytest.raises(UsageError, match="source aic: 4 of 4 images have no width/height"):
        run_job(Job("merge", (SourceSpec(inputs["aic"], name="aic"),), tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    recipe["sources"][0]["image_dir"] = "aic_images"
    run_job(recipe_to_job(recipe, tmp_path))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "missing_image_sizes" not in manifest
    annotations = json.loads((tmp_path / "out" / "annotations.json").read_text())
    sizes = synth_aic_sizes(SCALE)
    assert [(i["width"], i["height"]) for i in annotations["images"]] == [sizes[i] for i in sizes]


def test_allowed_missing_sizes_say_which_trainers_cannot_load_the_output(inputs, tmp_path):
    out = tmp_path / "out"
    args = ["combine", f"coco={inputs['coco']}", f"aic={inputs['aic']}", "-o", out]
    result = invoke(*args, "--allow-missing-sizes")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "note: 4 images have no width/height: MMPose, Detectron2, Ultralytics (kpmerge --export yolo) "
        "cannot load this output (pycocotools can)"
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["missing_image_sizes"] == {
        "images": 4,
        "sources": {"aic": 4},
        "cannot_load": ["MMPose", "Detectron2", "Ultralytics (kpmerge --export yolo)"],
        "can_load": ["pycocotools"],
    }
    jsonschema.validate(manifest, json.loads((ROOT / "schemas" / "manifest.schema.json").read_text()))
    recipe = {
        "mode": "combine",
        "output": "r",
        "allow_missing_sizes": True,
        "sources": [{"path": "aic.json"}],
    }
    run_job(recipe_to_job(recipe, tmp_path))
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["missing_image_sizes"]["images"] == 4


@pytest.mark.parametrize("export", ["yolo", "detectron2"])
def test_every_export_refuses_a_file_without_sizes(inputs, tmp_path, export):
    out = tmp_path / "out"
    args = ["merge", f"coco={inputs['coco']}", f"aic={inputs['aic']}", "-o", out, "--allow-missing-sizes"]
    result = invoke(*args, "--export", export)
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: source aic: 4 of 4 images have no width/height, which --export {export} needs: give "
        "--image-dir aic=DIR (recipe key image_dir) to read them from the images\n"
    )
    assert not out.exists()
    result = invoke(*args, "--export", export, "--image-dir", f"aic={inputs['images']}")
    assert result.exit_code == 0, result.stderr
    assert (out / export).is_dir()


def test_jobs_below_one_is_a_usage_error(tmp_path):
    c = tmp_path / "c.json"
    c.write_bytes(synth_coco(scale=0.001, seed=1))
    with pytest.raises(UsageError, match=r"^jobs must be at least 1, got 0$"):
        run_job(Job("merge", (SourceSpec(c),), tmp_path / "out", jobs=0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


def test_load_sources_uses_the_available_cpus_by_default(tmp_path, monkeypatch):
    from kpmerge import job as job_module

    c = tmp_path / "c.json"
    c.write_bytes(synth_coco(scale=0.001, seed=1))
    monkeypatch.setattr(job_module, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(job_module, "resolve_jobs", lambda jobs: 7 if jobs is None else jobs)
    seen = []

    def run_tasks(tasks, jobs, done=None):
        seen.append(jobs)
        return [task() for task in tasks]

    monkeypatch.setattr(job_module, "run_tasks", run_tasks)
    job_module.load_sources([SourceSpec(c), SourceSpec(c, name="again")])
    assert seen == [7]
