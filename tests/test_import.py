"""kpmerge imports where POSIX-only modules do not exist (Windows): none is imported at module level."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kpmerge.layouts import builtin_layout_names

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


LAYOUT_CODE = """
try:
    from kpmerge.build import combine  # noqa: F401
    from kpmerge.layouts import builtin_layout, builtin_layout_names
except ImportError:
    print("no editable install")
else:
    print(len([builtin_layout(name) for name in builtin_layout_names()]))
"""


def test_builtin_layouts_load_when_a_folder_named_kpmerge_shadows_the_package(tmp_path):
    # Run from the folder holding a clone named kpmerge: `kpmerge` is then a namespace package (the clone)
    # and importlib.resources gives a MultiplexedPath, whose joinpath takes one name only (Python 3.11).
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "kpmerge").symlink_to(root, target_is_directory=True)
    result = subprocess.run(
        [sys.executable, "-c", LAYOUT_CODE], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    if result.stdout == "no editable install\n":
        pytest.skip("kpmerge is not installed in editable mode: the shadowing clone hides it")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(builtin_layout_names())
