"""The benchmark module: inputs, one measured run, the report (no timings are asserted)."""

from __future__ import annotations

import sys

from kpmerge import bench


def test_data_files_are_generated_once(tmp_path):
    paths = bench.data_files(0.0005, tmp_path)
    assert sorted(p.name for p in paths.values()) == ["aic_synth.json", "coco_synth.json"]
    stamp = paths["coco"].stat().st_mtime_ns
    assert bench.data_files(0.0005, tmp_path) == paths
    assert paths["coco"].stat().st_mtime_ns == stamp


def test_run_once_measures_a_process():
    wall, mb, cpu = bench.run_once([sys.executable, "-c", "x = bytearray(64 * 2**20)"])
    assert wall > 0 and cpu > 0
    assert mb >= 64


def test_bench_report(tmp_path):
    result = bench.bench(0.0005, 1, tmp_path / "data", tmp_path / "work")
    steps = result["steps"]
    assert "reference (orjson load + dump, gc off)" in steps and "kpmerge combine" in steps
    assert ("kpmerge inspect" in steps) == bench.has_command("inspect")
    ref = steps["reference (orjson load + dump, gc off)"]
    assert ref["wall_ratio_to_reference"] == 1.0 and ref["cpu_ratio_to_reference"] == 1.0
    combine = steps["kpmerge combine"]
    assert ref["wall_ratio_fastest"] == 1.0
    assert combine["wall_ratio_fastest"] == round(min(combine["wall_s"]) / min(ref["wall_s"]), 3)
    assert "kpmerge combine --jobs 1 (no helper process)" in steps
    table = bench.markdown(result)
    assert "| kpmerge combine |" in table and result["machine"]["python"] in table
    whole = result["wholebody"]["steps"]
    assert whole["reference (orjson load + dump, gc off)"]["wall_ratio_to_reference"] == 1.0
    assert "| kpmerge merge --target halpe26 |" in table
