"""Throughput of our evaluator against OSRL's ``trainer.evaluate``, same agent, one run.

    python benchmarks/evaluation_speed.py                      # BCQL and CPQ, OSRL default sizes
    python benchmarks/evaluation_speed.py --episodes 10 --agents "[bcql]"

OSRL's trainers roll episodes one at a time with a batch-of-one forward pass per step; ours steps
``num_envs`` envs in lockstep with one batched forward pass (``sync``) or with the envs in worker
processes (``async``). Prints episodes per second and the speed-up over OSRL.
"""

import sys
import time
from dataclasses import dataclass, field
from typing import List

import torch

from osrl_unlearn.agents.checkpoint import build_agent
from osrl_unlearn.cli import run_script
from osrl_unlearn.evaluation import evaluate
from osrl_unlearn.tasks import make_env
from osrl_unlearn.training import osrl_trainer


@dataclass
class EvalSpeedConfig:
    """Settings of the evaluation-speed benchmark."""

    task: str = "OfflineCarCircle-v0"
    """dsrl task to roll out in."""
    agents: List[str] = field(default_factory=lambda: ["bcql", "cpq"])
    """Agents to time (untrained: speed does not depend on the weights)."""
    hidden: List[int] = field(default_factory=lambda: [256, 256])
    """Hidden sizes (OSRL's default)."""
    episodes: int = 20
    """Episodes per measurement."""
    settings: List[str] = field(default_factory=lambda: ["sync:1", "sync:10", "sync:20", "async:2"])
    """Our evaluator's settings, backend:num_envs."""
    threads: int = 2
    """torch threads."""


def main(cfg: EvalSpeedConfig) -> None:
    torch.set_num_threads(cfg.threads)
    rows = []
    for name in cfg.agents:
        config = {"task": cfg.task, "a_hidden_sizes": cfg.hidden, "c_hidden_sizes": cfg.hidden,
                  "vae_hidden_sizes": max(cfg.hidden), "episode_len": 300}  # fmt: skip
        torch.manual_seed(0)
        agent = build_agent(name, config)
        trainer = osrl_trainer(name, agent)
        trainer.env = make_env(cfg.task)
        started = time.perf_counter()
        trainer.evaluate(cfg.episodes)
        osrl_seconds = time.perf_counter() - started
        rows.append((name, "OSRL trainer.evaluate", osrl_seconds, 1.0))
        for setting in cfg.settings:
            backend, num_envs = setting.split(":")
            result = evaluate(agent, cfg.task, cfg.episodes, num_envs=int(num_envs),
                              backend=backend, show_progress=False)  # fmt: skip
            rows.append((name, f"ours, {backend}, {num_envs} envs", result.wall_seconds,
                         osrl_seconds / result.wall_seconds))  # fmt: skip
    print(f"\n{cfg.task}, {cfg.episodes} episodes, hidden {cfg.hidden}, {cfg.threads} threads")
    print("| agent | evaluator | seconds | episodes/s | speed-up over OSRL |")
    print("|---|---|---|---|---|")
    for name, label, seconds, speedup in rows:
        print(f"| {name} | {label} | {seconds:.1f} | {cfg.episodes / seconds:.2f} | "
              f"{speedup:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_script(main, EvalSpeedConfig))
