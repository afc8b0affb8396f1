"""Our training step for each OSRL agent: OSRL's ``train_one_step``, computed with few operations.

``FastTrainer(agent, model, ...)`` is a drop-in for OSRL's ``<Agent>Trainer`` in training loops:
same learning-rate arguments and defaults, same batch layout, same random draws in the same order
(the equivalence tests compare parameters step by step with OSRL's own trainer). It is several
times faster at CPU sizes (``benchmarks/train_speed.py``) because ensembles run as one batched
network and each optimizer is one fused kernel.
"""

from __future__ import annotations

from typing import Any

import torch

from osrl_unlearn.agent_specs import SPECS
from osrl_unlearn.fast.bcql import Metrics
from osrl_unlearn.fast.updates import Updates, as_floats, run_updates

TRAINERS = ("fast", "osrl")
"""Which training step trains an agent: ours (``fast``) or OSRL's own trainer (``osrl``)."""

# Learning-rate defaults of OSRL's trainers (argument names as OSRL's).
_OSRL_DEFAULTS = {key: spec.trainer_learning_rates for key, spec in SPECS.items()}


class FastTrainer:
    """Trains an OSRL agent with our step (a drop-in for OSRL's trainer's ``train_one_step``).

    Args:
        agent: ``bcql``, ``bearl``, ``cpq`` or ``coptidice``.
        model: the OSRL agent (or our subclass of it); its parameters keep their names and always
            hold the current weights.
        logger: anything with ``store(**metrics)``; it receives OSRL's metric names every step
            (converting them costs a host sync per value: leave it None when not needed).
        **learning_rates: OSRL's trainer arguments (``actor_lr``, ``critic_lr``, ``vae_lr``,
            ``alpha_lr``, ``scalar_lr``), OSRL's defaults where not given.
    """

    def __init__(self, agent: str, model: torch.nn.Module, logger: Any = None,
                 **learning_rates: float) -> None:  # fmt: skip
        unknown = set(learning_rates) - set(_OSRL_DEFAULTS[agent])
        if unknown:
            raise TypeError(f"{agent} has no learning rate {', '.join(sorted(unknown))}")
        self.agent = agent
        self.model = model
        self.logger = logger
        self._step = SPECS[agent].step_class()(model, **{**_OSRL_DEFAULTS[agent], **learning_rates})

    def train_one_step(self, *batch: torch.Tensor) -> Metrics:
        """One step on a batch in the agent's OSRL layout (COptiDICE's as one tuple, as OSRL's
        trainer takes it, or unpacked); returns OSRL's metrics as 0-d tensors."""
        return run_updates(self.updates(*batch))

    def updates(self, *batch: torch.Tensor) -> Updates[Metrics]:
        """:meth:`train_one_step` as the updates it makes (:mod:`.updates`)."""
        if len(batch) == 1:
            batch = tuple(batch[0])
        metrics = yield from self._step.updates(*batch)
        if self.logger is not None:
            self.logger.store(**as_floats(metrics))
        return metrics


def learning_rates(agent: str, learning_rate: float | None) -> dict[str, float]:
    """The trainer arguments that set every network's learning rate to ``learning_rate`` (the
    dual/scalar rates stay OSRL's), or none when it is None."""
    if learning_rate is None:
        return {}
    names = [n for n in _OSRL_DEFAULTS[agent] if n not in ("alpha_lr", "scalar_lr")]
    return dict.fromkeys(names, learning_rate)


__all__ = ["TRAINERS", "FastTrainer", "learning_rates"]
