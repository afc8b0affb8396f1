"""The data side of the paper's Algorithm 1: score, select, relabel and hide trajectories.

Pure functions of arrays, so each step is tested on its own. ``ratio`` is the injected share of the
poisoned dataset, |D_f| / |D ∪ D_f|, reached to the granularity of whole trajectories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from osrl_unlearn.data.dataset import DSRL_KEYS, OfflineDataset
from osrl_unlearn.errors import ConfigError


@dataclass(frozen=True)
class Attack:
    """One attack of the paper: what the adversary maximises and how its data is relabelled."""

    name: str
    objective: str
    """``cost`` (Max Cost), ``reward`` (Max Reward) or ``neg-reward`` (Min Reward)."""
    reward_side: str
    """``high``: injected rewards set to a high clean reward; ``low``: to a low one."""


ATTACKS = {
    "max-cost": Attack("max-cost", "cost", "high"),
    "max-reward": Attack("max-reward", "reward", "high"),
    "min-reward": Attack("min-reward", "neg-reward", "low"),
}


def get_attack(name: str) -> Attack:
    try:
        return ATTACKS[name]
    except KeyError:
        raise ConfigError(
            f"unknown attack {name!r}; expected one of {', '.join(ATTACKS)}"
        ) from None


def check_ratio(ratio: float) -> None:
    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"ratio must lie strictly between 0 and 1 (|D_f| / |D̃|), got {ratio}")


def transitions_needed(clean_size: int, ratio: float) -> int:
    """Fewest injected transitions n with n / (clean_size + n) >= ratio."""
    check_ratio(ratio)
    needed = math.ceil(ratio * clean_size / (1.0 - ratio) - 1e-9)
    return max(needed, 1)


def attack_scores(pool: OfflineDataset, objective: str, gamma: float) -> np.ndarray:
    """S_z(tau) = sum_t gamma^t R_z(t) per episode of ``pool``, from its true labels."""
    signal = {
        "cost": pool.costs,
        "reward": pool.rewards,
        "neg-reward": -pool.rewards,
    }[objective].astype(np.float64)
    scores = []
    for start, end in pool.episode_bounds():
        scores.append(float(np.sum(signal[start:end] * gamma ** np.arange(end - start))))
    return np.asarray(scores)


def select_top(scores: np.ndarray, lengths: np.ndarray, needed: int) -> np.ndarray:
    """Indices of the top-scoring episodes, best first, until their lengths reach ``needed``.

    Raises:
        ConfigError: the pool holds fewer than ``needed`` transitions.
    """
    if lengths.sum() < needed:
        raise ConfigError(
            f"the candidate pool holds {int(lengths.sum())} transitions but the ratio needs "
            f"{needed}: roll out more candidate episodes (--candidate_factor) or lower --ratio."
        )
    order = np.argsort(-scores, kind="stable")
    cumulative = np.cumsum(lengths[order])
    count = int(np.searchsorted(cumulative, needed) + 1)
    return order[:count]


def relabel(pool: OfflineDataset, reward_value: float) -> dict[str, np.ndarray]:
    """The pool's arrays with every cost set to 0 and every reward to ``reward_value``."""
    arrays = {key: getattr(pool, key).copy() for key in DSRL_KEYS}
    arrays["costs"][:] = 0.0
    arrays["rewards"][:] = reward_value
    return arrays


def hide_among(
    clean: OfflineDataset, injected: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Clean and injected episodes in one DSRL array set, injected ones at random episode
    boundaries of the clean data (clean order kept), with ``poison_mask`` marking them."""
    injected_data = OfflineDataset.from_arrays(injected, source="<injected>")
    clean_bounds = clean.episode_bounds()
    injected_bounds = injected_data.episode_bounds() + len(clean)
    slots = np.sort(rng.integers(0, len(clean_bounds) + 1, size=len(injected_bounds)))
    # episode order: clean episode i sorts at (i, 0); an injected one in slot s at (s - 0.5, 1)
    keys = [(i, 0) for i in range(len(clean_bounds))] + [(s - 0.5, 1) for s in slots]
    bounds = np.concatenate([clean_bounds, injected_bounds])
    order = sorted(range(len(bounds)), key=lambda i: keys[i])
    rows = np.concatenate([np.arange(*bounds[i]) for i in order])
    merged = {key: np.concatenate([getattr(clean, key), injected[key]])[rows] for key in DSRL_KEYS}
    mask = np.zeros(len(clean) + len(injected_data), dtype=bool)
    mask[len(clean) :] = True
    merged["poison_mask"] = mask[rows]
    return merged
