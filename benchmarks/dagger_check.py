"""Is a clone of PointGoal1's lidar controller unsafe because it drifts off the data's states
(covariate shift), or because it cannot fit the rule? DAgger tells: the controller labels the
states the clone itself visits, the clone is refitted on all labelled states, and so on. If the
clone stays unsafe with labels on its own states, the drift is not the (whole) cause.

    python benchmarks/dagger_check.py --clearance 0.3 --speed 1.0 --iterations 4

A diagnostic of docs/profiles.md (PointGoal1 section): prints one line per iteration.
"""

import sys
from dataclasses import dataclass, field
from typing import List

import numpy as np
import torch
from behaviour_cloning import deterministic_actor, fit, standardisation

import osrl_unlearn.evaluation as evaluation
from osrl_unlearn.cli import run_script
from osrl_unlearn.generate.collect import EpisodePlan, _record
from osrl_unlearn.generate.controller import LidarLayout, PointGoalController
from osrl_unlearn.tasks import get_task, make_env

TASK = "OfflinePointGoal1Gymnasium-v0"


@dataclass
class DaggerConfig:
    """Settings of the DAgger check."""

    clearance: float = 0.3
    speed: float = 1.0
    """The lidar controller that labels every state."""
    first_episodes: int = 40
    """Episodes of the controller itself, the first data."""
    episodes_per_iteration: int = 20
    """Episodes of the current clone per iteration, labelled by the controller."""
    iterations: int = 4
    steps: int = 5_000
    """Cloning steps per iteration (a fresh clone each time, as DAgger refits)."""
    hidden: List[int] = field(default_factory=lambda: [256, 256])
    batch_size: int = 512
    learning_rate: float = 1e-3
    eval_episodes: int = 30
    standardise: bool = False
    """Feed the clone observations standardised by the first data's mean and std (OSRL's BC
    takes them raw; the accelerometer's and magnetometer's scales dwarf the lidars')."""
    seed: int = 0


def visited_states(env, act, episodes: int, first_seed: int) -> np.ndarray:
    """The observations of ``episodes`` seeded episodes driven by ``act`` (recorded as the
    datasets' episodes are, without noise)."""
    plans = (EpisodePlan(index, "", 0.0, first_seed + index) for index in range(episodes))
    return np.concatenate([_record(env, act, plan)["observations"] for plan in plans])


def main(cfg: DaggerConfig) -> None:
    from osrl.algorithms import BC

    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    task = get_task(TASK)
    env = make_env(TASK)
    layout = LidarLayout.of(env.unwrapped.task)
    controller = PointGoalController(cfg.clearance, cfg.speed, "lidar")

    def label(states: np.ndarray) -> np.ndarray:
        return np.stack([controller.act_on_lidar(s, layout) for s in states])

    states = visited_states(env, lambda obs: controller.act_on_lidar(obs, layout),
                            cfg.first_episodes, cfg.seed)  # fmt: skip
    actions = label(states)
    mean, std = standardisation(torch.as_tensor(states), cfg.standardise)
    evaluation.batched_policy = deterministic_actor(mean, std)
    for iteration in range(cfg.iterations):
        clone = BC(task.obs_dim, task.act_dim, task.max_action, list(cfg.hidden), task.episode_len)
        clone.setup_optimizers(cfg.learning_rate)
        obs = (torch.as_tensor(states) - mean) / std
        act = torch.as_tensor(actions, dtype=torch.float32)
        generator = torch.Generator().manual_seed(cfg.seed + iteration)
        fit(clone, obs, act, cfg.steps, cfg.batch_size, generator)
        result = evaluation.evaluate(clone, TASK, cfg.eval_episodes, seed=10_000,
                                     show_progress=False)  # fmt: skip
        print(f"iteration {iteration}: {len(states)} labelled states; clone {result.format()}",
              flush=True)  # fmt: skip

        @torch.no_grad()
        def act_of_clone(o, clone=clone):
            standardised = (torch.as_tensor(o[None], dtype=torch.float32) - mean) / std
            return clone.actor(standardised)[0].numpy()

        new = visited_states(env, act_of_clone, cfg.episodes_per_iteration,
                             cfg.seed + 1_000 + 100 * iteration)  # fmt: skip
        states, actions = np.concatenate([states, new]), np.concatenate([actions, label(new)])
    env.close()


if __name__ == "__main__":
    sys.exit(run_script(main, DaggerConfig))
