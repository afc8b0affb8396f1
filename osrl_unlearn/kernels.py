"""Pins the CPU code paths of torch's kernels: torch's share of why data differs between CPUs.

torch picks its vectorised ATen kernels (AVX2 or AVX-512) and MKL its matrix-multiply branch by
the CPU it runs on, and the branches round differently: on one machine a small float32 network
gave four different outputs under the default, ``ATEN_CPU_CAPABILITY=default``,
``MKL_CBWR=COMPATIBLE`` and both (docs/data.md). Datasets made from learnt policies (a DAgger
clone, a PPO adversary) then differ from one CPU to the next, and a benchmark grid spread over
sessions on different machines cannot pool its results (``benchmark.provenance`` refuses to).
Pinning both to their AVX2 branch, which every x86 CPU of the last decade has, takes the choice
away from the CPU. For ATen that settles it; MKL promises the same bits from its AVX2 branch on
Intel CPUs, and whether an AMD CPU's match them is for a grid resumed across machines to show.
The physics engines' own floating-point paths are not ours to pin (scripted CarCircle data
differed between machines too). Both variables are read when the first kernel runs, so setting
them at import of this package works even after ``import torch``; a user's own setting of either
is kept.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import MutableMapping, Optional

PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
"""The variables and the branch they pin (ATen's names are lower case, MKL's upper)."""


def cpu_has_avx2(cpuinfo: Optional[str] = None) -> bool:
    """Whether the CPU reports AVX2 (``cpuinfo``: the text of /proc/cpuinfo; read when None).
    False off x86 Linux, where there is nothing to pin."""
    if cpuinfo is None:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            return False
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    return any(
        line.startswith("flags") and "avx2" in line.split(":", 1)[-1].split()
        for line in cpuinfo.splitlines()
    )


def pin_cpu_kernels(
    environ: MutableMapping[str, str] = os.environ, cpuinfo: Optional[str] = None
) -> dict[str, str]:
    """Sets :data:`PINNED` in ``environ`` where the CPU has AVX2 and the variable is unset;
    returns what it set."""
    if not cpu_has_avx2(cpuinfo):
        return {}
    chosen = {name: value for name, value in PINNED.items() if name not in environ}
    environ.update(chosen)
    return chosen
