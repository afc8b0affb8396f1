"""Rolling a policy out in the real environment: episode reward and cost, raw and DSRL-normalised."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import trange

from osrl_unlearn.stack import import_osrl_algorithms
from osrl_unlearn.tasks import get_task, make_env, reset_env


@dataclass(frozen=True)
class EvalResult:
    """Per-episode returns of one evaluation, and their DSRL-normalised means."""

    task: str
    rewards: np.ndarray
    costs: np.ndarray
    normalized_rewards: np.ndarray
    normalized_costs: np.ndarray

    def summary(self) -> dict[str, float]:
        return {
            "eval/reward": float(self.rewards.mean()),
            "eval/reward_std": float(self.rewards.std()),
            "eval/cost": float(self.costs.mean()),
            "eval/cost_std": float(self.costs.std()),
            "eval/normalized_reward": float(self.normalized_rewards.mean()),
            "eval/normalized_cost": float(self.normalized_costs.mean()),
        }


def policy_action(agent, obs: np.ndarray) -> np.ndarray:
    """The action OSRL's own evaluation takes: deterministic where the agent has a mode (BCQ-Lag
    samples its VAE, so its action depends on the torch seed)."""
    if isinstance(agent, import_osrl_algorithms().BCQL):
        action, _ = agent.act(obs)
    else:
        action, _ = agent.act(obs, True, True)
    return action


@torch.no_grad()
def evaluate(
    agent,
    task: str,
    episodes: int = 20,
    *,
    seed: int = 0,
    cost_limit: float = 10.0,
    show_progress: bool = True,
) -> EvalResult:
    """Runs ``episodes`` seeded episodes (episode i starts from seed + i): same seed, same result."""
    spec = get_task(task)
    env = make_env(task)
    agent.eval()
    rewards, costs = [], []
    for i in trange(episodes, desc=f"evaluating on {task}", disable=not show_progress):
        torch.manual_seed(seed + i)
        obs, _ = reset_env(env, seed + i)
        total_reward = total_cost = 0.0
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy_action(agent, obs))
            total_reward += float(reward)
            total_cost += float(info.get("cost", 0.0))
            done = terminated or truncated
        rewards.append(total_reward)
        costs.append(total_cost)
    env.close()
    rewards_arr, costs_arr = np.asarray(rewards), np.asarray(costs)
    normalized = [
        spec.normalized_score(r, c, cost_limit) for r, c in zip(rewards, costs, strict=True)
    ]
    return EvalResult(
        task=task,
        rewards=rewards_arr,
        costs=costs_arr,
        normalized_rewards=np.asarray([n[0] for n in normalized]),
        normalized_costs=np.asarray([n[1] for n in normalized]),
    )
