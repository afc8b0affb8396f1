"""Which CPU training profile gives a usable OSRL agent here? Trains on the clean and on the
poisoned file and evaluates at milestones, so one run shows how quality grows with steps.

    python benchmarks/profiles.py --agent bcql --hidden "[128,128]" --steps 20000
    python benchmarks/profiles.py --agent cpq --milestones "[5000,10000]" --steps 10000

A profile is worth using when the clean agent is safe (normalised cost <= 1) with a reward well
above zero and the poisoned one is not safe: only then is there something to repair. Rows are
appended to ``--out`` (JSON lines) as soon as they are measured.
"""

import json
import sys
from dataclasses import asdict, dataclass, field
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
class ProfilesConfig:
    """Settings of the profile measurement."""

    dataset: MakeDatasetConfig = field(default_factory=MakeDatasetConfig)
    """The clean dataset (made locally, cached)."""
    attack: str = "max-cost"
    """Attack of the poisoned file (made next to the clean one, cached by its settings)."""
    ratio: float = 0.15
    """Injected share of the poisoned file."""
    adversary_steps: int = 100_000
    """Environment steps of the attack's adversarial policy."""
    agent: str = "bcql"
    """OSRL agent."""
    hidden: List[int] = field(default_factory=lambda: [128, 128])
    """Hidden sizes."""
    batch_size: int = 512
    """Batch size."""
    steps: int = 20000
    """Training steps."""
    milestones: List[int] = field(default_factory=lambda: [5000, 10000, 15000, 20000])
    """Steps at which to evaluate."""
    cost_limit: float = 10.0
    """Cost limit the agent is trained for and normalised by."""
    learning_rate: float = 1e-3
    """Learning rate of every optimizer."""
    which: List[str] = field(default_factory=lambda: ["clean", "poisoned"])
    """Which files to train on."""
    eval_episodes: int = 20
    """Evaluation episodes per milestone."""
    seed: int = 0
    """Seed of training and evaluation."""
    threads: int = 1
    """torch threads."""
    out: str = "profiles.jsonl"
    """Where rows are appended."""


def main(cfg: ProfilesConfig) -> None:
    torch.set_num_threads(cfg.threads)
    clean = make_dataset(cfg.dataset)
    poison = PoisonConfig(dataset=str(clean.path), attack=cfg.attack, ratio=cfg.ratio,
                          seed=cfg.seed, cache=cfg.dataset.cache)  # fmt: skip
    poison.adversary.steps = cfg.adversary_steps
    files = {"clean": clean.path, "poisoned": cached_poisoned(poison)}
    settings = TrainSettings(agent=cfg.agent, steps=cfg.steps, batch_size=cfg.batch_size,
                             hidden=cfg.hidden, cost_limit=cfg.cost_limit, seed=cfg.seed,
                             learning_rate=cfg.learning_rate)  # fmt: skip
    for which in cfg.which:
        data = read_hdf5(files[which])

        def at_milestone(step, model, which=which, task=data.task):
            if step not in cfg.milestones:
                return
            result = evaluate(model, task, cfg.eval_episodes, seed=cfg.seed + 10_000,
                              cost_limit=cfg.cost_limit, show_progress=False)  # fmt: skip
            row = {"data": which, "step": step, **asdict(settings), **result.summary()}
            print(f"{which:9s} {step:6d} steps: {result.format()}", flush=True)
            with Path(cfg.out).open("a") as f:
                f.write(json.dumps(row) + "\n")

        train_agent(data, settings, callback=at_milestone, show_progress=False)


if __name__ == "__main__":
    sys.exit(run_script(main, ProfilesConfig))
