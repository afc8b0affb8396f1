"""Rolling a policy out in the real environment: episode reward and cost, raw and DSRL-normalised.

One evaluator for every agent. Episodes run in rounds of ``num_envs`` gymnasium vector envs in
lockstep, so the policy acts on a batch of observations per step (on CarCircle the simulator step
dominates, so this gains 1.1-1.35x over one env; ``benchmarks/evaluation_speed.py``). Episode ``i`` starts from seed ``seed + i`` and always runs
in env slot ``i % num_envs``: Bullet-Safety-Gym's reset is not history-free (the same seeded
episode differs with what the env ran before), so a fixed slot keeps results reproducible. Same
seed and ``num_envs``, same result; a different ``num_envs`` gives a different (equally valid)
sample of episodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from osrl_unlearn.agent_specs import spec_of
from osrl_unlearn.standardise import acting_on_raw_observations
from osrl_unlearn.tasks import get_task, make_env


@dataclass(frozen=True)
class EvalResult:
    """Per-episode returns of one evaluation, and their DSRL-normalised values."""

    task: str
    rewards: np.ndarray
    costs: np.ndarray
    normalized_rewards: np.ndarray
    normalized_costs: np.ndarray
    lengths: np.ndarray | None = None
    cost_limit: float = 10.0
    num_envs: int = 1
    wall_seconds: float = 0.0

    @property
    def episodes(self) -> int:
        return len(self.rewards)

    def summary(self) -> dict[str, float]:
        return {
            "eval/reward": float(self.rewards.mean()),
            "eval/reward_std": float(self.rewards.std()),
            "eval/cost": float(self.costs.mean()),
            "eval/cost_std": float(self.costs.std()),
            "eval/normalized_reward": float(self.normalized_rewards.mean()),
            "eval/normalized_reward_std": float(self.normalized_rewards.std()),
            "eval/normalized_cost": float(self.normalized_costs.mean()),
            "eval/normalized_cost_std": float(self.normalized_costs.std()),
            "eval/episodes": float(self.episodes),
        }

    def is_safe(self) -> bool:
        """Normalised cost at most 1 on average (DSRL's definition of a safe policy)."""
        return float(self.normalized_costs.mean()) <= 1.0

    def format(self) -> str:
        """``reward r ± s (norm. x), cost c ± s (norm. y)`` for logs and tables."""
        s = self.summary()
        return (
            f"reward {s['eval/reward']:.1f} ± {s['eval/reward_std']:.1f} "
            f"(norm. {s['eval/normalized_reward']:.2f}), cost {s['eval/cost']:.1f} ± "
            f"{s['eval/cost_std']:.1f} (norm. {s['eval/normalized_cost']:.2f}), "
            f"{self.episodes} episodes"
        )


ACTION_RULES: dict[str, Callable[[Any], Callable[[torch.Tensor], torch.Tensor]]] = {
    "vae-perturbation": lambda agent: lambda obs: agent.actor(obs, agent.vae.decode(obs)),
    "actor-forward": lambda agent: lambda obs: agent._actor_forward(obs, True, True)[0],
    "actor-mode": lambda agent: lambda obs: agent.actor(obs, True, True)[0],
}
"""The action rules of OSRL's evaluation scripts, named by :attr:`AgentSpec.action_rule`."""


def batched_policy(agent) -> Callable[[torch.Tensor], torch.Tensor]:
    """The action rule OSRL's own evaluation uses, for a batch of observations: deterministic
    where the agent has a mode; BCQ-Lag samples its VAE (so its actions follow the torch seed).

    Works for our subclasses and for OSRL's own classes alike (the agent's spec names the rule).
    """
    return ACTION_RULES[spec_of(agent).action_rule](agent)


def policy_action(agent, obs: np.ndarray) -> np.ndarray:
    """The action for one observation (same rule as :func:`batched_policy`)."""
    with torch.no_grad():
        batch = torch.as_tensor(obs[None], dtype=torch.float32)
        return batched_policy(agent)(batch)[0].numpy()


def _seeded_env(task: str):
    import gymnasium as gym

    class SeededReset(gym.Wrapper):
        """``reset(seed=s)`` also seeds the global numpy RNG, which Bullet-Safety-Gym draws its
        start state from (it ignores gymnasium's seed); in a worker process too."""

        def reset(self, *, seed=None, options=None):
            if seed is not None:
                np.random.seed(seed)
            return self.env.reset(seed=seed, options=options)

    return SeededReset(make_env(task))


def _step_costs(info: dict, done: np.ndarray, num_envs: int) -> np.ndarray:
    """Per-env costs of a vector step; an env that just finished reports its last step's cost in
    ``final_info`` (gymnasium resets it at once)."""
    costs = np.asarray(info.get("cost", np.zeros(num_envs)), dtype=np.float64).copy()
    for j in np.flatnonzero(done):
        final = info["final_info"][j]
        costs[j] = float(final.get("cost", 0.0)) if final is not None else 0.0
    return costs


@torch.no_grad()
def evaluate(
    agent,
    task: str,
    episodes: int = 20,
    *,
    seed: int = 0,
    cost_limit: float = 10.0,
    num_envs: int = 10,
    backend: str = "sync",
    show_progress: bool = True,
) -> EvalResult:
    """Runs ``episodes`` seeded episodes of ``agent`` on ``task``.

    Args:
        agent: an OSRL agent (ours or OSRL's own class).
        task: the dsrl task id, e.g. ``OfflineCarCircle-v0``.
        episodes: how many episodes (episode ``i`` starts from seed ``seed + i``).
        seed: first episode seed; also seeds torch per round (BCQ-Lag's VAE samples).
        cost_limit: the limit costs are normalised by (<= 1 is safe).
        num_envs: envs stepped in lockstep (the policy acts on all at once).
        backend: ``sync`` (one process) or ``async`` (envs in worker processes).
        show_progress: a bar counting finished episodes.

    The caller's torch and numpy random streams are left as they were.
    """
    from osrl_unlearn.errors import ConfigError

    if episodes <= 0:
        raise ConfigError(f"episodes must be positive, got {episodes}; evaluate 1 or more.")
    if num_envs <= 0:
        raise ConfigError(f"num_envs must be positive, got {num_envs}; use 1 or more envs.")
    if backend not in ("sync", "async"):
        raise ConfigError(f"backend must be 'sync' or 'async', got {backend!r}.")
    if not (np.isfinite(cost_limit) and cost_limit >= 0):
        raise ConfigError(f"cost_limit must be a finite number >= 0, got {cost_limit}.")
    spec = get_task(task)
    check_agent_fits(agent, spec)
    agent = acting_on_raw_observations(agent)
    numpy_state = np.random.get_state()  # Bullet's resets seed numpy's global RNG: give it back
    try:
        with torch.random.fork_rng(devices=[]):  # and torch's, so a caller's stream is untouched
            return _evaluate(agent, spec, episodes, seed, cost_limit, num_envs, backend,
                             show_progress)  # fmt: skip
    finally:
        np.random.set_state(numpy_state)


def check_agent_fits(agent, spec) -> None:
    """Raises when ``agent`` takes observations or gives actions of another width than ``spec``."""
    from osrl_unlearn.errors import UserError

    for what, theirs, ours in (
        ("observations", getattr(agent, "state_dim", None), spec.obs_dim),
        ("actions", getattr(agent, "action_dim", None), spec.act_dim),
    ):
        if theirs is not None and int(theirs) != ours:
            raise UserError(
                f"the agent was built for {theirs}-dim {what} but {spec.name} has {ours}; "
                "evaluate it on the task it was trained on (its config.yaml's task)."
            )


def _evaluate(agent, spec, episodes, seed, cost_limit, num_envs, backend, show_progress):
    import gymnasium as gym

    task = spec.name
    num_envs = max(1, min(num_envs, episodes))
    vector = gym.vector.AsyncVectorEnv if backend == "async" else gym.vector.SyncVectorEnv
    envs = vector([partial(_seeded_env, task) for _ in range(num_envs)])
    act = batched_policy(agent)
    agent.eval()
    rewards, costs, lengths = (np.zeros(episodes) for _ in range(3))
    started = time.perf_counter()
    bar = tqdm(total=episodes, desc=f"evaluating on {task}", disable=not show_progress)
    try:
        for first in range(0, episodes, num_envs):
            torch.manual_seed(seed + first)
            obs, _ = envs.reset(seed=[seed + first + j for j in range(num_envs)])
            active = np.arange(num_envs) < episodes - first
            ep_reward, ep_cost, ep_len = (np.zeros(num_envs) for _ in range(3))
            while active.any():
                actions = act(torch.as_tensor(obs, dtype=torch.float32)).numpy()
                obs, reward, terminated, truncated, info = envs.step(actions)
                done = terminated | truncated
                ep_reward += np.where(active, reward, 0.0)
                ep_cost += np.where(active, _step_costs(info, done, num_envs), 0.0)
                ep_len += active
                for j in np.flatnonzero(done & active):
                    rewards[first + j], costs[first + j] = ep_reward[j], ep_cost[j]
                    lengths[first + j] = ep_len[j]
                    bar.update(1)
                active &= ~done
    finally:
        bar.close()
        envs.close()
    normalized = [
        spec.normalized_score(r, c, cost_limit) for r, c in zip(rewards, costs, strict=True)
    ]
    return EvalResult(
        task=task,
        rewards=rewards,
        costs=costs,
        normalized_rewards=np.asarray([n[0] for n in normalized]),
        normalized_costs=np.asarray([n[1] for n in normalized]),
        lengths=lengths,
        cost_limit=cost_limit,
        num_envs=num_envs,
        wall_seconds=time.perf_counter() - started,
    )
