"""Does an attack hurt? One OSRL agent trained on the clean file and on each poisoned file,
evaluated in the real environment, side by side.

    python benchmarks/poison_effect.py                          # CarCircle, BCQL, all attacks
    python benchmarks/poison_effect.py --agent cpq --ratios "[0.15]" --attacks "[max-cost]"

Writes the poisoned files next to the clean one in the cache (named by their settings) and
prints a table; everything is
seeded (same settings, same numbers).
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import torch

from osrl_unlearn.cli import run_script
from osrl_unlearn.data import read_hdf5
from osrl_unlearn.evaluation import evaluate
from osrl_unlearn.generate.make_dataset import MakeDatasetConfig, make_dataset
from osrl_unlearn.poison import PoisonConfig, cached_poisoned
from osrl_unlearn.training import TrainSettings, train_agent


@dataclass
class PoisonEffectConfig:
    """Settings of the poison-effect benchmark."""

    dataset: MakeDatasetConfig = field(default_factory=MakeDatasetConfig)
    """The clean dataset (made locally, cached)."""
    attacks: List[str] = field(default_factory=lambda: ["max-cost", "max-reward", "min-reward"])
    """Attacks to apply."""
    ratios: List[float] = field(default_factory=lambda: [0.05, 0.15])
    """Injected shares."""
    train_on: List[str] = field(default_factory=lambda: ["max-cost@0.15"])
    """Poisoned files (attack@ratio) to train and evaluate an agent on, besides the clean file."""
    agent: str = "bcql"
    """OSRL agent to train."""
    train_steps: int = 3000
    """OSRL training steps per agent."""
    hidden: List[int] = field(default_factory=lambda: [128, 128])
    """Hidden sizes of the agent."""
    eval_episodes: int = 20
    """Evaluation episodes per agent."""
    seed: int = 0
    """Seed of poisoning, training and evaluation."""
    threads: int = 2
    """torch threads."""


def main(cfg: PoisonEffectConfig) -> None:
    torch.set_num_threads(cfg.threads)
    clean = make_dataset(cfg.dataset)
    files = {"clean": clean.path}
    for attack in cfg.attacks:
        for ratio in cfg.ratios:
            files[f"{attack}@{ratio:g}"] = cached_poisoned(
                PoisonConfig(
                    dataset=str(clean.path),
                    attack=attack,
                    ratio=ratio,
                    seed=cfg.seed,
                    cache=cfg.dataset.cache,
                )  # fmt: skip
            )
    settings = TrainSettings(
        agent=cfg.agent, steps=cfg.train_steps, hidden=cfg.hidden, seed=cfg.seed
    )
    rows = []
    for name in ["clean", *cfg.train_on]:
        data = read_hdf5(files[name])
        model, _ = train_agent(data, settings)
        result = evaluate(model, data.task, cfg.eval_episodes, seed=cfg.seed + 10_000)
        rows.append((name, result.summary()))
    print(f"\n{cfg.agent} trained {cfg.train_steps} steps, {cfg.eval_episodes} evaluation episodes")
    print(f"{'data':<18} {'reward':>16} {'cost':>16} {'norm. reward':>13} {'norm. cost':>11}")
    for name, s in rows:
        print(
            f"{name:<18} {s['eval/reward']:8.1f} ± {s['eval/reward_std']:5.1f} "
            f"{s['eval/cost']:8.1f} ± {s['eval/cost_std']:5.1f} "
            f"{s['eval/normalized_reward']:13.3f} {s['eval/normalized_cost']:11.2f}"
        )
    print(f"files: {Path(clean.path).parent}")


if __name__ == "__main__":
    sys.exit(run_script(main, PoisonEffectConfig))
