"""Cost of one Safe-RULE unlearning step against one OSRL training step, per agent, in one run.

    python benchmarks/step_cost.py                 # OSRL's default network sizes, batch 512
    python benchmarks/step_cost.py --steps 20 --batch_size 256

Both steps are fed by the same fast sampler, so the ratio compares the update work alone; the
sampling cost is printed beside them (target: unlearning <= 1.2x training, sampling <= 0.5 ms).
"""

import time
from dataclasses import dataclass, field
from typing import List

import numpy as np
import pyrallis
import torch

from osrl_unlearn.agents.checkpoint import build_agent
from osrl_unlearn.data import BatchSampler, OfflineDataset, layout_for
from osrl_unlearn.training import osrl_trainer
from osrl_unlearn.unlearn import SafeRuleConfig


@dataclass
class StepCostConfig:
    """Settings of the step-cost benchmark."""

    agents: List[str] = field(default_factory=lambda: ["bcql", "bearl", "cpq", "coptidice"])
    """Agents to time."""
    batch_size: int = 512
    """Transitions per batch (OSRL's default)."""
    hidden: List[int] = field(default_factory=lambda: [256, 256])
    """Actor and critic hidden sizes (OSRL's default)."""
    steps: int = 30
    """Timed steps per measurement (after warm-up)."""
    warmup: int = 5
    """Untimed steps first."""
    threads: int = 2
    """torch threads (this machine has 2 cores)."""
    seed: int = 0
    """Seed of data and networks."""


def synthetic_split(seed: int, n: int = 20_000):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 8)).astype(np.float32)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[299::300] = True
    mask = np.zeros(n, dtype=bool)
    mask[-3000:] = True
    data = OfflineDataset.from_arrays(
        {
            "observations": obs,
            "next_observations": np.roll(obs, -1, 0),
            "actions": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
            "rewards": rng.uniform(0, 1, n).astype(np.float32),
            "costs": (rng.uniform(size=n) < 0.2).astype(np.float32),
            "terminals": np.zeros(n, dtype=bool),
            "timeouts": timeouts,
            "poison_mask": mask,
        }
    )
    return data.split()


def time_training(name: str, cfg: StepCostConfig, keep) -> float:
    torch.manual_seed(cfg.seed)
    model = build_agent(name, agent_config(cfg))
    trainer = osrl_trainer(name, model)
    sampler = BatchSampler(keep, cfg.batch_size, layout=layout_for(name), seed=cfg.seed)
    step = (
        (lambda b: trainer.train_one_step(b))
        if name == "coptidice"
        else (lambda b: trainer.train_one_step(*b))
    )
    for batch in sampler.batches(cfg.warmup):
        step(batch)
    started = time.perf_counter()
    for batch in sampler.batches(cfg.steps):
        step(batch)
    return (time.perf_counter() - started) / cfg.steps


def time_unlearning(name: str, cfg: StepCostConfig, keep, forget) -> float:
    torch.manual_seed(cfg.seed)
    model = build_agent(name, agent_config(cfg))
    layout = layout_for(name)
    keep_sampler = BatchSampler(keep, cfg.batch_size, layout=layout, seed=cfg.seed)
    forget_sampler = BatchSampler(forget, cfg.batch_size, layout=layout, seed=cfg.seed + 1)
    model.unlearn(keep_sampler, forget_sampler, steps=cfg.warmup, show_progress=False)
    history = model.unlearn(
        keep_sampler, forget_sampler, config=SafeRuleConfig(steps=cfg.steps), show_progress=False
    )
    return history.wall_seconds / cfg.steps


def time_sampling(keep, batch_size: int, layout: str, count: int = 2000) -> float:
    sampler = BatchSampler(keep, batch_size, layout=layout)
    for _ in sampler.batches(100):
        pass
    started = time.perf_counter()
    for _ in sampler.batches(count):
        pass
    return (time.perf_counter() - started) / count


def agent_config(cfg: StepCostConfig) -> dict:
    return {
        "task": "OfflineCarCircle-v0",
        "a_hidden_sizes": cfg.hidden,
        "c_hidden_sizes": cfg.hidden,
        "vae_hidden_sizes": 400,
        "sample_action_num": 10,
        "num_q": 2,
        "num_qc": 2,
        "num_nu": 2,
        "num_chi": 2,
        "episode_len": 300,
        "cost_limit": 10,
    }


def main(cfg: StepCostConfig) -> None:
    torch.set_num_threads(cfg.threads)
    keep, forget = synthetic_split(cfg.seed)
    print(
        f"batch {cfg.batch_size}, hidden {cfg.hidden}, {cfg.steps} timed steps, "
        f"{cfg.threads} torch threads, torch {torch.__version__}"
    )
    print(f"{'agent':<10} {'OSRL train ms':>14} {'unlearn ms':>11} {'ratio':>6} {'sample ms':>10}")
    for name in cfg.agents:
        train = time_training(name, cfg, keep)
        unlearn = time_unlearning(name, cfg, keep, forget)
        sample = time_sampling(keep, cfg.batch_size, layout_for(name))
        print(
            f"{name:<10} {train * 1e3:14.1f} {unlearn * 1e3:11.1f} "
            f"{unlearn / train:6.2f} {sample * 1e3:10.3f}"
        )


if __name__ == "__main__":
    main(pyrallis.parse(config_class=StepCostConfig))
