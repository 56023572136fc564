"""`kpmerge inspect`: table, --json (validated against its schema), exit codes, --strict, --plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from tests.synthfiles import raw_aic_file, style_file
from tests.test_inspect import _bad_v, _num_kp, clean_doc

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "inspect.schema.json").read_text())


def _write(tmp_path: Path, change=None, name: str = "a.json") -> Path:
    doc = clean_doc()
    if change is not None:
        change(doc)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _invoke(*args: str):
    return CliRunner().invoke(cli, ["inspect", *args])


def _validate(doc: dict) -> None:
    jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(
    ("change", "strict", "code"),
    [
        (None, False, 0),
        (None, True, 0),
        (_num_kp, False, 0),  # a warning
        (_num_kp, True, 1),
        (_bad_v, False, 1),  # an error
        (_bad_v, True, 1),
    ],
)
def test_exit_codes(tmp_path, change, strict, code):
    path = _write(tmp_path, change)
    result = _invoke(str(path), "--json", *(["--strict"] if strict else []))
    assert result.exit_code == code, result.output
    doc = json.loads(result.stdout)
    _validate(doc)
    assert (doc["errors"] > 0) == (change is _bad_v)


def test_table_lists_problems(tmp_path):
    path = _write(tmp_path, _bad_v)
    result = _invoke(str(path))
    assert result.exit_code == 1
    assert "bad_visibility" in result.stdout
    assert result.stdout.rstrip().endswith("1 error, 0 warnings")
    assert "format coco, layout coco (17 keypoints)" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "Error: "),
        (b'{"images": [], "annotations": "x", "categories": []}', "$.annotations"),
    ],
)
def test_unreadable_file_is_an_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = _invoke(str(path), "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert message in result.stderr


def test_json_matches_schema_and_counts(tmp_path):
    coco = style_file(tmp_path, "coco", images=4, people=14, crowd=1)
    raw, _images = raw_aic_file(tmp_path)
    result = CliRunner().invoke(cli, ["inspect", str(coco), str(raw), "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    _validate(doc)
    plain = json.loads(coco.read_text())
    first = doc["files"][0]
    assert (first["format"], first["layout"], first["images"], first["annotations"]) == (
        "coco",
        "coco",
        len(plain["images"]),
        len(plain["annotations"]),
    )
    n = len(plain["annotations"])
    nose = sum(a["keypoints"][2] > 0 for a in plain["annotations"])
    visible = sum(a["keypoints"][2] == 2 for a in plain["annotations"])
    occluded = sum(a["keypoints"][2] == 1 for a in plain["annotations"])
    assert visible and occluded and nose < n  # the data has all three kinds
    assert first["keypoints"][0] == {
        "name": "nose",
        "labelled": nose,
        "visible": visible,
        "occluded": occluded,
        "unlabelled": n - nose,
        "labelled_rate": round(nose / n, 4),
        "visible_rate": round(visible / n, 4),
        "occluded_rate": round(occluded / n, 4),
        "unlabelled_rate": round(1 - nose / n, 4),
    }
    assert doc["files"][1]["format"] == "aic"
    assert doc["overlap"]["unique"][str(raw)] == ["head_top", "neck"]
    assert doc["mappings"][0]["dropped"] == ["head_top", "neck"]


def test_output_folder_made_by_the_cli(tmp_path):
    out = tmp_path / "out"
    runner = CliRunner()
    coco = style_file(tmp_path, "coco", images=4, people=14)
    raw, images = raw_aic_file(tmp_path, people=9)
    made = runner.invoke(
        cli,
        ["combine", f"coco={coco}", f"aic={raw}", "--image-dir", f"aic={images}", "-o", str(out), "-q"],
        catch_exceptions=False,
    )
    assert made.exit_code == 0
    result = runner.invoke(cli, ["inspect", str(out)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "format kpmerge_output, layout coco_aic (19 keypoints)" in result.stdout
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.strip()}
    people = [kp for rec in json.loads(raw.read_text()) for kp in rec["keypoint_annotations"].values()]
    head_top = sum(kp[12 * 3 + 2] != 3 for kp in people) / len(people)  # raw v 3: not labelled
    assert lines["head_top"][-2:] == ["n/d", f"{100 * head_top:.1f}%"]
    as_json = runner.invoke(cli, ["inspect", str(out), "--json"], catch_exceptions=False)
    doc = json.loads(as_json.stdout)
    _validate(doc)
    assert [s["name"] for s in doc["files"][0]["sources"]] == ["coco", "aic"]
    assert [s["annotations"] for s in doc["files"][0]["sources"]] == [14, 9]


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    a = _write(tmp_path, name="a.json")
    b = _write(tmp_path, _k_fourteen, name="b.json")
    png = tmp_path / "plot.png"
    result = CliRunner().invoke(
        cli, ["inspect", str(a), str(b), "--plot", str(png), "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _k_fourteen(doc):
    from kpmerge.layouts import load_layout

    doc["categories"][0]["keypoints"] = list(load_layout("aic").keypoints)
    for a in doc["annotations"]:
        a["keypoints"] = a["keypoints"][: 14 * 3]
        a["num_keypoints"] = 14


def test_plot_without_matplotlib_is_a_usage_error(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    png = tmp_path / "plot.png"
    result = _invoke(str(_write(tmp_path)), "--plot", str(png))
    assert result.exit_code == 2
    assert "pip install kpmerge[plot]" in result.stderr
    assert not png.exists()


def test_layout_option(tmp_path):
    result = _invoke(str(_write(tmp_path)), "--layout", "ochuman")
    assert result.exit_code == 0
    assert "layout ochuman" in result.stdout
