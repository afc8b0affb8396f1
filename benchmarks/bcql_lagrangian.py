"""Does BCQ-Lag's Lagrangian ever engage? Trains BCQ-Lag on the clean `cpu`-profile data and prints,
at intervals, its logged losses, the PID multiplier and the cost critic's value of the policy's own
actions on the batch's states, against the threshold kappa.

    python benchmarks/bcql_lagrangian.py --steps 20000 --every 2500

(docs/profiles.md: on the scripted CarCircle data the cost critic's value of the policy stays below
kappa on data states, so the multiplier stays ~0 whatever the limit or the PID gains.)
"""

import sys
from dataclasses import dataclass, replace

import torch

from osrl_unlearn.agents.checkpoint import build_agent
from osrl_unlearn.benchmark.grid import dataset_config
from osrl_unlearn.cli import run_script
from osrl_unlearn.data import BatchSampler, layout_for, read_hdf5
from osrl_unlearn.generate.make_dataset import make_dataset
from osrl_unlearn.training import make_trainer, profile_settings, training_config


@dataclass
class LagrangianConfig:
    """Settings of the BCQ-Lag Lagrangian probe."""

    task: str = "OfflineCarCircle-v0"
    """Task (the cpu grid profile's clean data)."""
    profile: str = "small"
    """Training profile."""
    steps: int = 20_000
    """Training steps."""
    every: int = 2_500
    """Print every this many steps."""
    seed: int = 0
    """Seed of the agent and the batches."""


class _Last:
    """A logger that keeps the last step's metrics."""

    def store(self, **metrics: float) -> None:
        self.metrics = metrics


def main(cfg: LagrangianConfig) -> None:
    torch.set_num_threads(1)
    data_cfg = replace(dataset_config("cpu", cfg.task), show_progress=False)
    data = read_hdf5(make_dataset(data_cfg).path)
    config = training_config(data, profile_settings(cfg.profile, agent="bcql", seed=cfg.seed))
    torch.manual_seed(cfg.seed)
    model = build_agent("bcql", config)
    last = _Last()
    trainer = make_trainer("fast", "bcql", model, last)
    sampler = BatchSampler(data, config["batch_size"], layout=layout_for("bcql"), seed=cfg.seed,
                           reward_scale=config["reward_scale"], cost_scale=config["cost_scale"])  # fmt: skip
    print(f"kappa (qc_thres) = {model.qc_thres:.3f}")
    for step, batch in enumerate(sampler.batches(cfg.steps), start=1):
        trainer.train_one_step(*batch)
        if step % cfg.every == 0:
            obs = batch[0]
            with torch.no_grad():
                qc1, qc2, _, _ = model.cost_critic.predict(
                    obs, model.actor(obs, model.vae.decode(obs))
                )
            metrics = {k.removeprefix("loss/"): round(v, 3) for k, v in last.metrics.items()}
            print(f"{step:6d} Q_c(s, pi(s)) on batch states {torch.min(qc1, qc2).mean():.3f} "
                  f"batch cost rate {batch[4].mean():.3f} {metrics}", flush=True)  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_script(main, LagrangianConfig))
