"""Every defence on one poisoned agent, evaluated in the real environment: the #5 table.

    python benchmarks/defences.py                                  # CarCircle, BCQL, Max Cost 15 %
    python benchmarks/defences.py --agent cpq --unlearn_steps 2000 --methods "[safe-rule,finetune]"

An OSRL agent is trained (OSRL's trainer, cached by settings) on the clean file and on the
poisoned file; the poisoned one is repaired by each method from the same checkpoint; retrain trains
a fresh agent on the keep rows for the full training budget. Every policy is evaluated on the same
seeded episodes. Prints the table (normalised reward and cost, mean ± std, wall time, steps) and
appends one JSON row per policy to ``--out``.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional

import pyrallis
import torch

from osrl_unlearn import SafeRuleConfig, load_agent
from osrl_unlearn.data import BatchSampler, layout_for, read_hdf5
from osrl_unlearn.evaluation import evaluate
from osrl_unlearn.generate.make_dataset import MakeDatasetConfig, make_dataset
from osrl_unlearn.report import markdown_table, plot_policies
from osrl_unlearn.training import cached_run, profile_settings, training_seconds
from osrl_unlearn.unlearn.methods import ABLATIONS, ablation_config, method_config


@dataclass
class DefencesConfig:
    """Settings of the defence comparison."""

    dataset: MakeDatasetConfig = field(default_factory=MakeDatasetConfig)
    """The clean dataset (made locally, cached)."""
    poisoned: str = "poisoned-max-cost-0.15-seed0.hdf5"
    """Poisoned file next to the clean one (osrl-unlearn poison / benchmarks/poison_effect.py)."""
    agent: str = "bcql"
    """OSRL agent."""
    profile: str = "cpu"
    """Training profile (osrl_unlearn.training.PROFILES)."""
    train_steps: Optional[int] = None
    """Training steps (default: the profile's); retrain uses the same."""
    cost_limit: float = 10.0
    """Cost limit of training and normalisation."""
    methods: List[str] = field(
        default_factory=lambda: [
            "safe-rule",
            "reward-only",
            "finetune",
            "trajdeleter",
            "trajdeleter-cost",
            "retrain",
        ]  # fmt: skip
    )
    """Defences to run."""
    ablations: List[str] = field(default_factory=list)
    """Safe-RULE ablations to run too (fixed-beta, no-critic-unlearning, q-ref-0, ...)."""
    unlearn_steps: int = 2000
    """Steps of every repair (not retrain)."""
    batch_size: int = 512
    """Keep and forget batch size of the repairs."""
    eval_episodes: int = 20
    """Evaluation episodes per policy."""
    milestones: List[int] = field(default_factory=lambda: [5000, 10000, 15000])
    """Training steps at which the clean and poisoned agents are evaluated too, when they are
    trained (not when cached): how policy quality grows with the profile's steps."""
    seed: int = 0
    """Seed of training, repairs and evaluation."""
    threads: int = 2
    """torch threads."""
    out: str = "defences.jsonl"
    """Where rows are appended."""
    plot: str = "defences.png"
    """Bar plot of every policy's normalised cost and reward."""


def main(cfg: DefencesConfig) -> None:
    torch.set_num_threads(cfg.threads)
    clean_path = make_dataset(cfg.dataset).path
    clean, poisoned = read_hdf5(clean_path), read_hdf5(clean_path.parent / cfg.poisoned)
    keep, forget = poisoned.split()
    settings = profile_settings(cfg.profile, agent=cfg.agent, steps=cfg.train_steps,
                                cost_limit=cfg.cost_limit, seed=cfg.seed)  # fmt: skip
    rows = []

    def record(policy, label, seconds=None, steps=None, in_table=True):
        result = evaluate(policy, clean.task, cfg.eval_episodes, seed=cfg.seed + 10_000,
                          cost_limit=cfg.cost_limit, show_progress=False)  # fmt: skip
        row = {"policy": label, "agent": cfg.agent, "wall_seconds": seconds, "steps": steps,
               **result.summary(), "settings": asdict(settings)}  # fmt: skip
        if in_table:
            rows.append(row)
        print(f"{label:28s} {result.format()}" + (f", {seconds:.0f} s" if seconds else ""),
              flush=True)  # fmt: skip
        with Path(cfg.out).open("a") as f:
            f.write(json.dumps(row) + "\n")

    for label, data in (("clean", clean), ("poisoned", poisoned)):

        def milestone(step, model, label=label):
            if step in cfg.milestones:
                record(model, f"{label} @ {step} steps", steps=step, in_table=False)

        run = cached_run(data, settings, cfg.dataset.cache, callback=milestone)
        record(load_agent(run), label, training_seconds(run), settings.steps)
    poisoned_run = cached_run(poisoned, settings, cfg.dataset.cache)

    jobs = [(m, method_config(m)) for m in cfg.methods]
    jobs += [(f"safe-rule, {a}", ablation_config(a)) for a in cfg.ablations if a in ABLATIONS]
    for label, config in jobs:
        method = label.split(",")[0]
        agent = load_agent(poisoned_run)
        layout = layout_for(cfg.agent)
        steps = settings.steps if method == "retrain" else cfg.unlearn_steps
        keep_sampler = BatchSampler(keep, cfg.batch_size, layout=layout, seed=cfg.seed)
        forget_sampler = BatchSampler(forget, cfg.batch_size, layout=layout, seed=cfg.seed + 1)
        torch.manual_seed(cfg.seed)
        config = SafeRuleConfig(**{**asdict(config), "training_lr": settings.learning_rate})
        history = agent.unlearn(keep_sampler, forget_sampler, method=method, config=config,
                                steps=steps, show_progress=False)  # fmt: skip
        record(agent, label, history.wall_seconds, history.steps)

    print(f"\n{cfg.agent}, {cfg.profile} profile ({settings.steps} training steps), "
          f"{clean.task}, {cfg.poisoned}, {cfg.eval_episodes} episodes, cost limit {cfg.cost_limit}")  # fmt: skip
    print(markdown_table(rows))
    plot_policies(rows, Path(cfg.plot), f"{cfg.agent} on {clean.task}, {cfg.poisoned}")
    print(f"plot: {cfg.plot}")


if __name__ == "__main__":
    main(pyrallis.parse(config_class=DefencesConfig))
