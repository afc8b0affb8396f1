"""How a repair moves on its way: cost in the environment next to data-only signals.

    python benchmarks/repair_trajectory.py --attacks "[min-reward]" --seeds "[0, 1]" --workers 2

For every attacked cell and seed of the chosen grid profile, the grid's cached poisoned
agent is repaired with `relabel` for the grid's budget (or, as references, trained on without a
repair: `--mode continue-poisoned` on the poisoned data, `--mode continue-clean` the clean agent
on clean data); every `--every` steps a copy is evaluated on the
grid's seeded episodes and, from the data alone, the cost critic's view of the policy is taken:
mean Q_c(s, pi(s)) on keep states and on forget states, the share of keep states the critic deems
over the budget (Q_c > kappa), the mean Q_r on keep states and the PID multiplier. The question it
answers: is a failed repair a swing that a data-only rule could stop before (issue 13's "no
peeking"), or a drift that no checkpoint escapes? Results go to
`benchmarks/results/<profile>-repair-trajectory/<cell>/<mode>.json`.
"""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from relabel_variants import VARIANTS, relabel_config

from osrl_unlearn.benchmark.grid import GridConfig, Job, plan
from osrl_unlearn.cli import run_script
from osrl_unlearn.io import write_json

MODES = ("relabel", "continue-poisoned", "continue-clean")


@dataclass
class TrajectoryConfig:
    """Settings of the repair trajectory measurement."""

    profile: str = "cpu"
    tasks: List[str] = field(default_factory=lambda: ["OfflineCarCircle-v0"])
    agents: List[str] = field(default_factory=lambda: ["bcql"])
    attacks: List[str] = field(default_factory=lambda: ["min-reward"])
    ratios: List[float] = field(default_factory=lambda: [0.05, 0.15])
    seeds: List[int] = field(default_factory=lambda: [0, 1])
    every: int = 500
    """Steps between two measured copies (step 0, the poisoned agent, is measured too)."""
    mode: str = "relabel"
    """relabel (the default repair), continue-poisoned (the poisoned agent trained on on the
    whole poisoned data: no repair) or continue-clean (the clean agent trained on on clean data:
    the drift of ordinary training)."""
    variant: str = "default"
    """The `relabel` settings (a key of relabel_variants.VARIANTS; mode relabel only)."""
    states: int = 4096
    """Keep and forget states the data-only signals are averaged over."""
    target_actor: bool = True
    """Also evaluate the target (Polyak-averaged) actor at every measured step."""
    workers: int = 1
    results_dir: Optional[str] = None
    """Default benchmarks/results/<profile>-repair-trajectory."""
    grid_results_dir: Optional[str] = None
    """The grid run whose cells are measured (default benchmarks/results/<profile>)."""


@dataclass
class TrajectoryJob:
    job: Job
    every: int
    mode: str
    variant: str
    states: int
    results_dir: str
    target_actor: bool = True

    @property
    def path(self) -> Path:
        cell = Path(self.job.folder).relative_to(Path(self.job.results_dir) / "cells")
        name = self.mode if self.variant == "default" else f"{self.mode}+{self.variant}"
        return Path(self.results_dir) / cell / f"{name}.json"


def lowest_head(critic, obs, actions):
    """The minimum over a critic's heads: OSRL's twin critic (BCQ-Lag, BEAR-Lag) returns
    (q1, q2, q1_list, q2_list), its ensemble critic (CPQ) (q_min, q_list)."""
    import torch

    values = critic.predict(obs, actions)
    return torch.min(values[0], values[1]) if len(values) == 4 else values[0]


def critic_view(agent, keep_obs, forget_obs, seed: int) -> Dict[str, float]:
    """The cost and reward critics' values of the policy's own actions on data states (the
    actor loss's view: the minimum over the twin heads), no environment. kappa is the threshold
    the actor's loss compares Q_c with: BCQ-Lag's qc_thres, CPQ's gate q_thres."""
    import torch

    from osrl_unlearn.evaluation import batched_policy

    torch.manual_seed(seed)  # BCQ-Lag's action rule samples its VAE
    policy = batched_policy(agent)
    kappa = float(agent.q_thres if agent.osrl_key == "cpq" else agent.qc_thres)
    view = {}
    with torch.no_grad():
        for name, obs in (("keep", keep_obs), ("forget", forget_obs)):
            actions = policy(obs)
            qc, q = (
                lowest_head(critic, obs, actions) for critic in (agent.cost_critic, agent.critic)
            )
            view[f"{name}_qc"] = float(qc.mean())
            view[f"{name}_over_kappa"] = float((qc > kappa).float().mean())
            view[f"{name}_qr"] = float(q.mean())
    view["kappa"] = kappa
    return view


def measure(work: TrajectoryJob, progress=lambda n: None) -> Dict[str, Any]:
    import numpy as np
    import torch

    from osrl_unlearn.agents.checkpoint import load_agent
    from osrl_unlearn.copying import copy_agent
    from osrl_unlearn.data import read_hdf5, unlearning_samplers
    from osrl_unlearn.data.sampler import BatchSampler, layout_for, training_scales
    from osrl_unlearn.evaluation import evaluate
    from osrl_unlearn.training import cached_run
    from osrl_unlearn.unlearn.config import FinetuneConfig

    job, settings = work.job, work.job.settings
    try:
        recorded = json.loads(work.path.read_text())
        progress(1)
        return recorded
    except (OSError, ValueError):
        pass
    data = read_hdf5(job.poisoned_path)
    keep_data, forget_data = data.split()
    trained_on = read_hdf5(job.clean_path) if work.mode == "continue-clean" else data
    agent = load_agent(cached_run(trained_on, settings, job.cache, show_progress=False))
    pick = np.random.default_rng(job.seed)
    keep_obs, forget_obs = (
        torch.as_tensor(d.observations[pick.choice(len(d.observations), work.states)])
        for d in (keep_data, forget_data)
    )
    points: List[Dict[str, Any]] = []
    metrics_at: Dict[int, Dict[str, float]] = {}

    def episodes(policy) -> Dict[str, float]:
        return evaluate(policy, job.task, job.eval_episodes, seed=job.seed + 10_000,
                        cost_limit=settings.cost_limit, show_progress=False).summary()  # fmt: skip

    def snapshot(step: int, trained) -> None:
        copied = copy_agent(trained)
        result = episodes(copied)
        point = {"step": step, "normalized_cost": result["eval/normalized_cost"],
                 "normalized_reward": result["eval/normalized_reward"],
                 **critic_view(copied, keep_obs, forget_obs, job.seed),
                 "multiplier": metrics_at.get(step, {}).get("loss/lagrangian")}  # fmt: skip
        if work.target_actor:  # the actor's weights averaged over ~1/tau steps (Polyak)
            copied.actor.load_state_dict(copied.actor_old.state_dict())
            averaged = episodes(copied)
            point["target_actor_cost"] = averaged["eval/normalized_cost"]
            point["target_actor_reward"] = averaged["eval/normalized_reward"]
        points.append(point)

    snapshot(0, agent)
    copies: Dict[int, Any] = {}

    def callback(step: int, metrics: Dict[str, float]) -> None:
        done = step + 1
        if done % work.every == 0:
            metrics_at[done] = metrics
            copies[done] = copy_agent(agent)

    torch.manual_seed(job.seed)
    if work.mode.startswith("continue"):
        reward_scale, cost_scale = training_scales(agent)
        everything = BatchSampler(trained_on, settings.batch_size, layout=layout_for(agent.osrl_key),
                                  reward_scale=reward_scale, cost_scale=cost_scale,
                                  seed=job.seed + 4)  # fmt: skip
        agent.unlearn(everything, method="finetune", steps=job.unlearn_steps,
                      config=FinetuneConfig(learning_rate=settings.learning_rate),
                      callback=callback, show_progress=False)  # fmt: skip
    else:
        keep, forget = unlearning_samplers(data, agent, settings.batch_size, job.seed)
        config = relabel_config(work.variant, settings.learning_rate)
        agent.unlearn(keep, forget, config=config, steps=job.unlearn_steps, callback=callback,
                      show_progress=False)  # fmt: skip
    for step in sorted(copies):
        snapshot(step, copies[step])
    payload = {"task": job.task, "agent": job.agent, "attack": job.attack, "ratio": job.ratio,
               "seed": job.seed, "mode": work.mode, "variant": work.variant, "every": work.every,
               "points": points}  # fmt: skip
    write_json(work.path, payload)
    progress(1)
    return payload


def main(cfg: TrajectoryConfig) -> None:
    from math import nan

    from osrl_unlearn.parallel import run_jobs

    if cfg.mode not in MODES:
        raise SystemExit(f"--mode must be one of {', '.join(MODES)}, got {cfg.mode!r}")
    if cfg.variant not in VARIANTS:
        raise SystemExit(f"--variant must be one of {', '.join(VARIANTS)}, got {cfg.variant!r}")
    grid = GridConfig(profile=cfg.profile, tasks=cfg.tasks, agents=cfg.agents, attacks=cfg.attacks,
                      ratios=cfg.ratios, seeds=cfg.seeds, results_dir=cfg.grid_results_dir,
                      show_progress=False)  # fmt: skip
    jobs = [j for j in plan(grid) if j.attack is not None]
    out = cfg.results_dir or f"benchmarks/results/{cfg.profile}-repair-trajectory"
    work = [
        TrajectoryJob(j, cfg.every, cfg.mode, cfg.variant, cfg.states, out, cfg.target_actor)
        for j in jobs
    ]
    results = run_jobs(measure, work, workers=cfg.workers, total=len(work),
                       desc="repair trajectories", unit="run")  # fmt: skip
    for r in results:
        print(
            f"\n{r['task']} {r['attack']} {r['ratio']:g} seed {r['seed']} ({r['mode']}, "
            f"{r.get('variant', 'default')})"
        )
        print(
            "| step | norm. cost | norm. reward | target actor: cost | reward | keep Q_c "
            "| keep share Q_c > κ | forget Q_c | keep Q_r | multiplier |"
        )
        print("|---" * 10 + "|")
        for p in r["points"]:
            multiplier = "–" if p["multiplier"] is None else f"{p['multiplier']:.1f}"
            print(f"| {p['step']} | {p['normalized_cost']:.2f} | {p['normalized_reward']:.2f} "
                  f"| {p.get('target_actor_cost', nan):.2f} | {p.get('target_actor_reward', nan):.2f} "
                  f"| {p['keep_qc']:.2f} | {p['keep_over_kappa']:.2f} | {p['forget_qc']:.2f} "
                  f"| {p['keep_qr']:.1f} | {multiplier} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_script(main, TrajectoryConfig))
