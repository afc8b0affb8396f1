"""``trajdeleter``: TrajDeleter (Gong et al., 2024) as its official code runs it.

Read from ``2019ChenGong/TrajDeleter`` (``unlearning/mujoco_trajdeleter.py``; notes in
``docs/methods.md``): the agent keeps training with its own losses,

1. **forgetting**: blocks of keep batches alternate with blocks of forget batches whose rewards
   are negated (8 blocks, keep first; the official run: 1,000 steps each);
2. **convergence**: keep batches, the critic loss TD(own target) + w · TD(the original agent's
   target), w = 0.1 (the official 2,000 steps).

Both TD terms regress the same critic output, so their sum equals (1 + w) · TD towards the blended
target (y + w · y_0) / (1 + w); the step regresses on that target, a constant factor Adam
normalises away. ``cost_aware`` (``trajdeleter-cost``) also gives forget rows the keep data's largest
per-step cost. COptiDICE has no Q critic: its convergence phase is its own step on keep data.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch

from osrl_unlearn.fast.updates import Updates
from osrl_unlearn.trainers import make_trainer
from osrl_unlearn.unlearn.base import (
    Batch,
    Logger,
    UnlearningHistory,
    all_finite,
    draw_batches,
)
from osrl_unlearn.unlearn.config import TrajDeleterConfig
from osrl_unlearn.unlearn.relabel import COST, REWARD, largest_cost
from osrl_unlearn.unlearn.runner import run_training

KEEP, FORGET, CONVERGE = "keep", "forget", "converge"


def schedule(config: TrajDeleterConfig, steps: int) -> list[str]:
    """The phase of every step: alternating keep / forget blocks, then the convergence phase."""
    forgetting = steps - round(config.convergence_fraction * steps)
    block = max(math.ceil(forgetting / config.blocks), 1)
    phases = [KEEP if (step // block) % 2 == 0 else FORGET for step in range(forgetting)]
    return phases + [CONVERGE] * (steps - forgetting)


def negated(batch: Batch, cost: float | None = None) -> Batch:
    """``batch`` with its rewards negated (and every cost set to ``cost`` when given)."""
    fields = list(batch)
    fields[REWARD] = -batch[REWARD]
    if cost is not None:
        fields[COST] = torch.full_like(batch[COST], cost)
    return tuple(fields)


class AnchoredStep:
    """The agent's fast training step; from the convergence phase on, its Bellman targets are
    blended with the original agent's (agents with Q critics)."""

    def __init__(self, agent: torch.nn.Module, config: TrajDeleterConfig, phases: list[str],
                 logger: Logger) -> None:  # fmt: skip
        original = copy.deepcopy(agent).requires_grad_(False)  # before our step re-homes weights
        self.trainer = make_trainer("fast", agent.osrl_key, agent, logger, config.learning_rate)
        self.step = self.trainer._step
        self.own = getattr(self.step, "bellman_backups", None)
        self.anchor = None
        if self.own is not None and config.anchor_weight > 0 and CONVERGE in phases:
            reference = make_trainer("fast", agent.osrl_key, original, None, config.learning_rate)
            self.anchor = reference._step.bellman_backups
        self.weight, self.phases, self.done = config.anchor_weight, phases, 0

    def blended(self, *inputs: torch.Tensor) -> torch.Tensor:
        return (self.own(*inputs) + self.weight * self.anchor(*inputs)) / (1 + self.weight)

    def updates(self, *batch: torch.Tensor) -> Updates[None]:
        if self.anchor is not None and self.phases[self.done] == CONVERGE:
            self.step.bellman_backups = self.blended  # the step looks it up on itself
        yield from self.trainer.updates(*batch)
        self.done += 1


def trajdeleter_repair(
    agent: torch.nn.Module,
    keep_loader: Any,
    forget_loader: Any,
    config: TrajDeleterConfig,
    steps: int | None = None,
    *,
    logger: Logger | None = None,
    callback: Callable[[int, dict[str, float]], bool | None] | None = None,
    show_progress: bool = True,
) -> UnlearningHistory:
    """Repairs ``agent`` in place by TrajDeleter's schedule (see the module docstring)."""
    steps = config.steps if steps is None else steps
    phases = schedule(config, steps)
    forget_steps = phases.count(FORGET)
    keep_batches = draw_batches(keep_loader, steps - forget_steps, "keep")
    forget_batches = draw_batches(forget_loader, max(forget_steps, 1), "forget")
    finite_checked = all_finite(keep_loader, "keep") and all_finite(forget_loader, "forget")
    cost = None
    if config.cost_aware:
        fields = getattr(keep_loader, "fields", None)  # the whole keep data where known
        if fields is None:
            fields = next(keep_batches)
            keep_batches = itertools.chain([fields], keep_batches)
        cost = largest_cost(fields[COST])

    def batches() -> Iterator[Batch]:
        for phase in phases:
            yield negated(next(forget_batches), cost) if phase == FORGET else next(keep_batches)

    return run_training(
        agent, agent, batches(), steps, method="trajdeleter-cost" if config.cost_aware else
        "trajdeleter", finite_checked=finite_checked,
        step_maker=lambda recorder: AnchoredStep(agent, config, phases, recorder), logger=logger,
        callback=callback, show_progress=show_progress,
    )  # fmt: skip
