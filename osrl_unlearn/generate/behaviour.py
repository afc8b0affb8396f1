"""Behaviour policies of several safety levels, trained with FSRL's PPO-Lagrangian.

DSRL built its datasets by rolling out policies trained at several cost limits. We do the same in
small: one PPO-Lag run per cost limit (``None`` for plain PPO, which ignores cost), with a snapshot of
the actor after every epoch. Early snapshots act almost at random, late ones are good at their own
cost limit, so the snapshots of a few runs span rewards and costs on both sides of the limit.
Snapshots are saved as plain tensors so ``torch.load(weights_only=True)`` reads them.
"""

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional

import gymnasium as gym
import numpy as np
import torch

from osrl_unlearn.io import atomic_path
from osrl_unlearn.parallel import Progress, run_jobs
from osrl_unlearn.stack import import_fsrl
from osrl_unlearn.tasks import make_env


@dataclass
class BehaviourConfig:
    """How the behaviour policies are trained (one FSRL PPO-Lag run per cost limit)."""

    cost_limits: List[Optional[float]] = field(default_factory=lambda: [10.0, 100.0])
    """Episode cost limit of each run; ``null`` trains plain PPO (no Lagrangian)."""
    steps: int = 200_000
    """Environment steps per run."""
    step_per_epoch: int = 10_000
    """Environment steps between actor snapshots."""
    hidden_sizes: List[int] = field(default_factory=lambda: [128, 128])
    """Actor and critic hidden layers."""
    lr: float = 1e-3
    """Adam learning rate (FSRL's 5e-4 learns CarCircle about half as fast in 240k steps)."""
    training_envs: int = 10
    """Environments stepped together (in one process) by each run's collector."""
    episode_per_collect: int = 20
    """Episodes gathered between PPO updates (FSRL's PPO-Lag default)."""
    repeat_per_collect: int = 4
    """PPO epochs over each collected batch (FSRL's default)."""
    batch_size: int = 256
    """PPO minibatch size (FSRL's default)."""
    max_grad_norm: Optional[float] = 0.5
    """Gradient clipping (FSRL's default config)."""


@dataclass(frozen=True)
class BehaviourJob:
    task: str
    run: int
    seed: int
    cost_limit: float | None
    config: BehaviourConfig
    out_dir: str
    objective: str = "reward"
    """What the policy maximises: ``reward``, ``cost`` (Max Cost attacker) or ``neg-reward``."""


@dataclass(frozen=True)
class Snapshot:
    """One saved actor and where it came from."""

    path: str
    run: int
    cost_limit: float | None
    epoch: int
    env_steps: int
    train_reward: float
    train_cost: float


def train_behaviour_run(job: BehaviourJob, progress: Progress) -> list[Snapshot]:
    """Trains one PPO-Lag run and saves an actor snapshot after every epoch."""
    import_fsrl()
    from fsrl.agent import PPOLagAgent
    from fsrl.data import FastCollector
    from fsrl.trainer import OnpolicyTrainer
    from tianshou.data import VectorReplayBuffer
    from tianshou.env import DummyVectorEnv

    cfg = job.config
    out_dir = Path(job.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = make_objective_env(job.task, job.objective)
    agent = PPOLagAgent(
        env,
        cost_limit=job.cost_limit if job.cost_limit is not None else 1e9,
        use_lagrangian=job.cost_limit is not None,
        seed=job.seed,
        thread=torch.get_num_threads(),
        lr=cfg.lr,
        hidden_sizes=tuple(cfg.hidden_sizes),
        max_grad_norm=cfg.max_grad_norm,
    )
    policy = agent.policy
    train_envs = DummyVectorEnv(
        [lambda: make_objective_env(job.task, job.objective) for _ in range(cfg.training_envs)]
    )
    train_envs.seed(job.seed)
    collector = FastCollector(
        policy,
        train_envs,
        VectorReplayBuffer(cfg.step_per_epoch + 4000, cfg.training_envs),
        exploration_noise=True,
    )
    trainer = OnpolicyTrainer(
        policy=policy,
        train_collector=collector,
        test_collector=None,
        max_epoch=max(1, cfg.steps // cfg.step_per_epoch),
        batch_size=cfg.batch_size,
        cost_limit=job.cost_limit if job.cost_limit is not None else np.inf,
        step_per_epoch=cfg.step_per_epoch,
        repeat_per_collect=cfg.repeat_per_collect,
        episode_per_test=1,  # fsrl asserts on it even without a test collector
        episode_per_collect=cfg.episode_per_collect,
        verbose=False,
        show_progress=False,
    )
    epoch_rewards: list[float] = []
    epoch_costs: list[float] = []
    train_step = trainer.train_step

    def train_step_with_progress():
        stats = train_step()
        progress(int(stats["n/st"]))
        epoch_rewards.append(float(stats["rew"]))
        epoch_costs.append(float(stats["cost"]))
        return stats

    trainer.train_step = train_step_with_progress
    snapshots = []
    # fsrl prints a line whenever an update stops early on KL; the progress bar says enough.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for epoch, _, _ in trainer:
            path = out_dir / f"actor_epoch{epoch:03d}.pt"
            with atomic_path(path, overwrite=True) as tmp:
                actor_state = policy.actor.state_dict()
                torch.save({k: v.detach().clone() for k, v in actor_state.items()}, tmp)
            snapshots.append(
                Snapshot(
                    path=str(path),
                    run=job.run,
                    cost_limit=job.cost_limit,
                    epoch=epoch,
                    env_steps=int(trainer.env_step),
                    train_reward=float(np.mean(epoch_rewards)),
                    train_cost=float(np.mean(epoch_costs)),
                )
            )
            epoch_rewards.clear()
            epoch_costs.clear()
    train_envs.close()
    env.close()
    with atomic_path(out_dir / "snapshots.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps([asdict(s) for s in snapshots], indent=1))
    return snapshots


def expected_env_steps(cfg: BehaviourConfig, episode_len: int) -> int:
    """Environment steps one run takes: epochs collect whole batches of whole episodes."""
    per_collect = cfg.episode_per_collect * episode_len
    collects_per_epoch = -(-cfg.step_per_epoch // per_collect)
    return max(1, cfg.steps // cfg.step_per_epoch) * collects_per_epoch * per_collect


def train_runs(
    jobs: list[BehaviourJob], *, workers: int, episode_len: int, desc: str, show_progress: bool
) -> list[list[Snapshot]]:
    """The snapshots of every job's run, in job order, training only the runs not cached yet.

    ``desc`` may hold ``{}`` for the number of runs to train.
    """
    done = {job.out_dir: load_snapshots(Path(job.out_dir)) for job in jobs}
    todo = [job for job in jobs if done[job.out_dir] is None]
    if todo:
        results = run_jobs(
            train_behaviour_run,
            todo,
            workers=workers,
            total=sum(expected_env_steps(job.config, episode_len) for job in todo),
            desc=desc.format(len(todo)),
            unit="step",
            show_progress=show_progress,
        )
        done.update({job.out_dir: snaps for job, snaps in zip(todo, results, strict=True)})
    return [done[job.out_dir] for job in jobs]


OBJECTIVES = ("reward", "cost", "neg-reward")


def make_objective_env(task: str, objective: str):
    """The task's env with its reward replaced by the objective a policy should maximise.

    ``cost``: reward := cost (the Max Cost attacker), ``neg-reward``: reward := -reward (Min
    Reward). For these the cost signal is zeroed, so no Lagrangian sees it.
    """
    env = make_env(task)
    if objective == "reward":
        return env
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
    return _ObjectiveWrapper(env, objective)


class _ObjectiveWrapper(gym.Wrapper):
    def __init__(self, env, objective: str):
        super().__init__(env)
        self.objective = objective

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        cost = float(info.get("cost", 0.0))
        reward = cost if self.objective == "cost" else -float(reward)
        return obs, reward, terminated, truncated, {**info, "cost": 0.0, "true_cost": cost}


def load_snapshots(out_dir: Path) -> list[Snapshot] | None:
    """The snapshots a finished run left in ``out_dir``, or None if it did not finish."""
    index = out_dir / "snapshots.json"
    if not index.is_file():
        return None
    snapshots = [Snapshot(**s) for s in json.loads(index.read_text())]
    return snapshots if all(Path(s.path).is_file() for s in snapshots) else None


def build_actor(obs_dim: int, act_dim: int, hidden_sizes: List[int]) -> torch.nn.Module:
    """The actor network FSRL's PPO-Lag agent builds (tianshou ``ActorProb`` over ``Net``)."""
    from tianshou.utils.net.common import Net
    from tianshou.utils.net.continuous import ActorProb

    return ActorProb(Net(obs_dim, hidden_sizes=hidden_sizes), act_dim, max_action=1.0)


def load_actor(path: str, obs_dim: int, act_dim: int, hidden_sizes: List[int]) -> torch.nn.Module:
    actor = build_actor(obs_dim, act_dim, hidden_sizes)
    actor.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return actor.eval()
