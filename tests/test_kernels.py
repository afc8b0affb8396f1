"""The CPU kernel pin (osrl_unlearn.kernels): set at import, never over a user's own setting."""

import os
import subprocess
import sys

import pytest

from osrl_unlearn.kernels import PINNED, cpu_has_avx2, pin_cpu_kernels

AVX2_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
OLD_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx avx512f\n"


def test_avx2_is_read_from_the_flags_line_only():
    assert cpu_has_avx2(AVX2_CPU)
    assert not cpu_has_avx2(OLD_CPU)
    assert not cpu_has_avx2("model name\t: avx2 in a name\nflags\t\t: sse2\n")


def test_pin_sets_both_variables_where_unset():
    environ = {}
    assert pin_cpu_kernels(environ, AVX2_CPU) == PINNED
    assert environ == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}


def test_pin_keeps_a_users_setting_and_skips_cpus_without_avx2():
    environ = {"ATEN_CPU_CAPABILITY": "default"}
    assert pin_cpu_kernels(environ, AVX2_CPU) == {"MKL_CBWR": "AVX2"}
    assert environ["ATEN_CPU_CAPABILITY"] == "default"
    untouched = {}
    assert pin_cpu_kernels(untouched, OLD_CPU) == {} and untouched == {}


def _capability_after_import(**env) -> str:
    """torch's kernel branch in a fresh interpreter that imports torch, then the package."""
    clean = {k: v for k, v in os.environ.items() if k not in PINNED}
    code = ("import os, torch, osrl_unlearn; torch.ones(3).exp(); "
            "print(os.environ['MKL_CBWR'], torch.backends.cpu.get_cpu_capability())")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


@pytest.mark.skipif(not cpu_has_avx2(), reason="the pin applies to x86 CPUs with AVX2")
def test_importing_the_package_pins_torchs_kernels_even_after_torch():
    # on an AVX-512 CPU the first line is the pin at work; on an AVX2 one, the second is
    assert _capability_after_import() == "AVX2 AVX2"
    assert _capability_after_import(ATEN_CPU_CAPABILITY="default", MKL_CBWR="COMPATIBLE") == (
        "COMPATIBLE DEFAULT"
    )
