"""kpmerge.parallel: CPUs available, tasks beside this process, objects handed back through memory files."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from kpmerge import parallel
from kpmerge.errors import UsageError

_memory_files = pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memory files are Linux-only")


def _trip(obj):
    fd = os.memfd_create("test")
    try:
        parallel.write_object(fd, obj)
        return parallel.read_object(fd)
    finally:
        os.close(fd)


def _objects(values, writeable=True):
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    arr.flags.writeable = writeable
    return arr


@_memory_files
@pytest.mark.parametrize(
    "values",
    [
        ["a", "b/human1", "", "é ü 中", "\ud800 lone surrogate"],  # text, joined into one blob
        [b'"url":"x"', b"", b"\xff raw"],
        ["with\nnewline", "plain"],  # a newline inside: pickled one by one instead
        [b"a\nb", b"c"],
        [1, "mixed", None],
        ["only"],
        [""],
        [b""] * 5,  # one value throughout
        ["x", "x"],
        ["x", b"x", "x"],  # equal-looking values of two types: one by one
    ],
)
def test_object_columns_come_back_equal_with_their_flags(values):
    for writeable in (True, False):
        back = _trip({"col": _objects(values, writeable)})["col"]
        assert back.dtype == object and back.tolist() == values
        assert back.flags.writeable is writeable


@_memory_files
def test_numeric_arrays_come_back_equal_and_mapped():
    kp = np.arange(2 * 14 * 3, dtype=np.float64).reshape(2, 14, 3)
    kp.flags.writeable = False
    back = _trip((kp, np.array([1, 2], dtype=np.int64), "name"))
    np.testing.assert_array_equal(back[0], kp)
    assert back[0].dtype == kp.dtype and not back[0].flags.writeable
    assert not back[0].flags.owndata  # a view of the mapped file, not a copy
    assert back[1].tolist() == [1, 2] and back[2] == "name"


@_memory_files
def test_an_empty_file_is_an_error():
    fd = os.memfd_create("test")
    try:
        with pytest.raises(EOFError):
            parallel.read_object(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "50000 100000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
        ({"cpu.max": "garbage"}, None),
    ],
)
def test_cgroup_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert parallel._cgroup_quota(tmp_path) == expected


@pytest.mark.parametrize(
    ("affinity", "quota", "expected"), [(8, None, 8), (8, 1.5, 1), (8, 0.5, 1), (2, 4.0, 2)]
)
def test_available_cpus_takes_affinity_and_quota(monkeypatch, affinity, quota, expected):
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: set(range(affinity)), raising=False)
    monkeypatch.setattr(parallel, "_cgroup_quota", lambda: quota)
    assert parallel.available_cpus() == expected


def test_resolve_jobs(monkeypatch):
    monkeypatch.setattr(parallel, "available_cpus", lambda: 3)
    assert parallel.resolve_jobs(None) == 3
    assert parallel.resolve_jobs(1) == 1
    with pytest.raises(UsageError, match="jobs must be at least 1, got 0"):
        parallel.resolve_jobs(0)


def _forbidden_fork():
    raise AssertionError("no process may be started")


def test_one_job_runs_everything_here_in_order(monkeypatch):
    monkeypatch.setattr(parallel.os, "fork", _forbidden_fork, raising=False)
    seen = []
    out = parallel.run_tasks(
        [lambda i=i: i * i for i in range(4)], jobs=1, done=lambda r: seen.append(r) or r
    )
    assert out == [0, 1, 4, 9] and seen == out


def test_no_fork_off_linux(monkeypatch):
    monkeypatch.setattr(parallel.sys, "platform", "win32")
    monkeypatch.setattr(parallel.os, "fork", _forbidden_fork, raising=False)
    assert not parallel.can_fork()
    assert parallel.run_tasks([lambda: 1, lambda: 2], jobs=2) == [1, 2]


@_memory_files
def test_helpers_give_the_same_results_in_order():
    pid = os.getpid()
    tasks = [lambda i=i: (i, np.arange(i), os.getpid() != pid) for i in range(3)]
    out = parallel.run_tasks(tasks, jobs=3)
    assert [r[0] for r in out] == [0, 1, 2]
    assert all(np.array_equal(r[1], np.arange(i)) for i, r in enumerate(out))
    assert [r[2] for r in out] == [False, True, True]  # the first here, the others in helpers


@_memory_files
def test_a_failing_helper_task_is_run_again_here_and_raises_in_order():
    calls = []

    def bad():
        calls.append(os.getpid())
        raise RuntimeError("bad task")

    with pytest.raises(RuntimeError, match="bad task"):
        parallel.run_tasks([lambda: 0, bad], jobs=2)
    assert calls == [os.getpid()]  # the helper's failure was not seen here: the task ran again here


def test_kpmerge_imports_without_posix_only_modules():
    # Windows has no fcntl, termios, resource or memfd: kpmerge must import and plan without them.
    code = (
        "import sys\n"
        "for m in ('fcntl', 'termios', 'resource', 'pwd', 'grp'): sys.modules[m] = None\n"
        "import kpmerge.cli, kpmerge.job, kpmerge.parallel, kpmerge.inspect, kpmerge.sampling\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_jobs_option_gives_the_same_bytes_and_is_checked(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from kpmerge import job
    from kpmerge.cli import cli
    from kpmerge.recipe import recipe_to_job
    from kpmerge.synth import synth_coco

    monkeypatch.setattr(job, "PARALLEL_MIN_BYTES", 0)
    files = []
    for seed in (1, 2):
        files.append(tmp_path / f"c{seed}.json")
        files[-1].write_bytes(synth_coco(scale=0.001, seed=seed))
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        args = ["combine", f"a={files[0]}", f"b={files[1]}", "-o", str(out), "-q", "--jobs", jobs]
        assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0
        outs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outs[0] == outs[1]
    bad = CliRunner().invoke(cli, ["combine", f"a={files[0]}", "-o", str(tmp_path / "x"), "--jobs", "0"])
    assert bad.exit_code == 2 and "--jobs" in bad.stderr
    data = {"mode": "combine", "output": "o", "sources": [{"path": "a.json"}], "jobs": 3}
    assert recipe_to_job(data, tmp_path).jobs == 3


def test_shared_empty_is_plain_unless_processes_allow_more():
    assert not parallel._is_shared(parallel.shared_empty((3, 2), np.float64))
    with parallel.processes(1):
        assert not parallel._is_shared(parallel.shared_empty((3, 2), np.float64))


@_memory_files
def test_in_parts_helpers_fill_shared_rows_in_place():
    n = 10
    with parallel.processes(3):
        out = parallel.shared_empty((n, 2), np.float64)
        who = parallel.shared_empty((n,), np.int64)
        assert parallel._is_shared(out[:, 1:]) and parallel._is_shared(who)
        budgets = parallel.shared_empty((n,), np.int64)

        def fill(lo, hi):
            out[lo:hi] = np.arange(lo, hi)[:, None] * [1, 10]
            who[lo:hi] = os.getpid()
            budgets[lo:hi] = parallel._PROCESSES.get()
            return True

        assert parallel.in_parts(fill, n, [out, who, budgets], min_rows=3)
    np.testing.assert_array_equal(out, np.arange(n)[:, None] * [1, 10])
    assert [who[0], who[3], who[6]].count(os.getpid()) == 1 and len(set(who.tolist())) == 3
    assert (budgets == 1).all()  # nobody inside starts helpers of their own


@_memory_files
def test_in_parts_a_failing_helper_range_is_filled_here_and_false_stops():
    n, here = 8, os.getpid()
    with parallel.processes(2):
        out = parallel.shared_empty((n,), np.int64)

        def fill(lo, hi):
            if os.getpid() != here:
                raise RuntimeError("helper fails")
            out[lo:hi] = 7
            return True

        assert parallel.in_parts(fill, n, [out], min_rows=1)
        assert (out == 7).all()  # the helper's range was filled here again
        assert not parallel.in_parts(lambda lo, hi: lo == 0, n, [out], min_rows=1)  # a helper's rows say no


def test_in_parts_without_shared_arrays_is_one_call(monkeypatch):
    monkeypatch.setattr(parallel.os, "fork", _forbidden_fork, raising=False)
    calls = []
    with parallel.processes(4):
        assert parallel.in_parts(lambda lo, hi: calls.append((lo, hi)) is None, 9, [np.empty(9)], 1)
    assert calls == [(0, 9)]


def _children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


@_memory_files
@pytest.mark.parametrize("shape", ["in_parts", "run_tasks"])
def test_an_interrupt_between_two_forks_leaves_no_helper(monkeypatch, shape):
    real, calls = parallel.os.fork, []

    def fork_then_interrupt():
        calls.append(1)
        if len(calls) == 2:  # Ctrl-C lands while the second helper is being started
            raise KeyboardInterrupt
        return real()

    monkeypatch.setattr(parallel.os, "fork", fork_then_interrupt)
    with parallel.processes(3), pytest.raises(KeyboardInterrupt):
        if shape == "in_parts":
            out = parallel.shared_empty((9,), np.int64)
            parallel.in_parts(lambda lo, hi: time.sleep(5) is None, 9, [out], min_rows=1)
        else:
            parallel.run_tasks([lambda: 0, lambda: time.sleep(5), lambda: time.sleep(5)], jobs=3)
    assert len(calls) == 2 and not _children_left()  # the first helper was killed and reaped


def test_a_column_holding_arrays_is_handed_back_as_a_list():
    values = ["x", np.arange(2), "x"]
    rebuild, args = parallel._object_column(_objects(values))
    back = rebuild(*args)
    assert back[0] == back[2] == "x" and np.array_equal(back[1], np.arange(2))
