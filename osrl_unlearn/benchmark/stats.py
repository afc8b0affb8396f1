"""Means with 95 % bootstrap intervals over a two-level sample: training seeds, then episodes.

A benchmark policy is trained once per seed and evaluated on seeded episodes within each seed, so
its scores are a two-level sample ``samples[s][i]`` (seed ``s``, episode ``i``). The estimate is
the mean over seeds of each seed's mean over its episodes (each seed weighs the same, however many
episodes it ran). The interval is the percentile bootstrap of that mean, resampling both levels as
the data were drawn: ``k`` seeds with replacement, then, for each chosen seed, its episodes with
replacement, independently each time a seed is chosen (Davison & Hinkley, *Bootstrap Methods and
their Application*, 1997, §3.8). With one seed only the episode level is resampled, so the interval
says nothing about seed-to-seed variation.

Two policies evaluated on the same seeded episodes (episode ``i`` of seed ``s`` starts from the
same state for both) are compared on their per-episode differences: the shared episode-to-episode
variation cancels, and the interval of the mean difference is far narrower than the two unpaired
intervals suggest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

RESAMPLES = 4000
"""Bootstrap resamples per interval (enough for stable 2.5 % and 97.5 % percentiles)."""


@dataclass(frozen=True)
class Estimate:
    """A mean and its percentile bootstrap interval."""

    mean: float
    low: float
    high: float
    level: float = 0.95
    """Coverage the interval was built for."""
    seeds: int = 1
    """Seeds (first-level units) in the sample."""
    episodes: int = 1
    """Episodes (second-level units) in all, over every seed."""

    def excludes(self, value: float = 0.0) -> bool:
        """Whether ``value`` lies outside the interval."""
        return value < self.low or value > self.high

    def format(self, digits: int = 2) -> str:
        """``mean [low, high]``."""
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _as_samples(samples: Sequence[ArrayLike]) -> list[np.ndarray]:
    arrays = [np.asarray(x, dtype=float).ravel() for x in samples]
    if not arrays:
        raise ValueError("need at least one seed")
    if any(a.size == 0 for a in arrays):
        raise ValueError("every seed needs at least one episode")
    return arrays


def two_level_mean(samples: Sequence[ArrayLike]) -> float:
    """The mean over seeds of each seed's mean over its episodes."""
    return float(np.mean([a.mean() for a in _as_samples(samples)]))


def bootstrap_replicates(
    samples: Sequence[ArrayLike], *, resamples: int = RESAMPLES, seed: int = 0
) -> np.ndarray:
    """``resamples`` bootstrap replicates of :func:`two_level_mean`.

    Each replicate draws ``k`` seeds with replacement out of the ``k`` given, then for each drawn
    seed as many of its episodes as it has, with replacement, afresh for every draw (a seed drawn
    twice contributes two independent episode resamples).
    """
    arrays = _as_samples(samples)
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    rng = np.random.default_rng(seed)
    k = len(arrays)
    chosen = rng.integers(0, k, size=(resamples, k))
    total = np.zeros(resamples)
    for slot in range(k):
        for s, values in enumerate(arrays):
            rows = np.flatnonzero(chosen[:, slot] == s)
            if rows.size:
                picks = rng.integers(0, values.size, size=(rows.size, values.size))
                total[rows] += values[picks].mean(axis=1)
    return total / k


def bootstrap_mean(
    samples: Sequence[ArrayLike],
    *,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """The two-level mean of ``samples`` (one sequence of episode values per seed) and its
    percentile bootstrap interval.

    Args:
        samples: per seed, the values of its episodes.
        level: coverage of the interval (0.95: the 2.5 % and 97.5 % percentiles).
        resamples: bootstrap replicates.
        seed: seed of the resampling (the same seed gives the same interval).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    arrays = _as_samples(samples)
    replicates = bootstrap_replicates(arrays, resamples=resamples, seed=seed)
    tail = (1 - level) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return Estimate(mean=two_level_mean(arrays), low=float(low), high=float(high), level=level,
                    seeds=len(arrays), episodes=sum(a.size for a in arrays))  # fmt: skip


def paired_difference(
    a: Sequence[ArrayLike],
    b: Sequence[ArrayLike],
    *,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Mean of ``a - b`` over paired episodes, with its two-level bootstrap interval.

    Args:
        a: per seed, policy A's episode values.
        b: per seed, policy B's values on the same episodes, in the same order.
        level, resamples, seed: as in :func:`bootstrap_mean`.

    Raises:
        ValueError: when the two do not have the same seeds and episodes per seed.
    """
    a_arrays, b_arrays = _as_samples(a), _as_samples(b)
    if len(a_arrays) != len(b_arrays):
        raise ValueError(f"paired samples need the same seeds: {len(a_arrays)} vs {len(b_arrays)}")
    for s, (x, y) in enumerate(zip(a_arrays, b_arrays, strict=True)):
        if x.size != y.size:
            raise ValueError(f"seed {s}: {x.size} episodes against {y.size}; pairs need both")
    differences = [x - y for x, y in zip(a_arrays, b_arrays, strict=True)]
    return bootstrap_mean(differences, level=level, resamples=resamples, seed=seed)
