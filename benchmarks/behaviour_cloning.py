"""Can a plain imitation of the clean data's actions be safe? OSRL's ``BC`` (a deterministic MLP
actor fitted by mean squared error, OSRL's own ``actor_loss``) on a make-dataset YAML's data,
evaluated at milestones like the agents in ``clean_profiles.py``. A diagnostic for tasks where
BCQ-Lag's behaviour model does not copy the data's safe behaviour: if plain cloning is safe,
the VAE is the bottleneck; if it is not, the data does not teach the avoidance to any imitator.

    python benchmarks/behaviour_cloning.py --dataset benchmarks/results/profiles/data/pg1-controller-lidar-safeonly.yaml \
        --hidden "[256,256]" --label pg1-controller-lidar-safeonly-bc-h256

Rows go to ``benchmarks/results/profiles/<label>.jsonl`` (``docs/profiles.md`` quotes them).
"""

import json
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import List

import pyrallis
import torch
from tqdm import trange

import osrl_unlearn.evaluation as evaluation
from osrl_unlearn.benchmark.competence import competence_threshold
from osrl_unlearn.cli import run_script
from osrl_unlearn.data import read_hdf5
from osrl_unlearn.errors import ConfigError
from osrl_unlearn.generate.make_dataset import MakeDatasetConfig, make_dataset
from osrl_unlearn.tasks import get_task


@dataclass
class BehaviourCloningConfig:
    """Settings of the behaviour-cloning check."""

    dataset: str = ""
    """A make-dataset YAML (the data is made locally and cached)."""
    hidden: List[int] = field(default_factory=lambda: [256, 256])
    """The actor's hidden sizes."""
    batch_size: int = 512
    learning_rate: float = 1e-3
    """OSRL's BC default actor learning rate."""
    milestones: List[int] = field(default_factory=lambda: [5_000, 10_000])
    """Steps at which to evaluate (the last is the training length)."""
    eval_episodes: int = 50
    cost_limit: float = 10.0
    seed: int = 0
    threads: int = 1
    standardise: bool = False
    """Feed the actor observations standardised by the data's mean and std (OSRL's agents take
    them raw, where the accelerometer's and magnetometer's scales dwarf the lidars')."""
    label: str = ""
    """A name for the rows; they go to benchmarks/results/profiles/<label>.jsonl."""


def deterministic_actor(mean: torch.Tensor, std: torch.Tensor):
    """The action rule for OSRL's BC (not one of the four agents :mod:`evaluation` knows), on
    observations standardised by ``mean`` and ``std``."""
    return lambda model: lambda obs: model.actor((obs - mean) / std)


def standardisation(observations: torch.Tensor, standardise: bool):
    """Per-feature mean and std of ``observations`` (0 and 1 when not ``standardise``)."""
    if not standardise:
        return torch.zeros(observations.shape[1]), torch.ones(observations.shape[1])
    return observations.mean(0), observations.std(0).clamp_min(1e-6)


def fit(model, observations: torch.Tensor, actions: torch.Tensor, steps: int, batch_size: int,
        generator: torch.Generator, show_progress: bool = False) -> None:  # fmt: skip
    """``steps`` steps of OSRL's own BC update (``actor_loss`` steps its optimizer) on batches
    drawn uniformly from the rows."""
    for _ in trange(steps, desc="behaviour cloning", mininterval=5, disable=not show_progress):
        rows = torch.randint(len(observations), (batch_size,), generator=generator)
        model.actor_loss(observations[rows], actions[rows])


def main(cfg: BehaviourCloningConfig) -> None:
    from osrl.algorithms import BC

    if not cfg.dataset or not cfg.label:
        raise ConfigError("give --dataset (a make-dataset YAML) and --label (names the rows)")
    if not cfg.milestones or min(cfg.milestones) <= 0:
        raise ConfigError(f"milestones must be positive step counts, got {cfg.milestones}")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    data_cfg = pyrallis.parse(config_class=MakeDatasetConfig, config_path=cfg.dataset, args=[])
    data = read_hdf5(make_dataset(replace(data_cfg, show_progress=False)).path)
    task = get_task(data_cfg.task)
    threshold = competence_threshold(data, cfg.cost_limit)
    model = BC(task.obs_dim, task.act_dim, task.max_action, list(cfg.hidden), task.episode_len)
    model.setup_optimizers(cfg.learning_rate)
    observations = torch.as_tensor(data.observations, dtype=torch.float32)
    mean, std = standardisation(observations, cfg.standardise)
    observations = (observations - mean) / std
    actions = torch.as_tensor(data.actions, dtype=torch.float32)
    generator = torch.Generator().manual_seed(cfg.seed)
    out = Path(__file__).parent / "results" / "profiles" / f"{cfg.label}.jsonl"
    evaluation.batched_policy = deterministic_actor(mean, std)  # for this script's evaluations
    fitted = 0
    for step in sorted(set(cfg.milestones)):
        fit(model, observations, actions, step - fitted, cfg.batch_size, generator, True)
        fitted = step
        result = evaluation.evaluate(model, data_cfg.task, cfg.eval_episodes,
                                     seed=10_000 + cfg.seed, cost_limit=cfg.cost_limit,
                                     show_progress=False)  # fmt: skip
        row = {**asdict(cfg), "agent": "bc", "task": data_cfg.task, "step": step,
               "competence_threshold": threshold, **result.summary()}  # fmt: skip
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"bc {step:6d} steps: {result.format()} (bar {threshold:.3f})", flush=True)


if __name__ == "__main__":
    sys.exit(run_script(main, BehaviourCloningConfig))
