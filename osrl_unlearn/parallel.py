"""Run independent jobs over worker processes with one shared progress bar."""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing as mp
import os
import queue
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.managers import SyncManager
from typing import Any, TypeVar

from tqdm.auto import tqdm

Job = TypeVar("Job")
Progress = Callable[[int], None]


def run_jobs(
    fn: Callable[[Job, Progress], Any],
    jobs: Sequence[Job],
    *,
    workers: int,
    total: int,
    desc: str,
    unit: str = "it",
    show_progress: bool = True,
) -> list[Any]:
    """Calls ``fn(job, progress)`` for every job; returns the results in job order.

    ``fn`` reports work done by calling ``progress(n)``; the bar sums it over all jobs. With one
    worker the jobs run in this process (no start-up cost, easy to debug); otherwise in ``spawn``ed
    processes, so ``fn`` and jobs must be picklable. Either way a job runs on one torch thread.
    Worker processes die with this one (:func:`die_with_parent`), even when it is killed.
    """
    bar = tqdm(total=total, desc=desc, unit=unit, disable=not show_progress, dynamic_ncols=True)
    try:
        if workers <= 1 or len(jobs) <= 1:
            import torch

            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return [fn(job, bar.update) for job in jobs]
            finally:
                torch.set_num_threads(threads)
        context = mp.get_context("spawn")
        manager = SyncManager(ctx=context)
        manager.start(die_with_parent, (os.getpid(),))
        with (
            manager,
            ProcessPoolExecutor(
                max_workers=min(workers, len(jobs)),
                mp_context=context,
                initializer=die_with_parent,
                initargs=(os.getpid(),),
            ) as pool,
        ):
            ticks = manager.Queue()
            futures = [pool.submit(_call, fn, job, ticks) for job in jobs]
            while not all(future.done() for future in futures):
                _drain(ticks, bar, timeout=0.25)
            _drain(ticks, bar, timeout=0.0)
            return [future.result() for future in futures]
    finally:
        bar.close()


PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal the kernel sends this process when its parent dies."""


def die_with_parent(parent: int) -> None:
    """Makes this worker die when the process that started it dies, even by ``kill -9``.

    Linux only (``prctl(PR_SET_PDEATHSIG, SIGKILL)``); elsewhere a no-op. Pass the parent's pid:
    a parent that died before the call is noticed too.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # orphaned before the call took effect
        os._exit(1)


def _call(fn: Callable[[Any, Progress], Any], job: Any, ticks: Any) -> Any:
    import torch

    from osrl_unlearn.stack import import_dsrl, import_fsrl

    torch.set_num_threads(1)  # one core per worker
    import_dsrl()  # before anything else imports gym / wandb loudly
    import_fsrl()
    return fn(job, ticks.put)


def _drain(ticks: Any, bar: tqdm, timeout: float) -> None:
    try:
        bar.update(ticks.get(timeout=timeout) if timeout else ticks.get_nowait())
        while True:
            bar.update(ticks.get_nowait())
    except queue.Empty:
        pass
