"""The loop every repair method runs in, written once.

``run_training`` owns what is common to all of them: drawing the batches in order, checking each,
one step per batch, applying the step's updates (zero_grad, backward, optimizer steps:
:func:`~osrl_unlearn.fast.updates.run_updates`), gathering the step's metrics (and forwarding
them to a logger), checking them finite, the callback that may stop the run, the progress bar,
the wall time and the history. A method supplies only its step: an object whose
``updates(*batch)`` yields its losses as :class:`~osrl_unlearn.fast.updates.Update` objects and
stores its metrics in the logger it is given (the agent's training step for ``finetune``,
``retrain``, ``relabel`` and ``trajdeleter``; :class:`~osrl_unlearn.unlearn.loop.SafeRuleStep` for
Safe-RULE and the baselines built on its loop). Only OSRL's own trainer (``trainer="osrl"``)
applies its updates itself: it is OSRL's code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from tqdm.auto import tqdm

from osrl_unlearn.fast.updates import run_updates
from osrl_unlearn.trainers import make_trainer
from osrl_unlearn.unlearn.base import Batch, Logger, UnlearningHistory


class _StepRecorder:
    """The logger OSRL's trainer writes to: gathers each step's metrics, forwards them."""

    def __init__(self, forward: Logger | None) -> None:
        self.forward = forward
        self.current: dict[str, float] = {}

    def store(self, **metrics: Any) -> None:
        self.current.update({key: float(value) for key, value in metrics.items()})
        if self.forward is not None:
            self.forward.store(**metrics)

    def take(self) -> dict[str, float]:
        metrics, self.current = self.current, {}
        return metrics


def adopt(agent: torch.nn.Module, source: torch.nn.Module) -> None:
    """Gives ``agent`` everything of ``source``, an agent of the same class and arguments: its
    weights and what OSRL keeps outside the state dict (BEAR's log_alpha and step counter,
    COptiDICE's lambda and tau, BCQ-Lag's and BEAR-Lag's PID controller), so that training on
    continues from ``source``'s state."""
    agent.load_state_dict(source.state_dict())
    for name, value in vars(source).items():
        if not name.startswith("_") and name != "training":
            setattr(agent, name, value)


def run_training(
    agent: torch.nn.Module,
    model: torch.nn.Module,
    batches: Iterable[Batch],
    steps: int,
    *,
    method: str,
    finite_checked: bool = False,
    check: Callable[..., None] | None = None,
    learning_rate: float | None = None,
    trainer: str = "fast",
    step_maker: Callable[[Logger], Any] | None = None,
    logger: Logger | None = None,
    callback: Callable[[int, dict[str, float]], bool | None] | None = None,
    show_progress: bool = True,
) -> UnlearningHistory:
    """The loop of every repair method: ``model`` (``agent`` itself, or a fresh agent whose
    weights ``agent`` adopts at the end) takes one step per batch, with the checks, metrics,
    callback (returning True stops), progress bar, wall and CPU time. The step is the agent's ``trainer`` step, or ``step_maker(logger)``
    (anything with ``updates(*batch)`` that stores its metrics in ``logger``). A batch may be a
    tuple of batches (Safe-RULE's keep and forget): ``check(*batch)`` then validates it, where
    the default checks one keep batch (``finite_checked``: its sampler's data was checked)."""
    history = UnlearningHistory(method=method)
    started, cpu_started = time.perf_counter(), time.process_time()
    recorder = _StepRecorder(logger)
    if step_maker is not None:
        training_step = step_maker(recorder)
    else:
        training_step = make_trainer(trainer, agent.osrl_key, model, recorder, learning_rate)
    model.train()
    bar = tqdm(total=steps, desc=method, disable=not show_progress, dynamic_ncols=True)
    if check is None:

        def check(*batch: torch.Tensor) -> None:
            agent._check_batch(batch, "keep", finite_checked)

    shown = getattr(training_step, "progress_keys", {})
    try:
        for step, batch in enumerate(batches):
            check(*batch)
            run_updates(training_step.updates(*batch))
            metrics = recorder.take()
            agent._check_metrics(metrics, step)
            history.metrics.append(metrics)
            history.steps = step + 1
            bar.update(1)
            if shown and step % 10 == 0:
                bar.set_postfix({name: f"{metrics[key]:.3g}" for name, key in shown.items()
                                 if key in metrics})  # fmt: skip
            if callback is not None and callback(step, metrics):
                history.stopped_early = True
                break
    finally:
        bar.close()
        model.eval()
        agent.eval()
    if model is not agent:
        adopt(agent, model)
    history.wall_seconds = time.perf_counter() - started
    history.cpu_seconds = time.process_time() - cpu_started
    return history
