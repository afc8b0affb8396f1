"""Quiet, checked imports of the OSRL / DSRL / FSRL stack.

dsrl prints a Gym deprecation banner and swallows ImportErrors of its environment families (it only
prints them); osrl prints a notice about CDT. We import them once here, keep the noise out of the
user's terminal, and turn a swallowed failure into an error that says how to fix it.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
import warnings
from functools import cache
from types import ModuleType

PATCH_HINT = (
    "safety-gymnasium 0.4.0 needs a one-time fix to import on Python 3.11: "
    "run `python -m osrl_unlearn.patch_safety_gymnasium` (the Makefile does this)."
)


@contextlib.contextmanager
def _quiet():
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()) as err,
    ):
        warnings.simplefilter("ignore")
        yield err


class _SilenceFd:
    """Bullet-Safety-Gym's ``RedirectStream``, on the real file descriptor.

    Bullet hides pybullet's banners by pointing the descriptor of ``sys.stdout`` / ``sys.stderr``
    at /dev/null and flushing the C stream found by the Python stream's *name*. Both fail when those
    streams are replaced (pytest's capture, Jupyter, our own quiet imports): this works on fd 1 / 2.
    """

    def __init__(self, stream=None, file=os.devnull):
        self.fd = 2 if stream is sys.stderr or stream is sys.__stderr__ else 1
        self.file = file

    def __enter__(self):
        ctypes.CDLL(None).fflush(None)  # fflush(NULL): every C output stream
        self.saved = os.dup(self.fd)
        target = os.open(self.file, os.O_WRONLY)
        os.dup2(target, self.fd)
        os.close(target)

    def __exit__(self, *exc):
        ctypes.CDLL(None).fflush(None)
        os.dup2(self.saved, self.fd)
        os.close(self.saved)


def _import_bullet() -> None:
    """Imports Bullet-Safety-Gym's builder, then makes its output redirection robust."""
    saved = sys.stderr
    sys.stderr = sys.__stderr__ or saved  # it redirects at import time too
    try:
        from bullet_safety_gym.envs import builder
    finally:
        sys.stderr = saved
    builder.RedirectStream = _SilenceFd


@cache
def import_dsrl() -> ModuleType:
    """Imports dsrl (registering its Offline* gymnasium ids); raises if an env family failed."""
    os.environ.setdefault("DSRL_SUPPRESS_IMPORT_ERROR", "1")
    _import_bullet()
    with _quiet():
        import dsrl
        import dsrl.infos  # noqa: F401
    try:
        with _quiet():
            import dsrl.offline_bullet_safety_gym  # noqa: F401
            import dsrl.offline_safety_gymnasium  # noqa: F401
    except ValueError as exc:  # the Python 3.11 dataclass error of safety-gymnasium
        raise ImportError(f"dsrl could not import safety-gymnasium ({exc}). {PATCH_HINT}") from exc
    return dsrl


@cache
def import_osrl_algorithms() -> ModuleType:
    """Imports ``osrl.algorithms`` without its CDT notice."""
    with _quiet():
        import osrl.algorithms
    return osrl.algorithms


@cache
def import_fsrl() -> ModuleType:
    """Imports fsrl (and through it tianshou and wandb) without their deprecation noise."""
    with _quiet():
        import fsrl.agent
        import fsrl.data
        import fsrl.trainer  # noqa: F401
    warnings.filterwarnings("ignore", module="wandb")
    return fsrl


def check_stack() -> None:
    """Fails loudly if the pinned stack is not importable as installed; used by `make setup`."""
    import numpy
    import torch

    if not numpy.__version__.startswith("1."):
        raise RuntimeError(
            f"numpy {numpy.__version__} breaks tianshou 0.5.1: install numpy==1.26.4"
        )
    import_dsrl()
    import_osrl_algorithms()
    import_fsrl()
    print(f"stack ok: torch {torch.__version__}, numpy {numpy.__version__}, dsrl, osrl, fsrl")
