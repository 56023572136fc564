"""Publishing an output: never replacing what appears at OUT, races, leftovers of dead runs, modes."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kpmerge import publish
from kpmerge.errors import UsageError
from kpmerge.output import write_folder
from kpmerge.publish import Staging, check_output, check_outside_inputs, remove_leftovers, write_file

EXISTS = "output exists (use --force to replace it)"


@pytest.fixture(params=["renameat2", "fallback"])
def how(request, monkeypatch) -> str:
    """Each test runs with renameat2 (where this system has it) and with the fallback for other systems."""
    if request.param == "renameat2" and publish._renameat2() is None:
        pytest.skip("no renameat2 here")
    if request.param == "fallback":
        monkeypatch.setattr(publish, "_renameat2", lambda: None)
    return request.param


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".kpmerge-" in p.name)


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _appears(what: str, out: Path):
    """A file maker that makes `what` appear at `out` while the run is writing."""

    def make() -> bytes:
        if what == "empty folder":
            out.mkdir()
        elif what == "folder":
            out.mkdir()
            (out / "theirs.json").write_text("theirs")
        else:
            out.write_text("theirs")
        return b"{}"

    return make


@pytest.mark.parametrize("what", ["empty folder", "folder", "file"])
def test_what_appears_at_out_during_a_run_without_force_is_never_touched(tmp_path, how, what):
    out = tmp_path / "OUT"
    with pytest.raises(UsageError, match=f"^{out}: {EXISTS.replace('(', '.').replace(')', '.')}$"):
        write_folder({"a.json": _appears(what, out)}, out)
    if what == "file":
        assert out.read_text() == "theirs"
    else:
        assert _tree(out) == ({} if what == "empty folder" else {"theirs.json": b"theirs"})
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("what", ["empty folder", "folder", "file"])
def test_a_file_output_never_replaces_what_appears(tmp_path, how, what):
    out = tmp_path / "gt.json"

    def appear_then_write(self: Staging) -> Path:
        _appears(what, out)()
        return real(self)

    real = Staging.publish
    Staging.publish = appear_then_write  # type: ignore[method-assign]
    try:
        with pytest.raises(UsageError, match="output exists"):
            write_file(b"new", out)
    finally:
        Staging.publish = real  # type: ignore[method-assign]
    assert out.exists() and _leftovers(tmp_path) == []


def test_two_runs_without_force_exactly_one_wins(tmp_path, how):
    out = tmp_path / "OUT"
    with Staging(out) as first, Staging(out) as second:
        (first.path / "a.json").write_text("first")
        (second.path / "a.json").write_text("second")
        first.publish()
        with pytest.raises(UsageError, match="output exists"):
            second.publish()
    assert _tree(out) == {"a.json": b"first"}
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("before", ["folder", "nothing", "file appears", "folder appears"])
def test_force_replaces_and_leaves_nothing_beside(tmp_path, how, before):
    out = tmp_path / "OUT"
    if before == "folder":
        out.mkdir()
        (out / "old.json").write_text("old")

    def make() -> bytes:  # with --force, what appears meanwhile is replaced too
        if before == "file appears":
            out.write_text("late")
        elif before == "folder appears":
            out.mkdir()
            (out / "late.json").write_text("late")
        return b"new"

    published: list[Path] = []
    write_folder({"a.json": make}, out, force=True, published=published)
    assert _tree(out) == {"a.json": b"new"}
    assert _leftovers(tmp_path) == []
    assert published == [out]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_folders_and_files_follow_the_umask(tmp_path, how, umask):
    old = os.umask(umask)
    try:
        write_folder({"a.json": lambda: b"{}", "sub/b.json": lambda: b"{}"}, tmp_path / "OUT")
        write_file(b"{}", tmp_path / "gt.json")
    finally:
        os.umask(old)

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    assert mode(tmp_path / "OUT") == mode(tmp_path / "OUT" / "sub") == 0o777 & ~umask
    assert mode(tmp_path / "OUT" / "a.json") == mode(tmp_path / "gt.json") == 0o666 & ~umask


# --- leftovers of runs that died (SIGKILL, power loss) ------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _box(tmp_path: Path, out: Path, owner: dict | None, old: bool = False, staged: bool = True) -> Path:
    """A temporary folder as a run that died would leave it."""
    box = tmp_path / f".{out.name}.kpmerge-{len(list(tmp_path.iterdir()))}x"
    box.mkdir()
    if staged:
        (box / publish.STAGED).mkdir()
        (box / publish.STAGED / "a.json").write_text("half")
    if old:
        (box / publish.OLD).mkdir()
        (box / publish.OLD / "a.json").write_text("previous")
    if owner is not None:
        owner = {**publish._owner(out), **owner}
        (box / publish.OWNER).write_text(json.dumps(owner))
    return box


def _me() -> dict:
    return {"pid": os.getpid(), "started": publish._start_time(os.getpid())}


@pytest.mark.parametrize(
    ("owner", "removed"),
    [
        ({"pid": "dead"}, True),
        ({"boot": "another-boot"}, True),  # the machine restarted since
        ({"pid": "mine", "started": -1}, True),  # a live process, but not the one that wrote it
        ({"pid": "mine"}, False),  # this run itself: alive
        ({"pid": "dead", "host": "another-host"}, False),  # cannot check another machine's processes
        ({"pid": "dead", "pidns": "pid:[1]"}, False),  # another container: its pids are not ours
        ({"pid": "dead", "pidns": None}, False),  # a marker without the namespace: cannot tell
        ({"pid": "dead", "out": "OTHER"}, False),  # another output's folder
        ({"pid": "dead", "kpmerge_temporary": 99}, False),
        (None, False),  # no marker: never by name alone
    ],
    ids=[
        "dead",
        "rebooted",
        "pid_reused",
        "alive",
        "other_host",
        "other_pid_namespace",
        "no_pid_namespace",
        "other_output",
        "unknown_marker",
        "no_marker",
    ],
)
def test_leftovers_of_dead_runs_are_removed_and_others_left(tmp_path, owner, removed):
    out = tmp_path / "OUT"
    if owner is not None:
        if owner.get("pid") == "dead":
            owner = {**owner, "pid": _dead_pid()}
        elif owner.get("pid") == "mine":
            owner = {**_me(), **owner, "pid": os.getpid()}
        if owner.get("boot") == "another-boot" and publish._boot_id() is None:
            pytest.skip("no boot id here")
        if "pidns" in owner and publish._pid_namespace() is None:
            pytest.skip("no pid namespaces here")
    box = _box(tmp_path, out, owner)
    assert remove_leftovers(out) == ([box] if removed else [])
    assert box.exists() is not removed


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="no user ids")
def test_leftovers_of_another_user_are_left(tmp_path, monkeypatch):
    out = tmp_path / "OUT"
    box = _box(tmp_path, out, {"pid": _dead_pid()})
    uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    assert remove_leftovers(out) == []
    assert box.exists()


def test_a_crash_between_the_two_moves_is_repaired_by_the_next_run(tmp_path, how):
    # Without renameat2, --force moves the old folder aside first; a run killed right then leaves OUT
    # missing. The next run to OUT moves the old copy back before anything else.
    out = tmp_path / "OUT"
    _box(tmp_path, out, {"pid": _dead_pid()}, old=True)
    with pytest.raises(UsageError, match="output exists"):
        check_output(out)
    assert _tree(out) == {"a.json": b"previous"}
    assert _leftovers(tmp_path) == []


def test_a_crash_after_publishing_deletes_the_old_copy(tmp_path):
    out = tmp_path / "OUT"
    box = _box(tmp_path, out, None, old=True)
    os.rename(box / publish.STAGED, out)  # that run had published
    owner = {**publish._owner(out), "pid": _dead_pid(), "staged": publish._identity(out)}
    (box / publish.OWNER).write_text(json.dumps(owner))
    assert remove_leftovers(out) == [box]
    assert _tree(out) == {"a.json": b"half"} and _leftovers(tmp_path) == []


def test_an_old_copy_is_kept_when_something_else_took_its_place(tmp_path):
    out = tmp_path / "OUT"
    box = _box(tmp_path, out, {"pid": _dead_pid()}, old=True)
    out.mkdir()
    assert remove_leftovers(out) == []
    assert (box / publish.OLD / "a.json").read_text() == "previous"


def test_an_empty_claim_of_a_dead_run_is_removed(tmp_path):
    out = tmp_path / "OUT"
    out.mkdir()
    _box(tmp_path, out, {"pid": _dead_pid(), "claim": publish._identity(out)})
    check_output(out)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_the_owner_marker_names_this_run(tmp_path):
    with Staging(tmp_path / "OUT") as stage:
        owner = json.loads((stage.box / publish.OWNER).read_text())
        staged = publish._identity(stage.path)
        assert remove_leftovers(tmp_path / "OUT") == []  # alive
    assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
    assert owner["out"] == "OUT" and owner["staged"] == staged
    assert _leftovers(tmp_path) == []


# --- outputs inside inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "inputs", "message", "images"),
    [
        ("a/b.json", ["a/b.json"], "the output is the input a/b.json", []),
        ("a", ["a/b.json"], "the output holds the input a/b.json", []),
        ("a/plan", ["a"], "the output lies inside the input a", []),
        ("a/x/../b.json", ["a/b.json"], "the output is the input a/b.json", []),
        ("c", ["a/b.json", None, "a"], None, []),
        ("a2", ["a"], None, []),
        ("a/plan", [], None, ["a"]),  # inside an image folder: allowed
        ("a", [], "the output is the input a", ["a"]),
        ("a", [], "the output holds the input a/x", ["a/x"]),
    ],
)
def test_check_outside_inputs(tmp_path, monkeypatch, output, inputs, message, images):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a" / "x").mkdir(parents=True)
    if message is None:
        check_outside_inputs(output, inputs, images)
        return
    with pytest.raises(UsageError) as info:
        check_outside_inputs(output, inputs, images)
    assert str(info.value) == f"{output}: {message}; choose another"
