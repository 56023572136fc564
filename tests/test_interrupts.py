"""Interrupts at any moment: the run ends at once, leaves no temporary folder, and OUT is the previous
output or the complete new one, as the exit code says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpmerge import cli as cli_module
from kpmerge import interrupts, output, publish
from kpmerge.cli import cli
from kpmerge.errors import KpmergeError
from kpmerge.formats import coco_writer
from kpmerge.interrupts import Interrupted, interrupt_exit
from kpmerge.jsonwrite import Chunks
from kpmerge.output import GzipChunks, write_folder
from kpmerge.synth import synth_aic, synth_coco

END_WITHIN = 2.0


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".kpmerge-" in p.name)


def _tree(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())} if path.is_dir() else {}


def _previous_output(out: Path) -> Path:
    """`out` made as the folder of a previous run (its annotations.json holds `previous`)."""
    out.mkdir()
    (out / "annotations.json").write_bytes(b"previous")
    return out


def _small_coco(tmp_path: Path) -> Path:
    c = tmp_path / "c.json"
    c.write_bytes(synth_coco(scale=0.001, seed=1))
    return c


def _writers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kpmerge-writer" and t.is_alive()]


def _failing_chunks(n: int, at: int, exc: BaseException) -> Chunks:
    def make(i: int) -> bytes:
        if i == at:
            raise exc
        return b"x" * 65536

    return Chunks([(1, lambda i=i: make(i)) for i in range(n)])


@pytest.mark.parametrize("at", [0, 1, 2, 3, 4, 5, 6, 9, 17, 40, 63])
@pytest.mark.parametrize(
    "exc",
    [KeyboardInterrupt(), Interrupted(signal.SIGTERM), KpmergeError("bad")],
    ids=["int", "term", "error"],
)
def test_the_writer_stops_at_once_at_any_chunk(tmp_path, at, exc):
    out = _previous_output(tmp_path / "OUT")
    start = time.monotonic()
    with pytest.raises(type(exc)):
        write_folder({"annotations.json": lambda: _failing_chunks(64, at, exc)}, out, force=True)
    assert time.monotonic() - start < END_WITHIN
    assert _tree(out) == {"annotations.json": b"previous"}
    assert _leftovers(tmp_path) == []
    deadline = time.monotonic() + END_WITHIN
    while _writers() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _writers() == []


@pytest.mark.parametrize("at", [0, 1, 5, 30])
def test_a_disk_error_in_the_writer_thread_stops_the_run(tmp_path, monkeypatch, at):
    out = tmp_path / "OUT"
    writes = []

    class Failing:
        def __init__(self, f):
            self.f = f

        def write(self, data: bytes) -> int:
            writes.append(len(data))
            if len(writes) > at:
                raise OSError(28, "No space left on device")
            return self.f.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *args):
            self.f.close()

    real_open = open
    monkeypatch.setattr(output, "open", lambda p, mode: Failing(real_open(p, mode)), raising=False)
    chunks = Chunks([(1, lambda: b"x" * 1024) for _ in range(64)])
    with pytest.raises(KpmergeError, match="cannot write output: No space left on device"):
        write_folder({"annotations.json": lambda: chunks}, out)
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("at", [0, 2, 7])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_cli_exit_code_of_an_interrupt_while_writing(tmp_path, monkeypatch, at, signum):
    c = _small_coco(tmp_path)
    out = _previous_output(tmp_path / "OUT")
    monkeypatch.setattr(coco_writer, "CHUNK_RECORDS", 8)
    real = Chunks.__iter__

    def interrupted(self):
        for i, piece in enumerate(real(self)):
            if i == at:
                raise Interrupted(signum)
            yield piece

    monkeypatch.setattr(Chunks, "__iter__", interrupted)
    result = CliRunner().invoke(cli, ["combine", str(c), "-o", str(out), "--force", "-q"])
    name = signal.Signals(signum).name
    assert result.exit_code == 128 + signum
    assert result.stderr == f"Error: interrupted by {name}; nothing was written\n"
    assert _tree(out) == {"annotations.json": b"previous"}
    assert _leftovers(tmp_path) == []


def test_cli_an_interrupt_after_publishing_is_success(tmp_path, monkeypatch):
    c = _small_coco(tmp_path)
    out = tmp_path / "OUT"

    def summary(*args):
        raise Interrupted(signal.SIGTERM)  # the output is in place; only the summary is left

    monkeypatch.setattr(cli_module, "summary", summary)
    result = CliRunner().invoke(cli, ["combine", str(c), "-o", str(out)])
    assert result.exit_code == 0
    assert result.stderr.endswith(f"kpmerge: SIGTERM after the output was written; {out} is complete\n")
    assert sorted(_tree(out)) == ["annotations.json", "manifest.json", "metainfo.json", "metainfo.py"]
    assert _leftovers(tmp_path) == []


def test_cli_an_interrupt_right_after_the_move_of_an_output_written_before_is_success(tmp_path, monkeypatch):
    # The same OUT written twice in one process: the second run's move counts too.
    c = _small_coco(tmp_path)
    out = tmp_path / "OUT"
    assert CliRunner().invoke(cli, ["combine", str(c), "-o", str(out), "-q"]).exit_code == 0
    (out / "annotations.json").write_text("previous")
    real = publish.Staging._replace

    def moved_then_interrupted(self):
        real(self)
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(publish.Staging, "_replace", moved_then_interrupted)
    result = CliRunner().invoke(cli, ["combine", str(c), "-o", str(out), "--force", "-q"])
    assert result.exit_code == 0
    assert result.stderr == f"kpmerge: SIGTERM after the output was written; {out} is complete\n"
    assert (out / "annotations.json").read_text() != "previous"
    assert _leftovers(tmp_path) == []


def test_cli_nothing_published_before_an_interrupt_in_a_later_command(tmp_path, monkeypatch):
    # An output published by an earlier command of this process does not make a later one complete.
    c = _small_coco(tmp_path)
    assert CliRunner().invoke(cli, ["combine", str(c), "-o", str(tmp_path / "A"), "-q"]).exit_code == 0

    def interrupted(*args, **kwargs):
        raise Interrupted(signal.SIGINT)

    monkeypatch.setattr(cli_module, "run_job", interrupted)
    result = CliRunner().invoke(cli, ["combine", str(c), "-o", str(tmp_path / "B"), "-q"])
    assert result.exit_code == 130
    assert result.stderr == "Error: interrupted by SIGINT; nothing was written\n"


def test_interrupt_exit_codes():
    assert interrupt_exit(signal.SIGINT, ()) == (130, "interrupted by SIGINT; nothing was written")
    assert interrupt_exit(signal.SIGTERM, ())[0] == 143
    assert interrupt_exit(signal.SIGHUP, ())[0] == 129
    assert interrupt_exit(signal.SIGINT, (Path("o"),))[0] == 0


# --- real signals to the real command ------------------------------------------------------------------

_posix = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")


def _caught(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler for `signum` (its SigCgt mask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(mask >> (signum - 1) & 1)


def _run(
    args: list[str], signum: int | None, delay: float, ignore: int | None = None
) -> tuple[int, float, float]:
    """Run the CLI (started with signal `ignore` ignored); once its handlers are in place wait `delay` s
    and send `signum`. Returns the exit code, the seconds from handlers in place to exit, and from the
    signal to exit."""
    start = None if ignore is None else (lambda: signal.signal(ignore, signal.SIG_IGN))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kpmerge", *args], stderr=subprocess.PIPE, preexec_fn=start
    )
    while not _caught(proc.pid, signal.SIGTERM) and proc.poll() is None:
        time.sleep(0.002)
    ready = time.monotonic()
    sent = ready
    if signum is not None:
        time.sleep(delay)
        sent = time.monotonic()
        proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    end = time.monotonic()
    assert b"Traceback" not in err, err.decode()
    if os.environ.get("KPMERGE_SHOW_SIGNALS"):
        print(signum, f"{delay:.2f}", proc.returncode, f"{end - sent:.2f}", err.decode().strip())
    return proc.returncode, end - ready, end - sent


@_posix
def test_real_signals_at_many_moments_of_a_large_write(tmp_path):
    c, a = tmp_path / "c.json", tmp_path / "a.json"
    c.write_bytes(synth_coco(scale=0.06, seed=1))
    a.write_bytes(synth_aic(scale=0.06, seed=1))
    out = tmp_path / "OUT"
    args = ["combine", str(c), str(a), "-o", str(out), "--force", "-q", "--allow-missing-sizes"]
    _previous_output(out)
    code, whole, _ = _run(args, None, 0)
    assert code == 0
    new = _tree(out)
    # Moments from the start of the run to just past its end; SIGINT, SIGTERM and SIGHUP take turns, two runs
    # at a time (each into its own OUT) to keep the test short.
    moments = [whole * f for f in (0.0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.97, 1.05, 1.2)]
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]

    def one(i: int) -> tuple[int, int, float, dict[str, bytes], list[str]]:
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        target = _previous_output(folder / "OUT")
        signum = signals[i % len(signals)]
        code, _, after = _run([*args[:4], str(target), *args[5:]], signum, moments[i])
        return signum, code, after, _tree(target), _leftovers(folder)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, range(len(moments))))
    outcomes = []
    for (signum, code, after, tree, leftovers), moment in zip(results, moments, strict=True):
        seen = f"signal {signum} at {moment:.2f} s of {whole:.2f} s: exit {code} after {after:.2f} s"
        assert after < END_WITHIN, seen
        assert leftovers == [], seen
        assert code in (0, 128 + signum), seen
        assert tree == (new if code == 0 else {"annotations.json": b"previous"}), seen
        outcomes.append(code)
    assert outcomes.count(0) < len(outcomes)  # some moments fell before the output was written


@_posix
def test_two_runs_at_once_without_force_exactly_one_wins(tmp_path):
    c = tmp_path / "c.json"
    c.write_bytes(synth_coco(scale=0.01, seed=1))
    out = tmp_path / "OUT"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kpmerge", "combine", f"s{i}={c}", "-o", str(out), "-q"],
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    results = sorted((p.wait(timeout=60), p.stderr.read().decode()) for p in procs)
    assert results[0] == (0, "")
    assert results[1] == (2, f"Error: {out}: output exists (use --force to replace it)\n")
    assert _leftovers(tmp_path) == []


@_posix
def test_a_signal_ignored_at_start_stays_ignored(tmp_path):
    # nohup starts a command with SIGHUP ignored: kpmerge keeps it so and runs to the end.
    c = tmp_path / "c.json"
    c.write_bytes(synth_coco(scale=0.01, seed=1))
    out = tmp_path / "OUT"
    code, _, _ = _run(["combine", str(c), "-o", str(out), "-q"], signal.SIGHUP, 0.05, ignore=signal.SIGHUP)
    assert code == 0
    assert sorted(_tree(out)) == ["annotations.json", "manifest.json", "metainfo.json", "metainfo.py"]


@pytest.mark.parametrize("at", [0, 1, 5, 63])
def test_the_gzip_writer_stops_at_once_at_any_chunk(tmp_path, at):
    out = tmp_path / "OUT"
    with pytest.raises(KeyboardInterrupt):
        write_folder({"a.json.gz": lambda: GzipChunks(_failing_chunks(64, at, KeyboardInterrupt()))}, out)
    assert not out.exists()
    assert _leftovers(tmp_path) == []


# --- a signal whose Interrupted Python swallows (raised inside __del__ or a weakref callback) ---------


@pytest.fixture
def stop_handlers(monkeypatch):
    """The command's real stop-signal handlers, in this process, with a fresh record of signals."""
    monkeypatch.setattr(interrupts, "_STOP", interrupts.StopState())
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # put back after the test
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    interrupts.handle_stop_signals()
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def _swallowed_signal(how: str, signum: int = signal.SIGTERM) -> None:
    """Deliver `signum` so that the handler runs inside a `__del__` or a weakref callback, where Python
    prints "Exception ignored" and carries on."""

    class Dropped:
        def __del__(self):
            if how == "del":
                signal.raise_signal(signum)

    obj = Dropped()
    ref = weakref.ref(obj, lambda r: signal.raise_signal(signum)) if how == "weakref" else None
    del obj
    del ref


@pytest.mark.parametrize("how", ["del", "weakref"])
def test_a_swallowed_signal_still_stops_the_run_before_publishing(tmp_path, monkeypatch, stop_handlers, how):
    c = _small_coco(tmp_path)
    out = _previous_output(tmp_path / "OUT")
    real = cli_module.run_job

    def run_job(*args, **kwargs):
        _swallowed_signal(how)
        return real(*args, **kwargs)  # goes on: the exception was swallowed

    monkeypatch.setattr(cli_module, "run_job", run_job)
    result = CliRunner().invoke(cli, ["combine", str(c), "-o", str(out), "--force", "-q"])
    assert result.exit_code == 143
    assert result.stderr == "Error: interrupted by SIGTERM; nothing was written\n"
    assert _tree(out) == {"annotations.json": b"previous"}
    assert _leftovers(tmp_path) == []


def test_a_signal_after_a_swallowed_one_still_stops(stop_handlers):
    _swallowed_signal("del", signal.SIGTERM)
    with pytest.raises(Interrupted) as raised:
        signal.raise_signal(signal.SIGINT)
    assert raised.value.signum == signal.SIGTERM  # the first one, as its exit code
    # An interrupt on its way (not swallowed): a second signal is ignored while the run cleans up.
    signal.raise_signal(signal.SIGHUP)


def test_a_swallowed_signal_in_a_command_that_writes_nothing(monkeypatch, stop_handlers):
    real = cli_module.builtin_layout_names

    def names():
        _swallowed_signal("del", signal.SIGHUP)
        return real()

    monkeypatch.setattr(cli_module, "builtin_layout_names", names)
    result = CliRunner().invoke(cli, ["layouts"])
    assert result.exit_code == 129
    assert result.stderr == "Error: interrupted by SIGHUP; nothing was written\n"


def test_a_swallowed_signal_after_publishing_is_success(tmp_path, monkeypatch, stop_handlers):
    c = _small_coco(tmp_path)
    out = tmp_path / "OUT"
    real = cli_module.summary

    def summary(*args):
        _swallowed_signal("weakref")
        return real(*args)

    monkeypatch.setattr(cli_module, "summary", summary)
    result = CliRunner().invoke(cli, ["combine", str(c), "-o", str(out)])
    assert result.exit_code == 0
    assert result.stderr.endswith(f"kpmerge: SIGTERM after the output was written; {out} is complete\n")
    assert sorted(_tree(out)) == ["annotations.json", "manifest.json", "metainfo.json", "metainfo.py"]
    assert _leftovers(tmp_path) == []


def test_the_handler_records_the_signal_before_raising(monkeypatch):
    monkeypatch.setattr(interrupts, "_STOP", interrupts.StopState())
    with pytest.raises(Interrupted):
        interrupts.on_stop_signal(signal.SIGTERM, None)
    assert interrupts._STOP.pending == signal.SIGTERM
    with pytest.raises(Interrupted):
        interrupts.check_stop()
    interrupts.settle()
    interrupts.check_stop()  # the exit code is settled: nothing left to act upon
    interrupts.on_stop_signal(signal.SIGINT, None)  # ignored


def _session_processes(sid: int) -> list[int]:
    """Processes still in session `sid` (their pid, from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:  # the 6th field of stat: session id
                found.append(int(entry.name))
    return found


@_posix
def test_an_interrupt_while_helpers_fill_rows_leaves_no_helper(tmp_path):
    from kpmerge.synth import write_synth_wholebody

    path = write_synth_wholebody(tmp_path / "wb.json", scale=0.02, seed=1)
    code = (
        "import kpmerge.formats.wholebody as w, kpmerge.jsonio as j\n"
        "w.PARALLEL_MIN_ROWS = j.PARALLEL_MIN_NUMBERS = 1\n"  # every row filled side by side
        "from kpmerge.__main__ import main\nmain()\n"
    )
    for i, delay in enumerate((0.0, 0.05, 0.1, 0.15, 0.2, 0.3)):
        out = tmp_path / f"OUT{i}"
        args = ["merge", f"wb={path}", "--target", "halpe26", "-o", str(out), "-q", "--jobs", "2"]
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], stderr=subprocess.PIPE, start_new_session=True
        )
        while not _caught(proc.pid, signal.SIGTERM) and proc.poll() is None:  # kpmerge's handlers are in
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        assert b"Traceback" not in err, err.decode()
        assert proc.returncode in (0, 130), err.decode()
        assert (out / "annotations.json").exists() == (proc.returncode == 0)
        assert _leftovers(tmp_path) == []
        deadline = time.monotonic() + END_WITHIN
        while _session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _session_processes(proc.pid) == [], f"helpers left after a signal at {delay} s"
