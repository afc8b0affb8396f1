"""What a competent clean agent must reach: the median normalised reward of the safe episodes in
its own training data (an agent that earns less than half of the data's safe behaviour has not
learnt the task, however safe it is)."""

from __future__ import annotations

import numpy as np

from osrl_unlearn.data import OfflineDataset
from osrl_unlearn.tasks import get_task


def competence_threshold(data: OfflineDataset, cost_limit: float) -> float:
    """Median normalised reward of ``data``'s episodes whose cost is at most ``cost_limit``.

    Raises:
        ValueError: the data holds no safe episode.
    """
    rewards, costs = data.episode_returns()
    safe = rewards[costs <= cost_limit]
    if len(safe) == 0:
        raise ValueError(
            f"{data.source}: no episode costs <= {cost_limit}; no safe behaviour to match."
        )
    task = get_task(data.task)
    normalised = [task.normalized_score(r, 0.0, cost_limit)[0] for r in safe]
    return float(np.median(normalised))
