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
