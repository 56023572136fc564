"""kpmerge imports where POSIX-only modules do not exist (Windows): none is imported at module level."""

from __future__ import annotations

import subprocess
import sys

POSIX_ONLY = ("fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "syslog")

CODE = f"""
import sys, pkgutil, importlib
for name in {POSIX_ONLY!r}:
    sys.modules[name] = None  # importing it now raises ImportError
import kpmerge
for info in pkgutil.walk_packages(kpmerge.__path__, "kpmerge."):
    if info.name != "kpmerge.__main__":
        importlib.import_module(info.name)
print("ok")
"""


def test_every_module_imports_without_posix_only_modules():
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
