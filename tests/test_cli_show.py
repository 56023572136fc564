"""`kpmerge show` and the recipe key `show`: summary, PNG, `Error:` lines, nothing written on failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import invoke
from tests.test_cli_output_inside_input import write_yolo_dataset
from tests.test_show import aic_style_doc, coco_doc, write, write_images

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return write(tmp_path / "coco.json", coco_doc(0)), write(tmp_path / "aic.json", aic_style_doc(1))


def test_show_output_folder(tmp_path, files):
    out = tmp_path / "out"
    invoke("combine", *files, "-o", out, "-q")
    sheet = tmp_path / "sheet.png"
    result = invoke("show", out, "-o", sheet, "--per-source", 3)
    assert result.stderr == f"kpmerge show: 2 sources, 6 instances (0 on their images) -> {sheet}\n"
    assert result.stdout == ""
    assert Image.open(sheet).format == "PNG"


def test_show_inputs_named_with_images_per_source(tmp_path, files):
    root = write_images(tmp_path / "img", aic_style_doc(1))
    sheet = tmp_path / "sheet.png"
    result = invoke("show", f"a={files[1]}", files[0], "--images", f"a={root}", "-o", sheet, "--names")
    assert result.stderr == f"kpmerge show: 2 sources, 16 instances (8 on their images) -> {sheet}\n"
    again = tmp_path / "again.png"
    invoke("show", f"a={files[1]}", files[0], "--images", f"a={root}", "-o", again, "--names", "-q")
    assert again.read_bytes() == sheet.read_bytes()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--images", "{t}/nope"], 2, "Error: {t}/nope: image root not found (expected a folder)"),
        (["--images", "x={t}"], 2, "Error: --images: no source named 'x' (sources: coco)"),
        (["--images", "{t}", "--images", "{t}"], 2, None),
        (["--per-source", "0"], 2, None),
        (["-o", "{t}/missing/s.png"], 2, "Error: {t}/missing: the folder to hold the output does not exist"),
        (["-o", "{t}"], 2, "Error: {t}: the output holds the input {t}/coco.json; choose another"),
    ],
)
def test_errors(tmp_path, files, args, code, message):
    args = [a.format(t=tmp_path) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "sheet.png")]
    result = invoke("show", files[0], *args, ok=False)
    assert result.exit_code == code
    assert result.stdout == ""
    if message is not None:
        assert result.stderr == message.format(t=tmp_path) + "\n"
    else:
        assert "Error: Invalid value" in result.stderr and "--" in result.stderr
    assert not (tmp_path / "sheet.png").exists()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("old.png", "Error: {t}/old.png: output exists (use --force to replace it)"),
        ("missing/s.png", "Error: {t}/missing: the folder to hold the output does not exist"),
        ("dir", "Error: {t}/dir: output is a folder; give a file name"),
    ],
)
def test_the_output_is_checked_before_the_inputs_are_read(tmp_path, out, message):
    (tmp_path / "old.png").write_bytes(b"old")
    (tmp_path / "dir").mkdir()
    force = ["--force"] if out == "dir" else []
    result = invoke("show", tmp_path / "nope.json", "-o", tmp_path / out, *force, ok=False)
    assert result.exit_code == 2
    assert result.stderr == message.format(t=tmp_path) + "\n"
    assert (tmp_path / "old.png").read_bytes() == b"old"


def test_no_instance_to_draw(tmp_path):
    doc = coco_doc(0)
    for a in doc["annotations"]:
        a["iscrowd"] = 1
    path = write(tmp_path / "crowd.json", doc)
    result = invoke("show", path, "-o", tmp_path / "s.png", ok=False)
    assert result.exit_code == 1
    assert result.stderr == "Error: no instance to draw: no source has a trainable instance\n"
    assert not (tmp_path / "s.png").exists()


def test_existing_sheet_is_replaced_with_force(tmp_path, files):
    sheet = tmp_path / "s.png"
    sheet.write_bytes(b"old")
    invoke("show", files[0], "-o", sheet, "--force", "-q")
    assert sheet.read_bytes().startswith(b"\x89PNG")


def _recipe(tmp_path: Path, extra: str) -> Path:
    for name in ("coco_sample.json", "aic_sample.json"):
        shutil.copy(ROOT / "sample_data" / name, tmp_path / name)
    shutil.copytree(ROOT / "sample_data" / "aic_images", tmp_path / "aic_images")
    text = (ROOT / "sample_data" / "recipe.toml").read_text()
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(text.replace('output = "../sample_out"', f'output = "out"\n{extra}'))
    return recipe


def test_recipe_writes_the_sheet(tmp_path):
    recipe = _recipe(tmp_path, 'show = "sheet.png"')
    invoke("run", recipe, "-q")
    assert (tmp_path / "out" / "manifest.json").is_file()
    assert Image.open(tmp_path / "sheet.png").format == "PNG"


def test_recipe_sheet_that_exists_stops_before_anything_is_written(tmp_path):
    recipe = _recipe(tmp_path, 'show = "sheet.png"')
    (tmp_path / "sheet.png").write_bytes(b"old")
    result = invoke("run", recipe, ok=False)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'sheet.png'}: output exists (use --force to replace it)\n"
    assert not (tmp_path / "out").exists() and (tmp_path / "sheet.png").read_bytes() == b"old"


def test_recipe_sheet_is_the_sheet_of_the_output_folder(tmp_path):
    recipe = _recipe(tmp_path, 'show = "sheet.png"')
    invoke("run", recipe, "-q")
    invoke("show", tmp_path / "out", "-o", tmp_path / "again.png", "-q")
    assert (tmp_path / "sheet.png").read_bytes() == (tmp_path / "again.png").read_bytes()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".kpmerge-" in p.name)


def test_recipe_sheet_that_cannot_be_drawn_leaves_nothing(tmp_path):
    doc = coco_doc(0)
    for a in doc["annotations"]:
        a["iscrowd"] = 1
    write(tmp_path / "crowd.json", doc)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        'mode = "merge"\noutput = "out"\nshow = "sheet.png"\n[[sources]]\npath = "crowd.json"\n'
    )
    result = invoke("run", recipe, ok=False)
    assert result.exit_code == 1
    assert result.stderr == "Error: no instance to draw: no source has a trainable instance\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crowd.json", "recipe.toml"]


def test_recipe_interrupted_while_drawing_leaves_nothing(tmp_path, monkeypatch):
    import signal

    from kpmerge import show
    from kpmerge.interrupts import Interrupted

    def draw(*args):
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(show, "draw_sheet", draw)
    recipe = _recipe(tmp_path, 'show = "sheet.png"')
    result = invoke("run", recipe, ok=False)
    assert result.exit_code == 143
    assert result.stderr == "Error: interrupted by SIGTERM; nothing was written\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "sheet.png").exists()
    assert _leftovers(tmp_path) == []


def test_recipe_show_must_be_a_file_name(tmp_path):
    recipe = _recipe(tmp_path, "show = 3")
    result = invoke("run", recipe, ok=False)
    assert result.exit_code == 2
    assert result.stderr == (
        f'Error: {recipe}: show: expected the contact sheet file as a string, e.g. "sheet.png"\n'
    )


def test_the_docs_sheet_is_what_make_docs_draws(tmp_path):
    """docs/sheet.png comes from `make docs`: the same commands on sample_data give a sheet of its size."""
    out, sheet = tmp_path / "sample_out", tmp_path / "sheet.png"
    invoke("run", ROOT / "sample_data" / "recipe.toml", "-o", out, "-q")
    invoke("show", out, "-o", sheet, "--per-source", 6, "--cell", 120, "-q")
    documented = ROOT / "docs" / "sheet.png"
    assert documented.stat().st_size < 100_000
    assert Image.open(sheet).size == Image.open(documented).size
    makefile = (ROOT / "Makefile").read_text()
    assert "kpmerge show sample_out -o docs/sheet.png --per-source 6 --cell 120 --force" in makefile


@pytest.mark.parametrize("path", ["DS", "DS/data.yaml"])
def test_show_a_yolo_dataset_folder_or_yaml(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    write_yolo_dataset()
    result = invoke("show", path, "-o", "s.png")
    assert result.stderr == "kpmerge show: 1 sources, 1 instances (0 on their images) -> s.png\n"
    assert Image.open("s.png").format == "PNG"


def test_show_a_folder_that_is_neither(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke("show", tmp_path / "empty", "-o", tmp_path / "s.png", ok=False)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'empty'}: not a kpmerge output folder: no annotations.json\n"
