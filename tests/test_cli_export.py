"""--export on merge and combine, and `export` in recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from kpmerge.errors import UsageError
from kpmerge.recipe import recipe_to_job
from tests.synthfiles import raw_aic_file, style_file


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_combine_with_both_exports_is_deterministic(tmp_path):
    runner = CliRunner()
    trees = []
    coco = style_file(tmp_path / "in", "coco", images=4, people=14)
    aic = style_file(tmp_path / "in", "aic", images=3, people=9)
    for name in ("a", "b"):
        args = [
            "combine",
            f"coco={coco}",
            f"aic={aic}",
            "-o",
            str(tmp_path / name),
            "--export",
            "yolo",
            "--export",
            "detectron2",
        ]
        result = runner.invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0
        trees.append(_tree(tmp_path / name))
    assert trees[0] == trees[1]
    names = set(trees[0])
    assert {"yolo/data.yaml", "yolo/train.txt", "detectron2/metadata.json", "detectron2/register.py"} <= names
    assert len([n for n in names if n.startswith("yolo/labels/")]) == 7


def test_merge_yolo_without_image_sizes_writes_nothing(tmp_path):
    out = tmp_path / "out"
    coco = style_file(tmp_path / "in", "coco")
    raw, _images = raw_aic_file(tmp_path / "in", images=3, people=5)
    args = [
        "merge",
        f"coco={coco}",
        f"aic={raw}",
        "-o",
        str(out),
        "--export",
        "yolo",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: source aic: 3 of 3 images have no width/height")
    assert list(tmp_path.iterdir()) == [tmp_path / "in"]
    result = CliRunner().invoke(cli, [*args, "--allow-missing-sizes"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: source aic: 3 of 3 images have no width/height, which --export yolo needs: give --image-dir "
        "aic=DIR (recipe key image_dir) to read them from the images\n"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "in"]


def test_unknown_export_option(tmp_path):
    result = CliRunner().invoke(cli, ["merge", "x.json", "-o", str(tmp_path / "o"), "--export", "tflite"])
    assert result.exit_code == 2
    assert "Invalid value for '--export'" in result.stderr


def _recipe(**extra):
    return {"mode": "merge", "output": "out", "sources": [{"path": "a.json"}], **extra}


def test_recipe_export_key(tmp_path):
    assert recipe_to_job(_recipe(export=["yolo", "detectron2", "yolo"]), tmp_path).exports == (
        "yolo",
        "detectron2",
    )
    assert recipe_to_job(_recipe(export="yolo"), tmp_path).exports == ("yolo",)
    assert recipe_to_job(_recipe(), tmp_path).exports == ()
    with pytest.raises(UsageError, match=r"export\[1\]: unknown export 'coreml' \(known: yolo, detectron2\)"):
        recipe_to_job(_recipe(export=["yolo", "coreml"]), tmp_path)
    with pytest.raises(UsageError, match="export: expected a list of export names"):
        recipe_to_job(_recipe(export=3), tmp_path)


def test_run_recipe_with_export(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f'mode = "combine"\noutput = "out"\nexport = ["detectron2"]\n'
        f'[[sources]]\nname = "coco"\npath = "{style_file(tmp_path / "in", "coco")}"\n'
    )
    result = CliRunner().invoke(cli, ["run", str(recipe), "-q"], catch_exceptions=False)
    assert result.exit_code == 0
    assert sorted(_tree(tmp_path / "out"))[:2] == ["annotations.json", "detectron2/metadata.json"]


@pytest.mark.parametrize(
    ("export", "valid"), [(["yolo", "detectron2"], True), ("yolo", True), (["x"], False)]
)
def test_recipe_schema_knows_export(export, valid):
    import json

    import jsonschema

    schema = json.loads((Path(__file__).parents[1] / "schemas" / "recipe.schema.json").read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(_recipe(export=export)))
    assert (not errors) == valid


GZIP_DETECTRON2 = (
    "Error: --gzip cannot go with --export detectron2: Detectron2 reads only a plain annotations.json "
    "(leave out --gzip, recipe key gzip)\n"
)
KEEP_EMPTY_WITHOUT_YOLO = (
    "Error: --yolo-keep-empty (recipe key yolo_keep_empty) goes with --export yolo (recipe key export): "
    "without the yolo export it changes nothing\n"
)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--gzip", "--export", "detectron2"], GZIP_DETECTRON2),
        (["--gzip", "--export", "yolo", "--export", "detectron2"], GZIP_DETECTRON2),
        (["--yolo-keep-empty"], KEEP_EMPTY_WITHOUT_YOLO),
        (["--yolo-keep-empty", "--export", "detectron2"], KEEP_EMPTY_WITHOUT_YOLO),
    ],
)
@pytest.mark.parametrize("command", ["merge", "combine"])
def test_options_that_cannot_go_together_write_nothing(tmp_path, command, flags, message):
    coco = style_file(tmp_path / "in", "coco")
    result = CliRunner().invoke(cli, [command, f"coco={coco}", "-o", str(tmp_path / "out"), *flags])
    assert result.exit_code == 2
    assert result.stderr == message
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == [tmp_path / "in"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('gzip = true\nexport = ["detectron2"]\n', GZIP_DETECTRON2),
        ("yolo_keep_empty = true\n", KEEP_EMPTY_WITHOUT_YOLO),
    ],
)
def test_recipe_options_that_cannot_go_together(tmp_path, extra, message):
    style_file(tmp_path, "coco")
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'mode = "merge"\noutput = "out"\n{extra}[[sources]]\npath = "coco.json"\n')
    result = CliRunner().invoke(cli, ["run", str(recipe)])
    assert result.exit_code == 2
    assert result.stderr == message
    assert not (tmp_path / "out").exists()


def test_gzip_with_the_yolo_export_and_keep_empty_with_it_are_written(tmp_path):
    coco = style_file(tmp_path / "in", "coco")
    args = ["merge", f"coco={coco}", "-o", str(tmp_path / "out"), "-q", "--gzip", "--export", "yolo"]
    result = CliRunner().invoke(cli, [*args, "--yolo-keep-empty"], catch_exceptions=False)
    assert result.exit_code == 0
    assert (tmp_path / "out" / "annotations.json.gz").is_file()
