import numpy as np
import pytest

from osrl_unlearn.benchmark.competence import competence_threshold
from osrl_unlearn.data import OfflineDataset
from osrl_unlearn.tasks import get_task
from tests.conftest import make_arrays


def test_competence_threshold_is_the_median_normalised_reward_of_safe_episodes():
    arrays = make_arrays(episodes=4, length=10)
    arrays["rewards"] = np.repeat([1.0, 2.0, 3.0, 40.0], 10).astype(np.float32)  # returns 10..400
    arrays["costs"] = np.repeat([0.0, 0.5, 0.0, 5.0], 10).astype(np.float32)  # costs 0, 5, 0, 50
    data = OfflineDataset.from_arrays(arrays, attrs={"task": "OfflineCarCircle-v0"})
    task = get_task("OfflineCarCircle-v0")
    span = task.max_episode_reward - task.min_episode_reward
    # safe at limit 10: returns 10, 20, 30 -> median 20
    expected = (20.0 - task.min_episode_reward) / span
    assert competence_threshold(data, 10.0) == pytest.approx(expected)
    with pytest.raises(ValueError, match="no episode costs <= -1"):
        competence_threshold(data, -1.0)
