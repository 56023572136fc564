"""Stop signals: SIGINT, SIGTERM and SIGHUP end a run cleanly, with an exit code that says what happened
to the output.

The `kpmerge` command installs `on_stop_signal` (see `handle_stop_signals`); the library only asks
`check_stop` before it publishes an output, which does nothing unless that handler recorded a signal that
did not stop the run (its `Interrupted` was raised inside a `__del__` or a weakref callback, where Python
prints "Exception ignored" and carries on).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived (raised by `on_stop_signal`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass
class StopState:
    """What the stop-signal handler has seen in this process."""

    seen: list[int] = field(default_factory=list)
    """Every stop signal received, in order."""
    pending: int | None = None
    """The signal that stops the run, recorded before its `Interrupted` is raised."""
    swallowed: bool = False
    """That `Interrupted` was dropped by Python (raised in a `__del__` or a weakref callback)."""
    ignored: int = 0
    """Signals received while the run was already stopping."""
    decided: bool = False
    """The command's exit code is settled: later signals change nothing."""


_STOP = StopState()


def on_stop_signal(signum: int, frame: object) -> None:
    """The handler of the stop signals: the first raises `Interrupted` in the main thread, so the
    temporary folder is removed and the exit code says what happened to the output; a second one is
    ignored while that clean-up runs (it is short), a third ends the process at once. Once the command
    has finished (its exit code is settled), they are ignored. When the first one's `Interrupted` was
    swallowed, the next signal raises it again."""
    stop = _STOP
    if stop.decided:
        return
    stop.seen.append(signum)
    if stop.pending is None:
        stop.pending = signum  # recorded first: `check_stop` finds it if the exception gets lost
        raise Interrupted(signum)
    if stop.swallowed:
        stop.swallowed = False
        raise Interrupted(stop.pending)
    stop.ignored += 1
    if stop.ignored >= 2:
        os._exit(128 + stop.pending)


def check_stop() -> None:
    """Raise `Interrupted` again when a stop signal was received but its exception never stopped the
    run (see the module docs); called before an output is published and when a command ends."""
    stop = _STOP
    if stop.pending is not None and not stop.decided:
        stop.swallowed = False
        raise Interrupted(stop.pending)


def settle() -> None:
    """The command's exit code is decided (its interrupt, if any, was acted upon): later signals are
    ignored."""
    _STOP.decided = True


def _unraisable_hook(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            _STOP.swallowed = True  # no "Exception ignored" noise: `check_stop` stops the run
            return
        previous(unraisable)

    return hook


def handle_stop_signals() -> list[int]:
    """Install `on_stop_signal` for SIGINT, SIGTERM and SIGHUP, and note an `Interrupted` Python drops.
    Signals the process was started to ignore (`nohup`, background jobs) stay ignored. Returns the
    signals handled."""
    installed = []
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, on_stop_signal)
            installed.append(signum)
    sys.unraisablehook = _unraisable_hook(sys.unraisablehook)
    return installed


def interrupt_exit(signum: int, written: tuple[Path, ...]) -> tuple[int, str]:
    """The exit code and message of a run stopped by signal `signum`: 0 when it had already written its
    output (`written`: then the output is complete), else 128 + the signal number (130 for SIGINT, 143
    for SIGTERM, 129 for SIGHUP), with nothing written and a previous output untouched."""
    name = signal.Signals(signum).name
    if written:
        return 0, f"kpmerge: {name} after the output was written; {written[-1]} is complete"
    return 128 + signum, f"interrupted by {name}; nothing was written"
