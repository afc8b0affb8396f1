import numpy as np
import pytest

from osrl_unlearn.evaluation import evaluate
from osrl_unlearn.tasks import make_env
from tests.agents.conftest import make_agent


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bcql", "cpq"])
def test_evaluation_is_seeded_and_normalised_as_dsrl_does(name):
    agent = make_agent(name)
    first = evaluate(agent, "OfflineCarCircle-v0", episodes=2, seed=3, show_progress=False)
    again = evaluate(agent, "OfflineCarCircle-v0", episodes=2, seed=3, show_progress=False)
    np.testing.assert_array_equal(first.rewards, again.rewards)
    np.testing.assert_array_equal(first.costs, again.costs)
    env = make_env("OfflineCarCircle-v0")
    env.unwrapped.set_target_cost(10)
    for r, c, nr, nc in zip(
        first.rewards, first.costs, first.normalized_rewards, first.normalized_costs, strict=True
    ):
        assert (nr, nc) == pytest.approx(env.unwrapped.get_normalized_score(r, c))
