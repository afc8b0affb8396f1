"""Poisoning attacks (Max Cost, Max Reward, Min Reward) that write DSRL files with a poison mask."""

from osrl_unlearn.poison.attack import PoisonConfig, format_summary, poison_dataset
from osrl_unlearn.poison.inject import ATTACKS, Attack

__all__ = ["ATTACKS", "Attack", "PoisonConfig", "format_summary", "poison_dataset"]
