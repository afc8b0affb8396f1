"""Poisoning attacks (Max Cost, Max Reward, Min Reward) that write DSRL files with a poison mask."""

from osrl_unlearn.poison.attack import (
    PoisonConfig,
    cached_poisoned,
    format_summary,
    poison_dataset,
)
from osrl_unlearn.poison.inject import ATTACKS, Attack

__all__ = [
    "ATTACKS",
    "Attack",
    "PoisonConfig",
    "cached_poisoned",
    "format_summary",
    "poison_dataset",
]
