"""Every command that writes refuses an output that is, holds, or lies inside one of its inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpmerge.cli import cli

HERE = Path(__file__).resolve().parent / "bad_inputs"


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A folder with an input, a merged output OUT, a layout file and a recipe; the current folder."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(HERE / "ok_coco.json", "in.json")
    result = CliRunner().invoke(cli, ["merge", "in.json", "-o", "OUT", "-q"], catch_exceptions=False)
    assert result.exit_code == 0
    result = CliRunner().invoke(cli, ["layouts", "show", "coco"], catch_exceptions=False)
    Path("lay").mkdir()
    Path("lay/coco.json").write_text(result.stdout)
    Path("rec").mkdir()
    Path("rec/recipe.toml").write_text('mode = "merge"\noutput = "../X"\n[[sources]]\npath = "../in.json"\n')
    Path("rec/show.toml").write_text(
        'mode = "merge"\noutput = "../S"\nshow = "../in.json"\n[[sources]]\npath = "../in.json"\n'
    )
    shutil.copy(HERE / "ok_aic.json", "aic.json")
    Path("imgs/a").mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["sample", "OUT/manifest.json", "-o", "OUT"], "OUT: the output holds the input OUT/manifest.json"),
        (["sample", "OUT/manifest.json", "-o", "OUT/manifest.json"], "the output is the input"),
        (
            ["project", "OUT", "--to", "coco", "-o", "OUT/annotations.json"],
            "OUT/annotations.json: the output lies inside the input OUT",
        ),
        (["project", "OUT", "--to", "coco", "-o", "OUT/gt.json"], "the output lies inside the input OUT"),
        (["project", "OUT", "--to", "lay/coco.json", "-o", "lay/coco.json"], "the output is the input"),
        (["run", "rec/recipe.toml", "-o", "rec"], "rec: the output holds the input rec/recipe.toml"),
        (["merge", "in.json", "--target", "lay/coco.json", "-o", "lay"], "the output holds the input"),
        (["merge", "in.json", "--layout", "lay/coco.json", "-o", "lay"], "the output holds the input"),
        (
            ["merge", "aic=aic.json", "--image-dir", "imgs/a", "-o", "imgs"],
            "the output holds the input imgs/a",
        ),
        (["combine", "in.json", "-o", "in.json"], "the output is the input in.json"),
        (["show", "OUT", "-o", "OUT/sheet.png"], "OUT/sheet.png: the output lies inside the input OUT"),
        (["show", "in.json", "--images", "imgs/a", "-o", "imgs"], "the output holds the input imgs/a"),
        (["run", "rec/show.toml"], "the output is the input"),
        (["inspect", "OUT", "--plot", "OUT/plot.png"], "OUT/plot.png: the output lies inside the input OUT"),
        (["inspect", "in.json", "--plot", "in.json"], "in.json: the output is the input in.json"),
    ],
    ids=lambda v: "-".join(v[:1] + v[-1:]) if isinstance(v, list) else None,
)
def test_an_output_inside_an_input_is_refused(work, args, error):
    before = _tree(work)
    force = [] if args[0] == "inspect" else ["--force"]  # inspect --plot has no --force
    result = CliRunner().invoke(cli, [*args, *force])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and error in result.stderr
    assert result.stderr.endswith("; choose another\n") and result.stderr.count("\n") == 1
    assert _tree(work) == before


def test_an_output_may_lie_inside_an_image_folder(work):
    # Writing into an image folder changes no image: allowed (only being or holding one is refused).
    args = ["show", "in.json", "--images", "imgs", "-o", "imgs/sheet.png", "-q"]
    assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0
    assert (work / "imgs" / "sheet.png").exists()


@pytest.fixture
def yolo_ds(tmp_path, monkeypatch) -> Path:
    """A YOLO-pose dataset DS in the test's folder, made the current folder."""
    monkeypatch.chdir(tmp_path)
    write_yolo_dataset()
    return tmp_path


def write_yolo_dataset() -> None:
    """A YOLO-pose dataset DS here: its yaml, an image folder with one image and its label folder."""
    from PIL import Image

    Path("DS/images/train").mkdir(parents=True)
    Path("DS/labels/train").mkdir(parents=True)
    Image.new("RGB", (40, 40)).save("DS/images/train/a.png")
    row = "0 0.5 0.5 0.5 0.5 " + " ".join(["0.5 0.5 2"] * 17)
    Path("DS/labels/train/a.txt").write_text(row + "\n")
    flip = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    Path("DS/data.yaml").write_text(
        f"train: images/train\nkpt_shape: [17, 3]\nflip_idx: {flip}\nnames:\n  0: person\n"
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["merge", "DS/data.yaml", "--target", "coco", "-o", "DS/images"], "the output holds the input"),
        (["merge", "DS/data.yaml", "-o", "DS/images/train"], "the output is the input"),
        (["combine", "DS/data.yaml", "-o", "DS/labels/train"], "the output is the input"),
        (["combine", "DS", "-o", "DS/labels"], "the output holds the input"),
        (["merge", "DS/data.yaml", "-o", "DS/images/train/x"], "the output lies inside the input"),
        (["merge", "DS/data.yaml", "-o", "DS"], "DS: the output holds the input DS/data.yaml"),
        (["show", "DS/data.yaml", "-o", "DS/images/train/s.png"], "the output lies inside the input"),
        (["show", "DS", "-o", "DS/labels/train/s.png"], "the output lies inside the input"),
    ],
    ids=lambda v: "-".join(v[:1] + v[-3:]) if isinstance(v, list) else None,
)
def test_a_yolo_datasets_folders_are_inputs(yolo_ds, args, error):
    before = _tree(yolo_ds)
    result = CliRunner().invoke(cli, [*args, "--force"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and error in result.stderr
    assert result.stderr.endswith("; choose another\n") and result.stderr.count("\n") == 1
    assert _tree(yolo_ds) == before


def test_a_yolo_output_may_lie_in_the_dataset_root(yolo_ds):
    result = CliRunner().invoke(cli, ["merge", "DS/data.yaml", "-o", "DS/out", "-q"], catch_exceptions=False)
    assert result.exit_code == 0
    assert Path("DS/out/annotations.json").is_file() and Path("DS/images/train/a.png").is_file()


@pytest.mark.parametrize(
    ("out", "error"),
    [
        ("DS/images/train", "the output is the input"),
        ("DS/labels", "the output holds the input"),
        ("DS/lists", "DS/lists/train.txt; choose another"),
    ],
)
def test_the_folders_of_a_yolo_image_list_are_inputs(yolo_ds, out, error):
    Path("DS/lists").mkdir()
    Path("DS/lists/train.txt").write_text("images/train/a.png\n")
    yaml_text = Path("DS/data.yaml").read_text().replace("train: images/train", "train: lists/train.txt")
    Path("DS/data.yaml").write_text(yaml_text)
    before = _tree(yolo_ds)
    result = CliRunner().invoke(cli, ["merge", "DS/data.yaml", "-o", out, "--force"])
    assert result.exit_code == 2, result.output
    assert error in result.stderr and result.stderr.count("\n") == 1
    assert _tree(yolo_ds) == before
