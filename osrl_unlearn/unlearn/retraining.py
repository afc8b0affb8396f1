"""``finetune`` and ``retrain``: the agent's own OSRL training step on keep data.

``finetune`` continues training the loaded agent; ``retrain`` trains a fresh agent of the same
architecture (the clean reference a repair is measured against) and loads its weights into the
agent. Both run the agent's training step (ours by default, OSRL's own with ``trainer="osrl"``),
so they cost exactly what training costs per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from osrl_unlearn.unlearn.base import Logger, UnlearningHistory, all_finite, draw_batches
from osrl_unlearn.unlearn.runner import run_training


def fresh_agent(agent: torch.nn.Module) -> torch.nn.Module:
    """A newly initialised agent of the same class and constructor arguments, with the dataset
    statistics (COptiDICE's) the loaded one holds."""
    args, kwargs = agent._init_arguments
    fresh = type(agent)(*args, **kwargs)
    for name in ("init_state_propotion", "observations_std", "actions_std", "osrl_config"):
        if hasattr(agent, name):
            setattr(fresh, name, getattr(agent, name))
    return fresh.to(next(agent.parameters()).device)


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
