from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from kpmerge.sampling import ManifestSampler
from tests.synthfiles import raw_aic_file, style_file

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "sample.schema.json").read_text())


def invoke(args: list[str], ok: bool = True):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=not ok)
    if ok:
        assert result.exit_code == 0, result.stderr
    return result


@pytest.fixture
def sources(tmp_path) -> list[str]:
    """COCO (14 people, 2 without keypoints, 1 crowd) and raw AIC with its image folder, as CLI arguments."""
    raw, images = raw_aic_file(tmp_path / "in", people=9)
    coco = style_file(tmp_path / "in", "coco", images=4, people=14, unlabelled=2, crowd=1)
    return [f"coco={coco}", f"aic={raw}", "--image-dir", f"aic={images}"]


@pytest.fixture
def combined(tmp_path, sources) -> Path:
    """A combine of COCO and raw AIC with a batch composition; returns its manifest.json."""
    out = tmp_path / "combined"
    invoke(
        [
            *("combine", *sources, "--ratio", "aic=2", "--batch-ratio", "coco=1"),
            *("--batch-ratio", "aic=0.5", "--batch-size", "8", "--seed", "5", "-o", out, "-q"),
        ]
    )
    return out / "manifest.json"


def test_merge_and_combine_record_sampling_options(combined, sources, tmp_path):
    manifest = json.loads(combined.read_text())
    assert manifest["sampling"] == {"seed": 5, "batch_size": 8}
    assert [(s["name"], s["factor"], s["batch_ratio"]) for s in manifest["sources"]] == [
        ("coco", 1.0, 1.0),
        ("aic", 2.0, 0.5),
    ]
    out = tmp_path / "merged"
    invoke(["merge", *sources, "--ratio", "0.5", "--seed", "2", "-o", out, "-q"])
    merged = json.loads((out / "manifest.json").read_text())
    assert merged["sampling"] == {"seed": 2, "batch_size": None}
    assert [(s["factor"], s["batch_ratio"]) for s in merged["sources"]] == [(0.5, None), (0.5, None)]


@pytest.mark.parametrize("fmt", ["json", "npy"])
@pytest.mark.parametrize("batched", [True, False])
def test_sample_writes_one_file_per_epoch_and_rank(combined, tmp_path, fmt, batched):
    manifest = combined
    if not batched:
        data = json.loads(combined.read_text())
        data["sampling"]["batch_size"] = None
        for s in data["sources"]:
            s["batch_ratio"] = None
        manifest = tmp_path / "plain.json"
        manifest.write_text(json.dumps(data))
    out = tmp_path / "plan"
    result = invoke(["sample", manifest, "--epochs", "0:3", "--world-size", "2", "--format", fmt, "-o", out])
    assert result.stdout == ""
    assert result.stderr.startswith("kpmerge sample: 6 files (epoch_0000.rank_0_of_2.")
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"epoch_{e:04d}.rank_{r}_of_2.{fmt}" for e in range(3) for r in range(2)]
    for e in range(3):
        for r in range(2):
            sampler = ManifestSampler(manifest, rank=r, world_size=2)
            sampler.set_epoch(e)
            raw = (out / f"epoch_{e:04d}.rank_{r}_of_2.{fmt}").read_bytes()
            if fmt == "npy":
                arr = np.load(io.BytesIO(raw), allow_pickle=False)
                assert arr.dtype == np.dtype("<i8")
                assert arr.ndim == (2 if batched else 1)
                assert arr.tolist() == list(sampler)
            else:
                doc = json.loads(raw)
                jsonschema.validate(doc, SCHEMA)
                key = "batches" if batched else "indices"
                assert doc == {"epoch": e, "rank": r, "world_size": 2, key: list(sampler)}


def test_sample_one_rank_is_byte_identical_across_runs(combined, tmp_path):
    args = ["sample", combined, "--epochs", "4", "--rank", "1", "--world-size", "3", "-q"]
    invoke([*args, "-o", tmp_path / "a"])
    invoke([*args, "-o", tmp_path / "b"])
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["epoch_0004.rank_1_of_3.json"]
    assert (tmp_path / "a" / "epoch_0004.rank_1_of_3.json").read_bytes() == (
        tmp_path / "b" / "epoch_0004.rank_1_of_3.json"
    ).read_bytes()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--rank", "2", "--world-size", "2"], "Error: rank must be in [0, 2), got 2"),
        (["--epochs", "3:1"], "Error: Invalid value for '--epochs': expected a non-empty range of epochs"),
        (["--format", "csv"], "Error: Invalid value for '--format'"),
    ],
)
def test_sample_usage_errors(combined, tmp_path, args, line):
    out = tmp_path / "plan"
    result = invoke(["sample", combined, *args, "-o", out], ok=False)
    assert result.exit_code == 2
    assert line in result.stderr
    assert not out.exists()


def test_sample_refuses_a_file_that_is_no_manifest(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    result = invoke(["sample", bad, "-o", tmp_path / "plan"], ok=False)
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: {bad}: $: expected a kpmerge manifest.json (an object with kpmerge_manifest)\n"
    )
    assert not (tmp_path / "plan").exists()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--ratio", "nope=2"],
            "Error: Invalid value for --ratio: no source named 'nope' (sources: coco, aic)",
        ),
        (["--ratio", "aic=-1"], "Error: Invalid value for '--ratio': expected a number >= 0, got '-1'"),
        (["--ratio", "aic=x"], "Error: Invalid value for '--ratio': expected NAME=NUMBER, got 'aic=x'"),
        (
            ["--batch-ratio", "coco=1", "--batch-size", "8"],
            "Error: batch ratio missing for source aic: give one for every source or none",
        ),
        (["--batch-ratio", "1"], "Error: batch ratios need a batch size (--batch-size)"),
        (["--batch-size", "8"], "Error: a batch size goes with batch ratios (--batch-ratio)"),
        (
            ["--batch-ratio", "coco=1", "--batch-ratio", "aic=0.01", "--batch-size", "8"],
            "Error: batch ratio 0.01 of source aic gets no slot in a batch of 8; "
            "the smallest batch size that gives every source a slot is 101",
        ),
        (["--seed", "-3"], "Error: Invalid value for '--seed'"),
    ],
)
def test_combine_sampling_usage_errors(tmp_path, sources, args, line):
    out = tmp_path / "out"
    result = invoke(["combine", *sources, *args, "-o", out], ok=False)
    assert result.exit_code == 2
    assert line in result.stderr.splitlines()[-1]
    assert not out.exists()


def test_recipe_carries_sampling_keys(tmp_path):
    raw, images = raw_aic_file(tmp_path, people=9)
    coco = style_file(tmp_path, "coco", images=4, people=14)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        f'mode = "combine"\noutput = "out"\nseed = 11\nbatch_size = 4\n'
        f'[[sources]]\nname = "coco"\npath = "{coco}"\nratio = 1.5\nbatch_ratio = 3\n'
        f'[[sources]]\nname = "aic"\npath = "{raw}"\nimage_dir = "{images}"\nratio = 0.5\nbatch_ratio = 1\n'
    )
    invoke(["run", recipe, "-q"])
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["sampling"] == {"seed": 11, "batch_size": 4}
    assert [(s["factor"], s["batch_ratio"]) for s in manifest["sources"]] == [(1.5, 3.0), (0.5, 1.0)]
