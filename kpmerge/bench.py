"""Benchmark kpmerge against a bare JSON round trip of the same files (`make bench`).

`python -m kpmerge.bench --scale 1 --runs 3 --out bench_out/bench.json` writes synthetic COCO and raw AIC
files of the given scale (cached in `bench_data/`), then runs each step as a whole process, several times:
reading the bytes, the reference (orjson load + dump with the garbage collector disabled), `kpmerge merge`,
`kpmerge combine` and `kpmerge inspect` (when the command exists). It reports the median wall time and peak
memory of each, and their ratio to the reference, as JSON and as a Markdown table. `--linearity` also runs
combine at twice the scale and reports the time ratio. A second table times `kpmerge merge --target
halpe26` of a synthetic COCO-WholeBody file of the same scale against the same reference of that file
(`--no-wholebody` leaves it out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from .synth import write_synth, write_synth_wholebody

READ = "import sys\nfor p in sys.argv[1:]:\n    open(p, 'rb').read()\n"
REFERENCE = (
    "import gc, sys, orjson\ngc.disable()\n"
    "for p in sys.argv[1:]:\n"
    "    with open(p, 'rb') as f:\n"
    "        doc = orjson.loads(f.read())\n"
    "    out = orjson.dumps(doc)\n"
)


def data_files(scale: float, cache: Path) -> dict[str, Path]:
    """The synthetic inputs of one scale, generated once into `cache/x<scale>/`."""
    folder = cache / f"x{scale:g}"
    paths = {"coco": folder / "coco_synth.json", "aic": folder / "aic_synth.json"}
    stamp = folder / ".complete"
    if not stamp.exists():
        print(f"generating scale {scale:g} into {folder} ...", file=sys.stderr, flush=True)
        write_synth(folder, scale)
        stamp.write_text("ok\n")
    return paths


def wholebody_file(scale: float, cache: Path) -> Path:
    """The synthetic COCO-WholeBody input of one scale, generated once into `cache/x<scale>/`."""
    folder = cache / f"x{scale:g}"
    path, stamp = folder / "coco_wholebody_synth.json", folder / ".wholebody-complete"
    if not stamp.exists():
        print(f"generating whole-body scale {scale:g} into {folder} ...", file=sys.stderr, flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        write_synth_wholebody(path, scale)
        stamp.write_text("ok\n")
    return path


def wholebody_steps(path: Path, out: Path) -> dict[str, list[str]]:
    """The whole-body commands to time: the reference and `kpmerge merge --target halpe26`."""
    py = sys.executable
    merge = [py, "-m", "kpmerge", "merge", f"wholebody={path}", "--target", "halpe26"]
    return {
        "reference (orjson load + dump, gc off)": [py, "-c", REFERENCE, str(path)],
        "kpmerge merge --target halpe26": [*merge, "-o", str(out / "wholebody"), "--force", "-q"],
    }


# Each step runs under this small launcher: Linux counts the RSS a process had before exec in its child's
# peak (ru_maxrss), so children of the benchmark process itself would inherit its memory as their floor.
# ru_maxrss is exact for one process. As kpmerge may read inputs and write output in forked helper
# processes, the launcher can also sample the memory of the whole process tree every 10 ms, summing each
# process's proportional set size (PSS), so that pages a helper shares with its parent count once.
# Reading PSS walks the page tables (several ms for a large process) and would take CPU from the step it
# measures, so timed runs do not sample: one more run per step does.
RUNNER = """
import json, os, subprocess, sys, time

def own_memory(p):
    try:  # proportional: pages a forked helper shares with its parent are counted once in all
        with open(f"/proc/{p}/smaps_rollup") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        with open(f"/proc/{p}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def tree_rss(pid):
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += own_memory(p)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            pass
    return total

cmd, sample = json.loads(sys.argv[1]), sys.argv[2] == "1"
t = time.perf_counter()
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
peak = 0
while True:
    pid, status, usage = os.wait4(p.pid, os.WNOHANG)
    if pid:
        break
    if sample:
        peak = max(peak, tree_rss(p.pid))
    time.sleep(0.01)
wall = time.perf_counter() - t
cpu = usage.ru_utime + usage.ru_stime  # the process and the helpers it waited for
print(json.dumps([wall, usage.ru_maxrss * 1024, peak, os.waitstatus_to_exitcode(status), cpu]))
"""


def run_once(cmd: list[str], sample: bool = True) -> tuple[float, float, float]:
    """Wall seconds, peak memory (MB) and CPU seconds of one whole process and any helpers it starts.

    The peak is the larger of the process's own exact peak RSS and (with `sample`) the sampled sum over
    its process tree; sampling takes some CPU from the process measured.
    """
    done = subprocess.run(
        [sys.executable, "-S", "-c", RUNNER, json.dumps(cmd), "1" if sample else "0"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"{' '.join(cmd)}: launcher failed:\n{done.stderr}")
    wall, maxrss, tree_peak, code, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({code}):\n{done.stderr}")
    return wall, max(maxrss, tree_peak) / 2**20, cpu


def has_command(name: str) -> bool:
    """Whether this kpmerge has the command `name`."""
    cmd = [sys.executable, "-m", "kpmerge", name, "--help"]
    return subprocess.run(cmd, capture_output=True).returncode == 0


def steps(paths: dict[str, Path], out: Path) -> tuple[dict[str, list[str]], list[str]]:
    """The commands to time, by step name, and notes on steps left out."""
    py, files = sys.executable, [str(paths["coco"]), str(paths["aic"])]
    # The synthetic AIC has no image folder (210,000 images at scale 1): its sizes are left out, so the
    # timings are of the annotation work alone, as before image sizes were required.
    sources = [f"coco={paths['coco']}", f"aic={paths['aic']}", "--allow-missing-sizes"]
    cmds = {
        "read bytes": [py, "-c", READ, *files],
        "reference (orjson load + dump, gc off)": [py, "-c", REFERENCE, *files],
        "kpmerge merge": [py, "-m", "kpmerge", "merge", *sources, "-o", str(out / "merge"), "--force", "-q"],
        "kpmerge combine": [
            *(py, "-m", "kpmerge", "combine", *sources, "-o", str(out / "combine"), "--force", "-q")
        ],
        "kpmerge combine --jobs 1 (no helper process)": [
            *(py, "-m", "kpmerge", "combine", *sources, "-o", str(out / "combine1"), "--force", "-q"),
            *("--jobs", "1"),
        ],
    }
    notes = []
    if has_command("inspect"):
        cmds["kpmerge inspect"] = [py, "-m", "kpmerge", "inspect", str(out / "combine")]
    else:
        notes.append("kpmerge inspect: skipped (this kpmerge has no inspect command)")
    return cmds, notes


def measure(cmds: dict[str, list[str]], runs: int) -> dict[str, dict[str, Any]]:
    """Run every step `runs` times, steps interleaved (earlier steps' writes flushed to disk before each
    run), then once more sampling memory; medians of wall time and peak memory (the larger of the median
    own peak and the process tree's sampled peak), and wall time of the fastest runs against each other."""
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    cpus: dict[str, list[float]] = {k: [] for k in cmds}
    rss: dict[str, list[float]] = {k: [] for k in cmds}
    tree: dict[str, float] = {}
    for r in range(runs + 1):  # the last run samples the memory of the process tree and is not timed
        for name, cmd in cmds.items():
            if "-o" in cmd:  # a fresh output folder each time (removing the last one is not timed)
                shutil.rmtree(cmd[cmd.index("-o") + 1], ignore_errors=True)
            if hasattr(os, "sync"):  # earlier steps' output goes to disk now, not during this step
                os.sync()
            wall, mem, cpu = run_once(cmd, sample=r == runs)
            if r == runs:
                tree[name] = round(mem, 1)
                print(f"  memory run {name}: {mem:.0f} MB", file=sys.stderr, flush=True)
                continue
            walls[name].append(round(wall, 3))
            cpus[name].append(round(cpu, 3))
            rss[name].append(round(mem, 1))
            line = f"  run {r + 1}/{runs} {name}: {wall:.2f} s, {cpu:.2f} s CPU, {mem:.0f} MB"
            print(line, file=sys.stderr, flush=True)
    peaks = {name: max(statistics.median(rss[name]), tree[name]) for name in cmds}
    ref = next(k for k in cmds if k.startswith("reference"))
    ref_wall, ref_cpu = statistics.median(walls[ref]), statistics.median(cpus[ref])
    return {
        name: {
            "wall_s": walls[name],
            "cpu_s": cpus[name],
            "cpu_s_median": round(statistics.median(cpus[name]), 3),
            "cpu_ratio_to_reference": round(statistics.median(cpus[name]) / ref_cpu, 3),
            "peak_rss_mb": rss[name],
            "peak_tree_mb": tree[name],
            "wall_s_median": round(statistics.median(walls[name]), 3),
            "peak_rss_mb_median": round(peaks[name], 1),
            "wall_ratio_to_reference": round(statistics.median(walls[name]) / ref_wall, 3),
            # the fastest runs of each: the ratio least moved by a slow moment of the machine
            "wall_ratio_fastest": round(min(walls[name]) / min(walls[ref]), 3),
            "rss_ratio_to_reference": round(peaks[name] / peaks[ref], 3),
        }
        for name in cmds
    }


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, OS and Python/library versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    import msgspec
    import numpy
    import orjson

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "orjson": orjson.__version__,
        "msgspec": msgspec.__version__,
        "numpy": numpy.__version__,
    }


def markdown(result: dict[str, Any]) -> str:
    """The result as a Markdown table with the machine and inputs above it."""
    m = result["machine"]
    sizes = ", ".join(f"{k} {v['mb']:.0f} MB" for k, v in result["inputs"].items())
    lines = [
        f"Scale {result['scale']:g} ({sizes}); median of {result['runs']} runs; "
        f"{m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, Python {m['python']}.",
        "",
        *_table(result["steps"]),
    ]
    if "linearity" in result:
        lin = result["linearity"]
        lines += [
            "",
            f"Linearity: at scale {lin['scale']:g}, {lin['step']} took {lin['wall_s_median']:.2f} s, "
            f"{lin['ratio']:.2f} x the time at scale {result['scale']:g}.",
        ]
    if "wholebody" in result:
        wb = result["wholebody"]
        lines += [
            "",
            f"COCO-WholeBody ({wb['input']['mb']:.0f} MB), median of {result['runs']} runs:",
            "",
            *_table(wb["steps"]),
        ]
    lines += [f"Note: {n}" for n in result["notes"]]
    return "\n".join(lines)


def _table(steps: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown rows: wall time, CPU time and peak memory of every step, and each against the reference
    (wall time also as the fastest run of the step against the fastest run of the reference)."""
    lines = [
        "| step | wall time (s) | x ref. | x ref., fastest runs | CPU time (s) | x ref. "
        "| peak memory (MB) | x ref. |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in steps.items():
        lines.append(
            f"| {name} | {r['wall_s_median']:.2f} | {r['wall_ratio_to_reference']:.2f} | "
            f"{r['wall_ratio_fastest']:.2f} | "
            f"{r['cpu_s_median']:.2f} | {r['cpu_ratio_to_reference']:.2f} | "
            f"{r['peak_rss_mb_median']:.0f} | {r['rss_ratio_to_reference']:.2f} |"
        )
    return lines


def bench(
    scale: float, runs: int, cache: Path, work: Path, linearity: bool = False, wholebody: bool = True
) -> dict[str, Any]:
    """Generate (or reuse) the inputs of `scale` and time every step; see the module docstring."""
    paths = data_files(scale, cache)
    work.mkdir(parents=True, exist_ok=True)
    cmds, notes = steps(paths, work)
    result: dict[str, Any] = {
        "scale": scale,
        "runs": runs,
        "machine": machine(),
        "inputs": {k: {"file": p.name, "mb": round(p.stat().st_size / 1e6, 1)} for k, p in paths.items()},
        "steps": measure(cmds, runs),
        "notes": notes,
    }
    if linearity:
        paths2 = data_files(2 * scale, cache)
        step, ref = "kpmerge combine", "reference (orjson load + dump, gc off)"
        cmds2 = steps(paths2, work)[0]
        twice = measure({ref: cmds2[ref], step: cmds2[step]}, runs)
        t2 = twice[step]["wall_s_median"]
        result["linearity"] = {
            "scale": 2 * scale,
            "step": step,
            "wall_s_median": t2,
            "peak_rss_mb_median": twice[step]["peak_rss_mb_median"],
            "reference_wall_s_median": twice[ref]["wall_s_median"],
            "ratio": round(t2 / result["steps"][step]["wall_s_median"], 3),
        }
    if wholebody:
        wb_path = wholebody_file(scale, cache)
        result["wholebody"] = {
            "input": {"file": wb_path.name, "mb": round(wb_path.stat().st_size / 1e6, 1)},
            "steps": measure(wholebody_steps(wb_path, work), runs),
        }
    shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> None:
    """`python -m kpmerge.bench --scale S --runs N --out FILE.json [--linearity]`."""
    parser = argparse.ArgumentParser(prog="python -m kpmerge.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1 = full COCO train + AIC train sizes")
    parser.add_argument("--runs", type=int, default=3, help="runs per step (the median is reported)")
    parser.add_argument("--out", type=Path, default=Path("bench_out/bench.json"), help="result JSON file")
    parser.add_argument("--data", type=Path, default=Path("bench_data"), help="cache of generated inputs")
    parser.add_argument("--linearity", action="store_true", help="also time combine at twice the scale")
    parser.add_argument("--no-wholebody", action="store_true", help="leave out the COCO-WholeBody table")
    args = parser.parse_args(argv)
    work = args.out.parent / "work"
    result = bench(args.scale, args.runs, args.data, work, args.linearity, not args.no_wholebody)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"\n(results in {args.out})", file=sys.stderr)


if __name__ == "__main__":
    main()
