"""Our training step against OSRL's ``train_one_step``, per agent, size and thread count, in one run.

    python benchmarks/train_speed.py                      # small profile and OSRL's defaults, 1 and 2 threads
    python benchmarks/train_speed.py --profiles "[small]" --threads "[1]"

Both steps get the same pre-drawn batches, so the ratio compares the update work alone; one
sampler draw, one Safe-RULE unlearning step (two batches drawn, critic and actor updates) and one
step of a ``relabel`` repair (the default method: its batch draw and training step) are timed
beside them (``relabel/train`` sets the repair's step against ours plus one draw: a training
step as ``train`` runs it). A repair's step is what ``3 * steps`` of it cost beyond ``steps``,
per step; the rest is its set-up, reported apart (paid once per repair). Each figure is the median over
``rounds`` rounds, the rounds of the different runs interleaved so that a busy machine slows
all of them alike.
Targets: ours >= 3x OSRL at ``small``, >= 1.2x at ``osrl``; unlearning <= 1.0x our training step;
sampling <= 0.5 ms.
"""

import copy
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import List

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from osrl_unlearn.agents.checkpoint import build_agent
from osrl_unlearn.cli import run_script
from osrl_unlearn.data import (
    BatchSampler,
    OfflineDataset,
    dataset_stats,
    layout_for,
    unlearning_samplers,
)
from osrl_unlearn.training import PROFILES, make_trainer, profile_settings, training_config
from osrl_unlearn.unlearn.config import RelabelConfig, SafeRuleConfig


@dataclass
class TrainSpeedConfig:
    """Settings of the training-speed benchmark."""

    agents: List[str] = field(default_factory=lambda: ["bcql", "bearl", "cpq", "coptidice"])
    """Agents to time."""
    profiles: List[str] = field(default_factory=lambda: ["small", "osrl"])
    """Training profiles (network and batch sizes) from osrl_unlearn.training.PROFILES."""
    threads: List[int] = field(default_factory=lambda: [1, 2])
    """torch thread counts."""
    rounds: int = 5
    """Timed rounds per step kind (the median is reported)."""
    small_steps: int = 40
    """Steps per round at profiles with batch < 256."""
    large_steps: int = 4
    """Steps per round at larger profiles."""
    seed: int = 0
    """Seed of data and networks."""
    count_operations: bool = True
    """Also count the ATen operations of each step (a second table: the same on any machine)."""


def synthetic_data(seed: int, n: int = 20_000) -> OfflineDataset:
    """CarCircle-shaped transitions (8 observation, 2 action features), a 15 % forget set."""
    import numpy as np

    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 8)).astype(np.float32)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[299::300] = True
    mask = np.zeros(n, dtype=bool)
    mask[-3000:] = True
    return OfflineDataset.from_arrays(
        attrs={"task": "OfflineCarCircle-v0"}, arrays=
        {"observations": obs, "next_observations": np.roll(obs, -1, 0),
         "actions": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
         "rewards": rng.uniform(0, 1, n).astype(np.float32),
         "costs": (rng.uniform(size=n) < 0.2).astype(np.float32),
         "terminals": np.zeros(n, dtype=bool), "timeouts": timeouts, "poison_mask": mask}
    )  # fmt: skip


def build(name: str, profile_name: str, data: OfflineDataset, seed: int):
    """The agent as ``train`` builds it at this profile: OSRL's training config for it (twin Q
    ensembles, reward_scale, ...) with the profile's sizes."""
    torch.manual_seed(seed)
    config = training_config(data, profile_settings(profile_name, agent=name, seed=seed))
    model = build_agent(name, config)
    if name == "coptidice":
        stats = dataset_stats(data)
        model.init_state_propotion = stats.init_state_proportion
        model.observations_std = torch.from_numpy(stats.observations_std)
        model.actions_std = torch.from_numpy(stats.actions_std)
    return model.train()


def measure(name: str, profile_name: str, cfg: TrainSpeedConfig, data: OfflineDataset) -> dict:
    profile = PROFILES[profile_name]
    batch_size = profile["batch_size"]
    steps = cfg.small_steps if batch_size < 256 else cfg.large_steps
    sampler = BatchSampler(data, batch_size, layout=layout_for(name), seed=cfg.seed)
    batches = [sampler.sample() for _ in range(steps)]
    base = build(name, profile_name, data, cfg.seed)
    trainers = {kind: make_trainer(kind, name, copy.deepcopy(base)) for kind in ("osrl", "fast")}
    unlearner = copy.deepcopy(base)
    keep, forget = unlearning_samplers(data, unlearner, batch_size, cfg.seed)
    relabeller = copy.deepcopy(base)

    def train(kind):
        for batch in batches:
            trainers[kind].train_one_step(*batch)

    def repair(agent, config):
        return lambda: agent.unlearn(keep, forget, config=config, show_progress=False)

    def sample():
        for _ in range(steps):
            sampler.sample()

    # each repair twice, for `steps` and for 3 x `steps`: the difference is 2 x `steps` of its
    # steps alone, the rest its set-up (optimizers, relabelling, resets)
    timed = {"osrl": lambda: train("osrl"), "fast": lambda: train("fast"), "sample": sample,
             "unlearn": repair(unlearner, SafeRuleConfig(steps=steps)),
             "unlearn3": repair(unlearner, SafeRuleConfig(steps=3 * steps)),
             "relabel": repair(relabeller, RelabelConfig(steps=steps)),
             "relabel3": repair(relabeller, RelabelConfig(steps=3 * steps))}  # fmt: skip
    for run in timed.values():  # warm-up
        run()
    times = {key: [] for key in timed}
    for _ in range(cfg.rounds):
        for key, run in timed.items():
            started = time.perf_counter()
            run()
            times[key].append((time.perf_counter() - started) * 1000)
    ms = {key: statistics.median(values) for key, values in times.items()}
    result = {key: ms[key] / steps for key in ("osrl", "fast", "sample")}
    for method in ("unlearn", "relabel"):
        result[method] = (ms[f"{method}3"] - ms[method]) / (2 * steps)
        result[f"{method}_setup"] = ms[method] - steps * result[method]
    return result


class OperationCounter(TorchDispatchMode):
    """Counts the ATen operations dispatched while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def counted(run) -> int:
    """ATen operations ``run()`` dispatches."""
    with OperationCounter() as counter:
        run()
    return counter.count


def operations(name: str, profile_name: str, cfg: TrainSpeedConfig, data: OfflineDataset,
               steps: int = 4) -> dict:  # fmt: skip
    """ATen operations per step of OSRL's step, ours (without and with its batch draw), a
    ``relabel`` repair and Safe-RULE (a repair's step: ``2 * steps`` of it beyond ``steps``)."""
    batch_size = PROFILES[profile_name]["batch_size"]
    sampler = BatchSampler(data, batch_size, layout=layout_for(name), seed=cfg.seed)
    batch = sampler.sample()
    base = build(name, profile_name, data, cfg.seed)
    trainers = {kind: make_trainer(kind, name, copy.deepcopy(base)) for kind in ("osrl", "fast")}
    keep, forget = unlearning_samplers(data, base, batch_size, cfg.seed)

    def train(kind, draw):
        for _ in range(steps):
            trainers[kind].train_one_step(*(sampler.sample() if draw else batch))

    def repair(config, count):
        agent = copy.deepcopy(base)
        return lambda: agent.unlearn(keep, forget, config=config(steps=count), show_progress=False)

    runs = {"osrl": lambda: train("osrl", False), "fast": lambda: train("fast", False),
            "train": lambda: train("fast", True)}  # fmt: skip
    for run in runs.values():  # warm-up: first calls set things up once
        run()
    result = {key: counted(run) / steps for key, run in runs.items()}
    for key, config in (("relabel", RelabelConfig), ("unlearn", SafeRuleConfig)):
        repair(config, steps)()
        twice, once = counted(repair(config, 2 * steps)), counted(repair(config, steps))
        result[key] = (twice - once) / steps
    return result


def main(cfg: TrainSpeedConfig) -> None:
    data = synthetic_data(cfg.seed)
    print(
        "ms per step (median of rounds); ratio = OSRL / ours; unlearn = Safe-RULE step, relabel ="
        " relabel repair step (the default), each / ours, with each repair's set-up in ms;"
        " relabel/train = relabel / (ours + sample): against a training step as `train` runs it,"
        " which draws its batch too"
    )
    print(
        "| profile | threads | agent | OSRL | ours | ratio | unlearn | unlearn/ours | set-up "
        "| relabel | relabel/ours | relabel/train | set-up | sample |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for profile_name in cfg.profiles:
        for threads in cfg.threads:
            torch.set_num_threads(threads)
            for name in cfg.agents:
                t = measure(name, profile_name, cfg, data)
                print(f"| {profile_name} | {threads} | {name} | {t['osrl']:.2f} | {t['fast']:.2f} | "
                      f"{t['osrl'] / t['fast']:.2f}x | {t['unlearn']:.2f} | "
                      f"{t['unlearn'] / t['fast']:.2f} | {t['unlearn_setup']:.0f} | "
                      f"{t['relabel']:.2f} | {t['relabel'] / t['fast']:.2f} | "
                      f"{t['relabel'] / (t['fast'] + t['sample']):.2f} | {t['relabel_setup']:.0f} | {t['sample']:.3f} |", flush=True)  # fmt: skip
    if not cfg.count_operations:
        return
    print("\nATen operations per step (counted: the same on any machine); train = ours + its draw")
    print(
        "| profile | agent | OSRL | ours | train | relabel | relabel/train | Safe-RULE | Safe-RULE/train |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for profile_name in cfg.profiles:
        for name in cfg.agents:
            n = operations(name, profile_name, cfg, data)
            print(f"| {profile_name} | {name} | {n['osrl']:.0f} | {n['fast']:.0f} | {n['train']:.0f} | "
                  f"{n['relabel']:.0f} | {n['relabel'] / n['train']:.2f} | {n['unlearn']:.0f} | "
                  f"{n['unlearn'] / n['train']:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_script(main, TrainSpeedConfig))
