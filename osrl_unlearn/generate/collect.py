"""Roll behaviour policies out in the real environment and record DSRL transitions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from osrl_unlearn.generate.behaviour import load_actor
from osrl_unlearn.generate.clone import actor_policy, load_clone
from osrl_unlearn.generate.controller import (
    CircleController,
    PointCircleController,
    PointGoalController,
)
from osrl_unlearn.parallel import Progress, run_jobs
from osrl_unlearn.tasks import get_task, make_env, reset_env


@dataclass(frozen=True)
class EpisodePlan:
    """One episode to record: which actor (a saved actor file, or a scripted controller when
    ``controller`` is set), how much action noise (and its step-to-step correlation), which
    seed."""

    index: int
    actor_path: str
    noise: float
    seed: int
    controller: CircleController | PointCircleController | PointGoalController | None = None
    noise_correlation: float = 0.0
    actor_kind: str = "fsrl"
    """What ``actor_path`` holds: an FSRL PPO actor (``fsrl``) or a DAgger clone (``clone``)."""


@dataclass(frozen=True)
class CollectJob:
    task: str
    obs_dim: int
    act_dim: int
    hidden_sizes: tuple[int, ...]
    episodes: tuple[EpisodePlan, ...]


def episode_seed(base_seed: int, index: int) -> int:
    """A 32-bit seed per episode, independent of which worker records it."""
    return int(np.random.SeedSequence([base_seed, index]).generate_state(1)[0])


def record_episodes(
    task, hidden_sizes, plans: list[EpisodePlan], *, workers: int, desc: str, show_progress: bool
) -> list[dict[str, np.ndarray]]:
    """Records ``plans`` over ``workers`` processes (worker w takes plans w, w + workers, ...);
    episodes come back in plan order. Each episode is seeded, but a Bullet env carries some physics
    state across resets, so the result depends on the worker count too, as on the seeds."""
    workers = max(1, workers)
    jobs = [
        CollectJob(task.name, task.obs_dim, task.act_dim, tuple(hidden_sizes), chunk)
        for chunk in (tuple(plans[w::workers]) for w in range(workers))
        if chunk
    ]
    results = run_jobs(
        collect_episodes,
        jobs,
        workers=workers,
        total=len(plans),
        desc=desc,
        unit="episode",
        show_progress=show_progress,
    )
    by_index = {
        plan.index: episode
        for job, episodes in zip(jobs, results, strict=True)
        for plan, episode in zip(job.episodes, episodes, strict=True)
    }
    return [by_index[plan.index] for plan in plans]


def concatenate_episodes(episodes: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([e[key] for e in episodes]) for key in episodes[0]}


def collect_episodes(job: CollectJob, progress: Progress) -> list[dict[str, np.ndarray]]:
    """Records each planned episode: actions are the policy's (the actor's mean or the
    controller's) plus Gaussian noise, clipped."""
    env = make_env(job.task)
    actors: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    episodes = []
    for plan in job.episodes:
        if plan.controller is not None:
            policy = plan.controller.policy_for(env)
        else:
            if plan.actor_path not in actors:
                actors[plan.actor_path] = _policy_in(plan, job)
            policy = actors[plan.actor_path]
        episodes.append(_record(env, policy, plan))
        progress(1)
    env.close()
    return episodes


def _policy_in(plan: EpisodePlan, job: CollectJob) -> Callable[[np.ndarray], np.ndarray]:
    if plan.actor_kind == "clone":
        clone = load_clone(plan.actor_path, job.obs_dim, job.act_dim,
                           get_task(job.task).max_action, list(job.hidden_sizes))  # fmt: skip
        return actor_policy(clone)
    return _actor_mean(load_actor(plan.actor_path, job.obs_dim, job.act_dim,
                                  list(job.hidden_sizes)))  # fmt: skip


def _actor_mean(actor: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        (mean, _), _ = actor(obs[None].astype(np.float32))
        return mean[0].numpy()

    return act


def _record(
    env, policy: Callable[[np.ndarray], np.ndarray], plan: EpisodePlan
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(plan.seed)
    obs, _ = reset_env(env, plan.seed)
    rows: dict[str, list] = {
        key: [] for key in ("obs", "next", "act", "rew", "cost", "term", "trunc")
    }
    done = False
    push = None  # the correlated noise's state, in units of its std
    while not done:
        action = policy(obs)
        if plan.noise > 0:
            draw = rng.standard_normal(action.shape)
            if plan.noise_correlation > 0:
                rho = plan.noise_correlation
                push = draw if push is None else rho * push + np.sqrt(1 - rho**2) * draw
                draw = push
            action = action + plan.noise * draw
        action = np.clip(action, -1.0, 1.0).astype(np.float32)
        next_obs, reward, terminated, truncated, info = env.step(action)
        for key, value in zip(
            rows,
            (obs, next_obs, action, reward, info.get("cost", 0.0), terminated, truncated),
            strict=True,
        ):
            rows[key].append(value)
        obs = next_obs
        done = terminated or truncated
    return {
        "observations": np.asarray(rows["obs"], dtype=np.float32),
        "next_observations": np.asarray(rows["next"], dtype=np.float32),
        "actions": np.asarray(rows["act"], dtype=np.float32),
        "rewards": np.asarray(rows["rew"], dtype=np.float32),
        "costs": np.asarray(rows["cost"], dtype=np.float32),
        "terminals": np.asarray(rows["term"], dtype=bool),
        "timeouts": np.asarray(rows["trunc"], dtype=bool),
    }
