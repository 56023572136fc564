"""Output paths: the checks before a run, temporary folders beside the output, and publishing.

An output (a folder, or one file for `project`) is made in a temporary folder beside it and then moved
into place in one step. Without `force` that step never replaces anything that is at the output path at
that moment; with `force` it swaps the new output in so that the path always holds the old or the new.

How, by system:

- Linux: `renameat2(RENAME_NOREPLACE)` without `force` (fails if anything is there), and
  `renameat2(RENAME_EXCHANGE)` with it (the two swap in one step; the old copy is then deleted).
- Elsewhere, or where the file system refuses those flags (EINVAL, ENOSYS, ENOTSUP: NFS, old kernels):
  without `force` a folder is first claimed by creating the output folder (`mkdir` fails if anything is
  there, so of two runs exactly one gets it) and the new folder is renamed onto that empty claim; a
  file is linked into place (`link` never replaces). On Windows a rename never replaces. With `force`
  the old folder is moved into the temporary folder first and the new one renamed into place; a failure
  between the two moves them back, and a crash between the two (power loss, SIGKILL) is repaired by the
  next run to the same output, which moves the old copy back when nothing else took its place.

Every temporary folder holds `owner.json`: the process id, host, boot id, process id namespace and
process start time of the run that made it. A run removes the temporary folders of its output that
belong to its user and whose run certainly ended (same host, and another boot, or, in the same process
id namespace, no process with that id or one that started at another time); it never removes one by
its name alone, nor one whose owner it cannot check (another host, another process id namespace, such
as another container sharing the host name and kernel, or no way to tell whether the process id was
reused).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from .errors import KpmergeError, UsageError
from .interrupts import check_stop

OWNER = "owner.json"
"""The marker in each temporary folder: who made it (see `Staging`)."""
STAGED = "out"
"""The new output inside a temporary folder."""
OLD = "old"
"""Where the previous output waits while it is replaced without `renameat2`."""
OWNER_VERSION = 1

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM}


def check_outside_inputs(
    output: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str] | None],
    image_folders: Iterable[str | os.PathLike[str] | None] = (),
) -> None:
    """UsageError when the output is an input, holds one, or lies inside one (writing it would replace
    or change that input). An output may lie inside one of the `image_folders` (that changes no image)
    but may not be or hold one."""
    out = Path(output).resolve()
    checks = [(p, False) for p in inputs] + [(p, True) for p in image_folders]
    for given, inside_ok in checks:
        if given is None:
            continue
        inp = Path(given).resolve()
        if out == inp:
            where = "is"
        elif out in inp.parents:
            where = "holds"
        elif inp in out.parents and not inside_ok:
            where = "lies inside"
        else:
            continue
        raise UsageError(f"the output {where} the input {given}; choose another", file=output)


def check_output(out: str | os.PathLike[str], force: bool = False, folder: bool = True) -> Path:
    """The output path, after removing what dead runs left beside it; UsageError when it exists
    without `force`, is of the wrong kind, or cannot be written."""
    path = Path(out)
    remove_leftovers(path)
    if folder and path.exists() and not path.is_dir():  # the real problem first, with or without --force
        raise UsageError("output exists and is not a folder", file=path)
    if not folder and path.is_dir():
        raise UsageError("output is a folder; give a file name", file=path)
    if os.path.lexists(path) and not force:
        raise UsageError("output exists (use --force to replace it)", file=path)
    parent = path.absolute().parent
    if not parent.is_dir():
        raise UsageError("the folder to hold the output does not exist", file=parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError("cannot write into this folder", file=parent)
    return path


class Staging:
    """A temporary folder beside `out` whose `path` (a folder, or a file to write) becomes `out`.

    Use it as a context manager: `publish()` moves `path` into place; leaving the block removes the
    temporary folder (with the previous output, once replaced), whatever happened.

    `published` turns True once `out` is the new output (also when an interrupt came right after the
    move); `record`, when given, gets `out` appended then, so that a caller several calls up (the CLI)
    can tell after an interrupt whether the output was complete.
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        force: bool = False,
        folder: bool = True,
        record: list[Path] | None = None,
    ) -> None:
        self.out = Path(out)
        self.force = force
        self.folder = folder
        self.record = record
        self.published = False
        self.box = Path()
        self.path = Path()
        self.owner: dict[str, object] = {}

    def __enter__(self) -> Staging:
        parent = self.out.absolute().parent
        # The name is chosen before the folder is made, so that an interrupt at any point can remove it.
        try:
            while True:
                self.box = parent / f"{_prefix(self.out)}{secrets.token_hex(8)}"
                with contextlib.suppress(FileExistsError):
                    os.mkdir(self.box, 0o700)
                    break
        except OSError as exc:
            raise UsageError(f"cannot write into this folder: {exc.strerror or exc}", file=parent) from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.rmdir(self.box)  # ours is still empty; another run's never is
            raise
        try:
            self.path = self.box / STAGED
            if self.folder:
                os.mkdir(self.path)  # the mode follows the umask (the box's is 0700)
            self.owner = {**_owner(self.out), "staged": _identity(self.path)}
            _write_owner(self.box, self.owner)
        except BaseException:
            _remove(self.box)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            _remove(self.box)
        except KeyboardInterrupt:  # an interrupt during the removal: finish it, then stop
            _remove(self.box)
            raise

    def publish(self) -> Path:
        """Move the new output into place (see the module docs); UsageError when something is at
        `out` without `force`; `Interrupted` when a stop signal came but did not stop the run (see
        `kpmerge.interrupts.check_stop`): then nothing is published."""
        check_stop()
        ident = _identity(self.path)
        try:
            if self.force:
                self._replace()
            else:
                self._move_new(self.path)
            self._published()
        except BaseException as exc:
            if ident is not None and _identity(self.out) == ident and not self.published:
                self._published()  # moved just before the interrupt
            if not self.force and (
                isinstance(exc, FileExistsError | NotADirectoryError | IsADirectoryError)
                or (isinstance(exc, OSError) and exc.errno == errno.ENOTEMPTY)
            ):
                raise UsageError("output exists (use --force to replace it)", file=self.out) from None
            raise
        return self.out

    def _published(self) -> None:
        self.published = True
        if self.record is not None:
            self.record.append(self.out)

    def _move_new(self, src: Path) -> None:
        """Move `src` to `out`; FileExistsError (or ENOTEMPTY) when anything is there."""
        if _rename2(src, self.out, _RENAME_NOREPLACE):
            return
        if os.name == "nt":  # a rename on Windows never replaces
            os.rename(src, self.out)
        elif src.is_dir():
            os.mkdir(self.out)  # the claim: exactly one of several runs makes it
            claim = _identity(self.out)
            _write_owner(self.box, {**self.owner, "claim": claim})
            try:
                os.rename(src, self.out)  # replaces an empty folder: our own claim
            except BaseException:
                _remove_claim(self.out, claim)
                raise
        else:
            try:
                os.link(src, self.out)  # a link never replaces
            except FileExistsError:
                raise
            except OSError:  # no hard links on this file system
                if os.path.lexists(self.out):
                    raise FileExistsError(errno.EEXIST, "File exists", str(self.out)) from None
                os.rename(src, self.out)
                return
            os.unlink(src)

    def _replace(self) -> None:
        src = self.path
        for _ in range(3):  # `out` may come and go between the tries
            try:
                if not _rename2(src, self.out, _RENAME_EXCHANGE):
                    break  # not on this system or file system
                return  # the old output is now at `src`, removed with the box
            except FileNotFoundError:
                pass
            with contextlib.suppress(FileExistsError):
                self._move_new(src)
                return
        if not self.folder:
            os.replace(src, self.out)
            return
        old = self.box / OLD
        try:
            os.rename(self.out, old)
        except FileNotFoundError:
            self._move_new(src)
            return
        try:
            os.rename(src, self.out)
        except BaseException:
            _restore(old, self.out)
            raise


def write_file(
    data: bytes, path: str | Path, force: bool = False, published: list[Path] | None = None
) -> Path:
    """Write one file atomically: into a temporary folder beside it, then one move (see `publish`);
    `published` gets `path` appended once it is in place."""
    target = check_output(path, force, folder=False)
    with Staging(target, force, folder=False, record=published) as stage:
        try:
            stage.path.write_bytes(data)
            stage.publish()
        except OSError as exc:
            raise as_write_error(exc, target) from None
    return target


def remove_leftovers(out: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary folders of `out` whose run certainly ended (see the module docs), first
    moving back a previous output that such a run had moved aside; returns the folders removed."""
    path = Path(out)
    parent = path.absolute().parent
    prefix = _prefix(path)
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(prefix)]
    except OSError:
        return []
    removed = []
    for entry in entries:
        box = Path(entry.path)
        if not entry.is_dir(follow_symlinks=False) or not _ours(entry):
            continue
        owner = _read_owner(box)
        if owner is None or owner.get("out") != path.name or not _owner_ended(owner):
            continue
        old = box / OLD
        if os.path.lexists(old):
            if not os.path.lexists(path):
                with contextlib.suppress(OSError):
                    _restore(old, path)
            if os.path.lexists(old) and _identity(path) != owner.get("staged"):
                continue  # neither back in place nor replaced by that run's output: keep it for the user
        with contextlib.suppress(OSError):
            claim = owner.get("claim")
            if isinstance(claim, list):
                _remove_claim(path, claim)
        _remove(box)
        removed.append(box)
    return removed


def _ours(entry: os.DirEntry[str]) -> bool:
    """Whether this process's user owns the folder (another user's run is never judged from here)."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows: no user ids
        return True
    try:
        return entry.stat(follow_symlinks=False).st_uid == getuid()
    except OSError:
        return False


def _prefix(out: Path) -> str:
    return f".{out.name}.kpmerge-"


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc < 2.28, or a libc without it
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _rename2(src: Path, dst: Path, flags: int) -> bool:
    """`renameat2(src, dst, flags)`; False when this system or file system cannot do it."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def _restore(old: Path, out: Path) -> None:
    """Move a previous output back to `out` where nothing took its place."""
    if _rename2(old, out, _RENAME_NOREPLACE):
        return
    if not os.path.lexists(out):
        os.rename(old, out)


def _remove_claim(out: Path, claim: list[int] | None) -> None:
    """Remove the empty folder a run made at `out` to claim it, if it is still that folder and empty."""
    if claim is not None and _identity(out) == claim:
        with contextlib.suppress(OSError):
            os.rmdir(out)


def _identity(path: Path) -> list[int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _owner(out: Path) -> dict[str, object]:
    return {
        "kpmerge_temporary": OWNER_VERSION,
        "out": out.name,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "boot": _boot_id(),
        "pidns": _pid_namespace(),
        "started": _start_time(os.getpid()),
    }


def _write_owner(box: Path, owner: dict[str, object]) -> None:
    part = box / (OWNER + ".part")
    part.write_bytes(json.dumps(owner).encode("utf-8"))
    os.replace(part, box / OWNER)


def _read_owner(box: Path) -> dict[str, object] | None:
    try:
        owner = json.loads((box / OWNER).read_bytes())
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) and owner.get("kpmerge_temporary") == OWNER_VERSION else None


def _owner_ended(owner: dict[str, object]) -> bool:
    """True only when the run that wrote `owner` certainly ended."""
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    boot = _boot_id()
    if boot is not None and owner.get("boot") is not None and owner.get("boot") != boot:
        return True  # the machine restarted since
    if owner.get("pidns") != _pid_namespace():  # its process ids are not ours to probe
        return False
    if os.name == "nt":  # no safe probe: os.kill would end the process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive (another user's), or unknown
        return False
    started, recorded = _start_time(pid), owner.get("started")
    return started is not None and recorded is not None and started != recorded  # the id was reused


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _pid_namespace() -> str | None:
    """This process's pid namespace (`pid:[inode]`, Linux), else None."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except (OSError, AttributeError):
        return None


def _start_time(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    try:  # the command name (field 2) may hold spaces and parentheses: count from its end
        return int(stat[stat.rindex(b")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


def as_write_error(exc: OSError, path: Path) -> KpmergeError:
    """The one error line for a failed write of `path`."""
    return KpmergeError(f"cannot write output: {exc.strerror or exc}", file=path)
