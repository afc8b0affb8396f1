"""``finetune`` and ``retrain``: the agent's own OSRL training step on keep data.

``finetune`` continues training the loaded agent; ``retrain`` trains a fresh agent of the same
architecture (the clean reference a repair is measured against) and loads its weights into the
agent. Both run the agent's training step (ours by default, OSRL's own with ``trainer="osrl"``),
so they cost exactly what training costs per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from tqdm.auto import tqdm

from osrl_unlearn.unlearn.base import (
    Batch,
    Logger,
    UnlearningHistory,
    all_finite,
    draw_batches,
)


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


def fresh_agent(agent: torch.nn.Module) -> torch.nn.Module:
    """A newly initialised agent of the same class and constructor arguments, with the dataset
    statistics (COptiDICE's) the loaded one holds."""
    args, kwargs = agent._init_arguments
    fresh = type(agent)(*args, **kwargs)
    for name in ("init_state_propotion", "observations_std", "actions_std", "osrl_config"):
        if hasattr(agent, name):
            setattr(fresh, name, getattr(agent, name))
    return fresh.to(next(agent.parameters()).device)


def _adopt(agent: torch.nn.Module, trained: torch.nn.Module) -> None:
    """Gives ``agent`` the weights of ``trained`` and the tensors OSRL keeps outside the state
    dict (BEAR's log_alpha, COptiDICE's lambda and tau)."""
    agent.load_state_dict(trained.state_dict())
    for name, value in vars(trained).items():
        if isinstance(value, torch.Tensor) and not name.startswith("_"):
            setattr(agent, name, value)


def train_on_keep(
    agent: torch.nn.Module,
    keep_loader: Any,
    steps: int,
    *,
    method: str,
    learning_rate: float | None = None,
    trainer: str = "fast",
    logger: Logger | None = None,
    callback: Callable[[int, dict[str, float]], bool | None] | None = None,
    show_progress: bool = True,
) -> UnlearningHistory:
    """Runs ``steps`` training steps on keep batches (``method`` is finetune or retrain) with the
    ``trainer`` step (``fast`` or ``osrl``)."""
    batches = draw_batches(keep_loader, steps, "keep")
    model = fresh_agent(agent) if method == "retrain" else agent
    return run_training(
        agent, model, batches, steps, method=method, finite_checked=all_finite(keep_loader, "keep"),
        learning_rate=learning_rate, trainer=trainer, logger=logger, callback=callback,
        show_progress=show_progress,
    )  # fmt: skip


def run_training(
    agent: torch.nn.Module,
    model: torch.nn.Module,
    batches: Iterable[Batch],
    steps: int,
    *,
    method: str,
    finite_checked: bool,
    learning_rate: float | None = None,
    trainer: str = "fast",
    step_maker: Callable[[Logger], Any] | None = None,
    logger: Logger | None = None,
    callback: Callable[[int, dict[str, float]], bool | None] | None = None,
    show_progress: bool = True,
) -> UnlearningHistory:
    """The training loop of every method that runs the agent's own training step: ``model``
    (``agent`` itself, or a fresh agent whose weights ``agent`` adopts at the end) takes one
    step per batch; metrics, callback, progress and wall time as the unlearning loop's. The step
    is the agent's ``trainer`` step, or ``step_maker(logger)`` (anything with ``train_one_step``
    that stores its metrics in ``logger``)."""
    from osrl_unlearn.trainers import make_trainer

    history = UnlearningHistory(method=method)
    started = time.perf_counter()
    recorder = _StepRecorder(logger)
    if step_maker is not None:
        training_step = step_maker(recorder)
    else:
        training_step = make_trainer(trainer, agent.osrl_key, model, recorder, learning_rate)
    model.train()
    bar = tqdm(total=steps, desc=method, disable=not show_progress, dynamic_ncols=True)
    try:
        for step, batch in enumerate(batches):
            agent._check_batch(batch, "keep", finite_checked)
            training_step.train_one_step(*batch)
            metrics = recorder.take()
            agent._check_metrics(metrics, step)
            history.metrics.append(metrics)
            history.steps = step + 1
            bar.update(1)
            if callback is not None and callback(step, metrics):
                history.stopped_early = True
                break
    finally:
        bar.close()
        model.eval()
        agent.eval()
    if model is not agent:
        _adopt(agent, model)
    history.wall_seconds = time.perf_counter() - started
    return history
