"""Per-source options of merge and combine (bare values for every source, errors naming the option),
and what `run` says of a recipe without an output folder."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from tests.synthfiles import mpii_file, raw_aic_file, style_file


def _invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("command", ["merge", "combine"])
def test_a_bare_image_dir_serves_the_sources_that_take_one(tmp_path, command):
    coco = style_file(tmp_path / "in", "coco", images=2, people=3)
    aic, images = raw_aic_file(tmp_path / "in", images=3, people=4)
    out = tmp_path / "out"
    result = _invoke(command, f"coco={coco}", f"aic={aic}", "--image-dir", images, "-o", out, "-q")
    assert result.exit_code == 0, result.stderr
    doc = json.loads((out / "annotations.json").read_text())
    assert len(doc["images"]) == 5
    assert all(isinstance(i["width"], int) and isinstance(i["height"], int) for i in doc["images"])


def test_a_bare_image_dir_and_a_named_one(tmp_path):
    aic, images = raw_aic_file(tmp_path / "in", images=3, people=4)
    mpii, mpii_images = mpii_file(tmp_path / "in", images=2, people=2)
    coco = style_file(tmp_path / "in", "coco", images=2, people=3)
    args = ["combine", f"coco={coco}", f"aic={aic}", f"mpii={mpii}", "--image-dir", images]
    result = _invoke(*args, "--image-dir", f"mpii={mpii_images}", "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr


def test_a_named_image_dir_for_a_coco_source_is_still_refused(tmp_path):
    coco = style_file(tmp_path / "in", "coco", images=2, people=3)
    result = _invoke("merge", f"coco={coco}", "--image-dir", f"coco={tmp_path}", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert "an image folder is only used for raw AIC and MPII files" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_bare_image_dir_that_no_source_takes_is_refused(tmp_path):
    coco = style_file(tmp_path / "in", "coco", images=2, people=3)
    result = _invoke("merge", f"coco={coco}", "--image-dir", tmp_path / "in", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --image-dir DIR (for every source) is used by no source: it gives the image folder of raw "
        "AIC and MPII files\n"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("coco=nope", "expected SRC:TGT entries separated by commas, got 'nope'"),
        ("coco=,", "expected 'auto' or SRC:TGT entries"),
        ("coco=auto,x", "expected SRC:TGT entries separated by commas, got 'x'"),
        ("coco={tmp}/missing.json", "mapping file {tmp}/missing.json: file not found"),
    ],
)
def test_mapping_errors_name_the_option(tmp_path, mapping, message):
    coco = style_file(tmp_path / "in", "coco", images=2, people=3)
    result = _invoke("merge", f"coco={coco}", "--mapping", mapping.format(tmp=tmp_path), "-o", tmp_path / "o")
    assert result.exit_code == 2
    line = result.stderr.splitlines()[-1]
    assert line.startswith(f"Error: Invalid value for '--mapping': {message.format(tmp=tmp_path)}")
    assert not (tmp_path / "o").exists()


def test_an_unknown_source_name_names_the_image_prefix_option(tmp_path):
    coco = style_file(tmp_path / "in", "coco", images=2, people=3)
    result = _invoke("merge", f"coco={coco}", "--image-prefix", "aic=x/", "-o", tmp_path / "o")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for --image-prefix: no source named 'aic' (sources: coco)"
    )


def test_a_recipe_without_output_says_so_and_names_o(tmp_path):
    style_file(tmp_path, "coco", images=2, people=3)
    recipe = tmp_path / "r.toml"
    recipe.write_text('mode = "merge"\n[[sources]]\npath = "coco.json"\n')
    result = _invoke("run", recipe)
    assert result.exit_code == 2
    assert result.stderr == (
        f'Error: {recipe}: output: missing: the output folder (output = "DIR" in the recipe, or -o DIR)\n'
    )
    result = _invoke("run", recipe, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
