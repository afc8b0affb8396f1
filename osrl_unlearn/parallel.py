"""Run independent jobs over worker processes with one shared progress bar."""

from __future__ import annotations

import multiprocessing as mp
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
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
        with (
            context.Manager() as manager,
            ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool,
        ):
            ticks = manager.Queue()
            futures = [pool.submit(_call, fn, job, ticks) for job in jobs]
            while not all(future.done() for future in futures):
                _drain(ticks, bar, timeout=0.25)
            _drain(ticks, bar, timeout=0.0)
            return [future.result() for future in futures]
    finally:
        bar.close()


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
