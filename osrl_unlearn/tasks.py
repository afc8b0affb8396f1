"""DSRL tasks: their environments, spaces, episode lengths and normalisation references."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from osrl_unlearn.errors import UserError
from osrl_unlearn.stack import import_dsrl

DEFAULT_COST_LIMIT = 10.0
_TASK_ID = re.compile(r"^Offline(?P<key>.+?)(?:Gymnasium)?-v\d+$")
# Tasks the project generates data for and tests; any other dsrl task id still loads and validates.
SUPPORTED_TASKS = (
    "OfflineCarCircle-v0",
    "OfflinePointCircle1Gymnasium-v0",
    "OfflinePointGoal1Gymnasium-v0",
)


class TaskError(UserError):
    """An unknown or unusable task name."""


@dataclass(frozen=True)
class TaskSpec:
    """What the rest of the package needs to know about one DSRL task."""

    name: str
    """The gymnasium id dsrl registers, e.g. ``OfflineCarCircle-v0``."""
    obs_dim: int
    act_dim: int
    episode_len: int
    """The time limit dsrl registers: OSRL's ``episode_len``."""
    max_action: float
    """Upper bound of every action dimension (OSRL's ``max_action``)."""
    max_episode_reward: float
    min_episode_reward: float
    dataset_url: str
    """Where DSRL hosts the task's dataset; its file name is the DSRL cache name."""

    @property
    def dsrl_key(self) -> str:
        match = _TASK_ID.match(self.name)
        assert match is not None
        return match.group("key")

    @property
    def dsrl_cache_path(self) -> Path:
        """Where dsrl's ``env.get_dataset()`` looks for (or downloads) this task's file."""
        from dsrl import offline_env

        return Path(offline_env.DATASET_PATH) / Path(self.dataset_url).name

    def normalized_score(
        self, reward: float, cost: float, cost_limit: float
    ) -> tuple[float, float]:
        """DSRL's normalisation (``OfflineEnv.get_normalized_score``) without building an env."""
        eps = 1.0 if cost_limit == 0 else 0.0
        span = self.max_episode_reward - self.min_episode_reward
        return (reward - self.min_episode_reward) / span, (cost + eps) / (cost_limit + eps)


@cache
def get_task(name: str) -> TaskSpec:
    """The spec of a dsrl task id; raises :class:`TaskError` naming the known ids otherwise."""
    dsrl = import_dsrl()
    import gymnasium as gym

    match = _TASK_ID.match(name)
    if match is None or name not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith("Offline"))
        raise TaskError(
            f"unknown task {name!r}. Use a dsrl task id such as {', '.join(SUPPORTED_TASKS)} "
            f"({len(known)} are registered; e.g. {', '.join(known[:6])}, ...)."
        )
    key = match.group("key")
    env = make_env(name)
    try:
        spec = TaskSpec(
            name=name,
            obs_dim=int(np.prod(env.observation_space.shape)),
            act_dim=int(np.prod(env.action_space.shape)),
            episode_len=int(gym.spec(name).max_episode_steps),
            max_action=float(env.action_space.high[0]),
            max_episode_reward=float(dsrl.infos.MAX_EPISODE_REWARD[key]),
            min_episode_reward=float(dsrl.infos.MIN_EPISODE_REWARD[key]),
            dataset_url=dsrl.infos.DATASET_URLS[key],
        )
    finally:
        env.close()
    return spec


def make_env(name: str):
    """A fresh gymnasium env of a dsrl task (actions in [-1, 1], cost in ``info['cost']``);
    a Safety-Gymnasium env resets without decoding its skybox (:mod:`osrl_unlearn.light_skybox`)."""
    import_dsrl()
    import gymnasium as gym

    env = gym.make(name)
    safety_gymnasium = any(c.__module__.startswith("safety_gymnasium.")
                           for c in type(env.unwrapped).__mro__)  # fmt: skip
    if safety_gymnasium and env.render_mode is None:
        from osrl_unlearn.light_skybox import LightSkybox

        return LightSkybox(env)
    return env


def reset_env(env, seed: int):
    """Resets ``env`` reproducibly. Bullet-Safety-Gym draws its start state from the global numpy
    RNG and ignores ``reset(seed=...)``, so that RNG is seeded too."""
    np.random.seed(seed)
    return env.reset(seed=seed)
