import numpy as np
import pytest
import torch

from osrl_unlearn.evaluation import _seeded_env, evaluate, policy_action
from osrl_unlearn.tasks import make_env
from tests.agents.conftest import make_agent

TASK = "OfflineCarCircle-v0"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bcql", "cpq"])
def test_evaluation_is_seeded_and_normalised_as_dsrl_does(name):
    agent = make_agent(name)
    first = evaluate(agent, TASK, episodes=3, seed=3, num_envs=2, show_progress=False)
    again = evaluate(agent, TASK, episodes=3, seed=3, num_envs=2, show_progress=False)
    np.testing.assert_array_equal(first.rewards, again.rewards)
    np.testing.assert_array_equal(first.costs, again.costs)
    assert first.episodes == 3 and (first.lengths == 300).all()
    env = make_env(TASK)
    env.unwrapped.set_target_cost(10)
    for r, c, nr, nc in zip(
        first.rewards, first.costs, first.normalized_rewards, first.normalized_costs, strict=True
    ):
        assert (nr, nc) == pytest.approx(env.unwrapped.get_normalized_score(r, c))


@pytest.mark.slow
def test_first_episode_equals_a_plain_rollout_costs_included():
    """The vector bookkeeping (last-step cost in final_info, lockstep masks) loses nothing."""
    agent = make_agent("cpq")
    with torch.no_grad():  # a policy that circles hard and crosses the boundary: costs > 0
        agent.actor.mu_layer.weight.zero_()
        agent.actor.mu_layer.bias.copy_(torch.tensor([3.0, -3.0]))
    result = evaluate(agent, TASK, episodes=1, seed=7, num_envs=1, show_progress=False)
    env = _seeded_env(TASK)
    torch.manual_seed(7)
    obs, _ = env.reset(seed=7)
    total_reward = total_cost = 0.0
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy_action(agent, obs))
        total_reward += reward
        total_cost += info["cost"]
        done = terminated or truncated
    assert result.rewards[0] == pytest.approx(total_reward)
    assert result.costs[0] == pytest.approx(total_cost)
    assert total_cost > 0


@pytest.mark.slow
def test_episodes_keep_their_slot_and_seed_whatever_the_episode_count():
    agent = make_agent("cpq")
    two = evaluate(agent, TASK, episodes=2, seed=1, num_envs=2, show_progress=False)
    four = evaluate(agent, TASK, episodes=4, seed=1, num_envs=2, show_progress=False)
    np.testing.assert_array_equal(two.rewards, four.rewards[:2])
    np.testing.assert_array_equal(two.costs, four.costs[:2])
    assert len(set(np.round(four.rewards, 6))) == 4  # different seeds, different episodes


@pytest.mark.slow
def test_evaluation_leaves_the_callers_random_streams_alone():
    """Evaluating at a training milestone must not change what the training draws next."""
    agent = make_agent("bcql")
    torch.manual_seed(11)
    np.random.seed(11)
    expected = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(11)
    np.random.seed(11)
    evaluate(agent, TASK, episodes=1, seed=5, num_envs=1, show_progress=False)
    torch.testing.assert_close(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])
