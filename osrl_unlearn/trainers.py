"""The training step behind ``train_one_step(*batch)``: ours (``fast``) or OSRL's own trainer.

Kept apart from :mod:`osrl_unlearn.training` (runs, profiles, the cache) so that fine-tuning and
retraining inside the unlearning loop reach the training step without importing the agents.
"""

from __future__ import annotations

import torch

from osrl_unlearn.agent_specs import SPECS
from osrl_unlearn.fast import learning_rates
from osrl_unlearn.fast.updates import Updates
from osrl_unlearn.osrl_configs import trainer_learning_rates
from osrl_unlearn.stack import import_osrl_algorithms

OSRL_PREFIX = {key: spec.osrl_name for key, spec in SPECS.items()}
"""Agent name -> OSRL's class and trainer prefix (from :mod:`osrl_unlearn.agent_specs`)."""


def osrl_trainer(
    agent: str, model, logger=None, learning_rate: float | None = None, **rates: float
):
    """OSRL's own trainer for ``model`` (it builds the optimizers, as OSRL's scripts do), with
    the trainer arguments ``rates``; every network's learning rate ``learning_rate`` when given.
    Rates not given keep OSRL's trainer defaults."""
    trainer_class = getattr(import_osrl_algorithms(), f"{OSRL_PREFIX[agent]}Trainer")
    kwargs = {} if logger is None else {"logger": logger}
    rates = {**rates, **learning_rates(agent, learning_rate)}
    return trainer_class(model, env=None, **kwargs, **rates)


class _OSRLSteps:
    """OSRL's trainer behind ``train_one_step(*batch)`` for every agent (COptiDICE's takes the
    batch as one tuple)."""

    def __init__(self, agent: str, trainer) -> None:
        self.trainer = trainer
        self.single_batch = SPECS[agent].dataset_statistics

    def train_one_step(self, *batch: torch.Tensor) -> None:
        self.trainer.train_one_step(batch) if self.single_batch else self.trainer.train_one_step(
            *batch
        )

    def updates(self, *batch: torch.Tensor) -> Updates[None]:
        """The step as the loop runs steps (:mod:`osrl_unlearn.fast.updates`): OSRL's code
        applies its own updates, so there are none to yield."""
        self.train_one_step(*batch)
        yield from ()


def make_trainer(trainer: str, agent: str, model, logger=None, learning_rate: float | None = None):
    """The training step ``trainer`` (``fast`` or ``osrl``) for ``model``: ``train_one_step(*batch)``.

    Learning rates: ``learning_rate`` for every network when given; else those of the model's
    OSRL training config (``model.osrl_config``, set when it was built), else OSRL's defaults.
    """
    from osrl_unlearn.errors import ConfigError
    from osrl_unlearn.fast import TRAINERS, FastTrainer

    rates = trainer_learning_rates(agent, getattr(model, "osrl_config", {}))
    rates.update(learning_rates(agent, learning_rate))
    if trainer == "fast":
        return FastTrainer(agent, model, logger, **rates)
    if trainer == "osrl":
        return _OSRLSteps(agent, osrl_trainer(agent, model, logger, **rates))
    raise ConfigError(f"unknown trainer {trainer!r}; expected one of {', '.join(TRAINERS)}")
