"""Make safety-gymnasium 0.4.0 importable on Python 3.11 (idempotent).

Why: safety-gymnasium declares dataclass fields with numpy-array defaults, e.g.
``color: np.array = COLOR['apple']``. Since Python 3.11, ``dataclasses`` rejects any unhashable
default (``ValueError: mutable default <class 'numpy.ndarray'> for field color is not allowed``), so
``import safety_gymnasium`` fails, and with it ``import dsrl`` (dsrl only catches ImportError).
No released safety-gymnasium that dsrl 0.1.0 can use fixes this (1.0.0 renamed the module dsrl
imports), so the project rewrites those fields in the installed package to
``color: np.array = field(default_factory=lambda: COLOR['apple'])``, which is what upstream did later.
Scalar defaults such as ``alpha: float = COLOR['hazard'][-1]`` are hashable and stay as they are.

Run ``python -m osrl_unlearn.patch_safety_gymnasium``; running it again changes nothing.
This is the only place the fix lives: the Makefile calls it after installing the pinned stack.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

# `    color: np.array = COLOR['apple']` -> group 1: indent + name + annotation, group 2: default.
ARRAY_FIELD = re.compile(r"^(\s+\w+:\s*np\.(?:array|ndarray)\s*=\s*)(COLOR\[[^\]]+\])\s*$")
DATACLASS_IMPORT = re.compile(r"^from dataclasses import (.+)$", re.MULTILINE)


def patch_source(source: str) -> str:
    """Returns ``source`` with every numpy-array dataclass default wrapped in a default factory."""
    lines = source.splitlines(keepends=True)
    changed = False
    for i, line in enumerate(lines):
        match = ARRAY_FIELD.match(line.rstrip("\n"))
        if match:
            lines[i] = f"{match.group(1)}field(default_factory=lambda: {match.group(2)})\n"
            changed = True
    if not changed:
        return source
    patched = "".join(lines)
    imports = DATACLASS_IMPORT.search(patched)
    if imports is None:
        raise RuntimeError("patched a dataclass field in a file that does not import dataclasses")
    names = [name.strip() for name in imports.group(1).split(",")]
    if "field" not in names:
        new_import = f"from dataclasses import {', '.join(names + ['field'])}"
        patched = patched[: imports.start()] + new_import + patched[imports.end() :]
    return patched


def package_dir() -> Path | None:
    """The installed safety_gymnasium folder, found without importing it (importing fails)."""
    spec = importlib.util.find_spec("safety_gymnasium")
    if spec is None or spec.submodule_search_locations is None:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def patch_package(root: Path) -> list[Path]:
    """Patches every module under ``root`` in place; returns the files that changed."""
    changed = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text()
        patched = patch_source(source)
        if patched != source:
            tmp = path.with_suffix(".py.tmp")
            tmp.write_text(patched)
            tmp.replace(path)
            changed.append(path)
    return changed


def main() -> int:
    root = package_dir()
    if root is None:
        print("safety-gymnasium is not installed: nothing to patch (Bullet tasks still work).")
        return 0
    changed = patch_package(root)
    if changed:
        print(f"patched {len(changed)} safety-gymnasium files for Python 3.11 in {root}")
    else:
        print("safety-gymnasium already patched for Python 3.11")
    return 0


if __name__ == "__main__":
    sys.exit(main())
