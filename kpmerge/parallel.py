"""The one place where kpmerge starts processes: how many it may use, and work done beside this one.

Everything here has a plain sequential path that gives the same results; helper processes are an
optimisation used only where they are safe (Linux: fork and memory files; one running thread) and
only when the caller allows more than one process. Two shapes of work:
- `run_tasks`: whole tasks (reading one source each). A helper's result comes back through a memory
  file: numpy arrays travel out of band and are mapped, not copied, and object arrays of text (ids,
  file names, raw JSON members) as one joined blob each, several times faster than pickling every string.
- `in_parts`: one large array filled by rows. Helpers write their rows straight into memory this process
  shares with them (`shared_empty`), so nothing is handed back.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .errors import UsageError

T = TypeVar("T")
Children = list[tuple[int, int | None] | None]
"""Helpers as started: (pid, memory file or None), or None where none could be started."""
ALIGN = 64


def available_cpus() -> int:
    """The CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, int(quota)))
    return max(1, cpus)


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup (v2 `cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def resolve_jobs(jobs: int | None) -> int:
    """`jobs` checked (UsageError when below 1), or the available CPUs when None."""
    if jobs is None:
        return available_cpus()
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, got {jobs}")
    return jobs


def can_fork() -> bool:
    """Whether a helper process may be forked now: Linux (forking is not safe with macOS's system
    libraries), fork and memory files exist, and one thread runs (forking a threaded process is unsafe)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and hasattr(os, "memfd_create")
        and threading.active_count() == 1
    )


def run_tasks(tasks: Sequence[Callable[[], T]], jobs: int, done: Callable[[T], T] | None = None) -> list[T]:
    """The results of `tasks`, in order: the first runs here, up to `jobs - 1` of the others in helpers.

    A helper that cannot be started or fails is replaced by running its task here, so errors are the
    ones a sequential run raises, in task order. An error or interrupt here kills the helpers.

    Args:
        tasks: Functions without arguments whose results can be pickled.
        jobs: Processes to use at most, this one included (1: everything runs here).
        done: Called with each result as it is taken, in order (progress).
    """
    finish: Callable[[T], T] = done or (lambda result: result)
    helpers = min(len(tasks) - 1, jobs - 1)
    if helpers < 1 or not can_fork():
        return [finish(task()) for task in tasks]
    children: Children = []
    try:
        for task in tasks[1 : 1 + helpers]:
            _start(partial(_write_result, task), children)
        out = [finish(tasks[0]())]
        for task, child in zip(tasks[1 : 1 + helpers], children, strict=True):
            result: Any = None
            if child is not None:
                result = _collect(*child)
            out.append(finish(result if result is not None else task()))
        out += [finish(task()) for task in tasks[1 + helpers :]]
    finally:
        _stop(children)
    return out


def _write_result(task: Callable[[], Any], fd: int) -> None:
    write_object(fd, task())


def _collect(pid: int, fd: int | None) -> Any:
    """The helper's result, its arrays backed by the memory file (None when it failed)."""
    if fd is None or _exit_code(pid) != 0:
        return None
    try:
        return read_object(fd)
    except Exception:
        return None


_PROCESSES: ContextVar[int] = ContextVar("kpmerge_processes", default=1)


@contextmanager
def processes(jobs: int) -> Iterator[None]:
    """Let `in_parts` calls inside use up to `jobs` processes (outside: one, this process)."""
    token = _PROCESSES.set(jobs)
    try:
        yield
    finally:
        _PROCESSES.reset(token)


class _Shared(mmap.mmap):
    """Memory that this process and the helpers it forks later all see (an anonymous shared mapping)."""


def shared_empty(shape: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
    """An uninitialised array whose rows `in_parts` helpers may fill: shared memory when `processes`
    allows more than one and helpers can be forked, else a plain `np.empty` array."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if _PROCESSES.get() < 2 or size == 0 or not can_fork():
        return np.empty(shape, dtype=dtype)
    buffer = _Shared(-1, size, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def _is_shared(arr: np.ndarray) -> bool:
    base: Any = arr
    while base is not None and not isinstance(base, _Shared):
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return base is not None


FILLED, NOT_FILLED = 0, 3
"""Exit codes of an `in_parts` helper: its rows are filled, or `fill` returned False for them."""


def in_parts(fill: Callable[[int, int], bool], n: int, outs: Sequence[np.ndarray], min_rows: int) -> bool:
    """`fill(0, n)`, or the same work cut into consecutive row ranges done side by side; whether every
    `fill` returned True.

    `fill(start, stop)` writes rows start..stop of the arrays `outs` (and nothing else). When
    `processes` allows more than one and every one of `outs` comes from `shared_empty`, helpers fill
    ranges of at least `min_rows` rows while this process fills the first. A helper that cannot be
    started or fails is replaced by filling its range here (so an error is the one a single process
    raises); an error or interrupt here kills them.
    """
    parts = min(_PROCESSES.get(), n // max(1, min_rows))
    if parts < 2 or not all(map(_is_shared, outs)) or not can_fork():
        return fill(0, n)
    bounds = [(n * i // parts, n * (i + 1) // parts) for i in range(parts)]
    children: Children = []
    try:
        for lo, hi in bounds[1:]:
            _fork(partial(_fill_and_exit, fill, lo, hi), children)
        with processes(1):  # `fill` here starts no helpers of its own either
            if not fill(*bounds[0]):
                return False
            for (lo, hi), child in zip(bounds[1:], children, strict=True):
                code = _exit_code(child[0]) if child is not None else None
                if code == NOT_FILLED or (code != FILLED and not fill(lo, hi)):
                    return False
        return True
    finally:
        _stop(children)


def _fill_and_exit(fill: Callable[[int, int], bool], start: int, stop: int) -> None:
    _PROCESSES.set(1)  # a helper starts no helpers of its own
    os._exit(FILLED if fill(start, stop) else NOT_FILLED)


def _fork(run: Callable[[], None], children: Children, fd: int | None = None) -> None:
    """Fork a helper that runs `run`, then exits (0 when `run` returns, 1 when it raises), and append
    `(pid, fd)` to `children` (None when no helper can be started: no memory for a fork, say).

    Stop signals wait while this runs, so that an interrupt never leaves a helper `children` lacks.
    """
    stops = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    try:
        try:
            pid = os.fork()
        except OSError:
            children.append(None)
            return
        if pid == 0:  # the helper: never returns
            code = 1
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
                run()
                code = 0
            finally:
                os._exit(code)
        children.append((pid, fd))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _start(work: Callable[[int], None], children: Children) -> None:
    """`_fork` a helper that runs `work(fd)` on a new memory file `fd`."""
    try:
        fd = os.memfd_create("kpmerge-task", os.MFD_CLOEXEC)
    except OSError:
        children.append(None)
        return
    _fork(partial(work, fd), children, fd)
    if children[-1] is None:
        os.close(fd)


def _exit_code(pid: int) -> int | None:
    """Wait for the helper `pid`: its exit code; None when a signal ended it or it is gone."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else None


def _stop(children: Children) -> None:
    """Close the helpers' memory files; kill (then reap) the helpers still running: after an error or
    an interrupt here, their work is not needed. Helpers already waited for are left alone."""
    for pid, fd in filter(None, children):
        if fd is not None:
            os.close(fd)
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped already (`_exit_code`): its pid may belong to another process
            continue
        if not done:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def write_object(fd: int, obj: object) -> None:
    """Write `obj` into the (empty) file `fd` for `read_object`."""
    buffers: list[pickle.PickleBuffer] = []
    head = io.BytesIO()
    _Pickler(head, protocol=5, buffer_callback=buffers.append).dump(obj)
    raws = [b.raw() for b in buffers]
    table = np.zeros(2 * len(raws) + 2, dtype=np.int64)
    table[:2] = len(raws), head.tell()
    offset = _aligned(table.nbytes + head.tell())
    for i, raw in enumerate(raws):
        table[2 + 2 * i : 4 + 2 * i] = offset, raw.nbytes
        offset = _aligned(offset + raw.nbytes)
    with os.fdopen(fd, "wb", closefd=False) as f:
        f.write(table.tobytes())
        f.write(head.getbuffer())
        for (start, _), raw in zip(table[2:].reshape(-1, 2).tolist(), raws, strict=True):
            f.seek(start)
            f.write(raw)


def read_object(fd: int) -> Any:
    """The object `write_object` left in `fd`; its numpy arrays are backed by a mapping of the file."""
    size = os.fstat(fd).st_size
    if size < 16:
        raise EOFError("nothing was written")
    data = memoryview(mmap.mmap(fd, size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)))
    count, head_size = np.frombuffer(data, dtype=np.int64, count=2).tolist()
    table = np.frombuffer(data, dtype=np.int64, count=2 * count, offset=16).reshape(-1, 2).tolist()
    start = 16 + 16 * count
    return pickle.loads(data[start : start + head_size], buffers=[data[a : a + n] for a, n in table])


def _aligned(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is np.ndarray and obj.dtype == object and obj.ndim == 1:
            return _object_column(obj)
        return NotImplemented


def _object_column(arr: np.ndarray) -> tuple[Any, tuple[Any, ...]]:
    """How to rebuild a 1-D object array, read-only if it was: from its one value when it holds one str
    (or bytes) throughout, from one joined blob when it holds only str (or only bytes) without newlines,
    else from a list."""
    values = arr.tolist()
    writeable = bool(arr.flags.writeable)
    first = values[0] if values else None
    kind = type(first)
    same_ends = kind in (str, bytes) and type(values[-1]) is kind and first == values[-1]
    if same_ends and set(map(type, values)) == {kind} and values.count(first) == len(values):
        return _rebuild_constant, (first, len(values), writeable)  # one value throughout
    try:  # str.join takes only str: no need to look at every type first
        blob, kind = "\n".join(values).encode("utf-8", "surrogatepass"), "str"
    except TypeError:
        if set(map(type, values)) != {bytes}:
            return _rebuild_objects, (values, writeable)
        blob, kind = b"\n".join(values), "bytes"
    if blob.count(b"\n") != len(values) - 1:
        return _rebuild_objects, (values, writeable)
    return _rebuild_text_column, (pickle.PickleBuffer(blob), kind, writeable)  # the blob out of band


def _rebuild_text_column(blob: Any, kind: str, writeable: bool) -> np.ndarray:
    if kind == "str":
        return _rebuild_objects(str(blob, "utf-8", "surrogatepass").split("\n"), writeable)
    return _rebuild_objects(bytes(blob).split(b"\n"), writeable)


def _rebuild_constant(value: str | bytes, n: int, writeable: bool) -> np.ndarray:
    arr = np.full(n, value, dtype=object)
    arr.flags.writeable = writeable
    return arr


def _rebuild_objects(values: list[Any], writeable: bool) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    arr.flags.writeable = writeable
    return arr
