"""kpmerge.folder: output folders are found and read the same way by inspect, project and show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from kpmerge.errors import KpmergeError, UsageError
from kpmerge.folder import ANNOTATIONS, ANNOTATIONS_GZ, MANIFEST, read_output_folder
from kpmerge.synth import synth_coco


@pytest.fixture(params=[False, True], ids=["plain", "gzip"])
def out(request, tmp_path: Path) -> Path:
    src = tmp_path / "coco.json"
    src.write_bytes(synth_coco(scale=0.0002, seed=3))
    folder = tmp_path / "out"
    args = ["merge", f"coco={src}", "-o", str(folder), "-q", *(["--gzip"] if request.param else [])]
    assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0
    return folder


def test_every_reader_takes_plain_and_gzip_folders(out: Path, tmp_path: Path) -> None:
    folder = read_output_folder(out)
    assert folder.annotations.name in (ANNOTATIONS, ANNOTATIONS_GZ) and folder.annotations.is_file()
    assert folder.layout is not None and folder.layout.name == "coco" and folder.missing == ()
    runner = CliRunner()
    inspected = runner.invoke(cli, ["inspect", str(out), "--json"], catch_exceptions=False)
    assert inspected.exit_code == 0, inspected.stderr
    assert json.loads(inspected.stdout)["files"][0]["format"] == "kpmerge_output"
    projected = runner.invoke(cli, ["project", str(out), "--to", "coco", "-o", str(tmp_path / "gt.json")])
    assert projected.exit_code == 0, projected.stderr
    shown = runner.invoke(cli, ["show", str(out), "-o", str(tmp_path / "sheet.png")])
    assert shown.exit_code == 0, shown.stderr


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("../coco.json", KpmergeError, "annotations_file: expected 'annotations.json' or"),
        ("annotations.json.gz", UsageError, r"no annotations\.json\.gz \(the manifest names it\)"),
    ],
)
def test_manifest_names_only_its_own_annotations_file(tmp_path, name, error, message) -> None:
    src = tmp_path / "coco.json"
    src.write_bytes(synth_coco(scale=0.0002, seed=3))
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["merge", f"coco={src}", "-o", str(out), "-q"]).exit_code == 0
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["annotations_file"] = name
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(error, match=message):
        read_output_folder(out)


def test_metadata_may_be_missing_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / ANNOTATIONS).write_text('{"images": [], "annotations": [], "categories": []}')
    folder = read_output_folder(tmp_path, metadata=False)
    assert folder.metainfo is None and folder.missing == ("metainfo.json", "manifest.json")
    with pytest.raises(UsageError, match=r"not a kpmerge output folder: no metainfo\.json"):
        read_output_folder(tmp_path)
