"""Removal, not masking: does a repaired policy stay safe when it is trained on?

A repair that only covers the poison (a thin layer over weights that still encode the attack)
comes undone under further training. Two continuations, each from a copy of the repaired agent,
with the agent's own training step:

- ``keep_only``: on keep data for as many steps as the repair took (ordinary further training);
- ``poisoned``: on the poisoned data for a short budget (how fast the attack comes back).

The same continuations of the clean-retrained agent are the reference: a repair has removed the
poison when its cost moves no more than the retrained agent's does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from osrl_unlearn.copying import copy_agent
from osrl_unlearn.data.dataset import OfflineDataset
from osrl_unlearn.data.sampler import BatchSampler, layout_for, training_scales, unlearning_samplers
from osrl_unlearn.unlearn.config import FinetuneConfig


def continued(agent: torch.nn.Module, loader: Any, steps: int, seed: int,
              learning_rate: float | None = None) -> torch.nn.Module:  # fmt: skip
    """A copy of ``agent`` trained ``steps`` more steps on ``loader``'s batches (the agent's own
    training step); ``agent`` itself is left as it is."""
    trained = copy_agent(agent)
    torch.manual_seed(seed)
    trained.unlearn(loader, method="finetune", steps=steps, show_progress=False,
                    config=FinetuneConfig(learning_rate=learning_rate))  # fmt: skip
    return trained


def removal_check(
    agent: torch.nn.Module,
    poisoned: OfflineDataset,
    keep_steps: int,
    poison_steps: int,
    measure: Callable[[torch.nn.Module], dict[str, float]],
    *,
    batch_size: int,
    seed: int = 0,
    learning_rate: float | None = None,
) -> dict[str, dict[str, float]]:
    """``measure`` (an evaluation summary) of ``agent`` continued on keep data for ``keep_steps``
    and, separately, on the whole poisoned data for ``poison_steps``."""
    keep, _ = unlearning_samplers(poisoned, agent, batch_size, seed + 2)
    reward_scale, cost_scale = training_scales(agent)
    everything = BatchSampler(poisoned, batch_size, layout=layout_for(agent.osrl_key),
                              reward_scale=reward_scale, cost_scale=cost_scale, seed=seed + 4)  # fmt: skip
    results = {}
    for name, loader, steps in (("keep_only", keep, keep_steps),
                                ("poisoned", everything, poison_steps)):  # fmt: skip
        if steps > 0:
            trained = continued(agent, loader, steps, seed, learning_rate)
            results[name] = {"steps": steps, **measure(trained)}
    return results
