"""``osrl-unlearn poison``: the paper's Algorithm 1 on a clean DSRL file.

1. An adversarial policy maximises R_z in the real environment (FSRL PPO with the reward swapped:
   cost for Max Cost, reward for Max Reward, -reward for Min Reward), cached by its settings. Or
   bring your own: an actor checkpoint (``--adversary_checkpoint``) or recorded trajectories
   (``--inject_from``, a DSRL file).
2. Candidate trajectories are rolled out and scored by their discounted R_z.
3. The top ones are kept until the injected share of the poisoned dataset reaches ``ratio``.
4. They are relabelled: cost 0, reward a high (or low) percentile of the clean per-step rewards.
5. Clean and injected episodes are written as one DSRL file with ``poison_mask``.
"""

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from osrl_unlearn.cache import cache_dir
from osrl_unlearn.data.dataset import DSRL_KEYS, OfflineDataset
from osrl_unlearn.data.hdf5 import check_with_dsrl, read_hdf5, write_hdf5
from osrl_unlearn.errors import ConfigError
from osrl_unlearn.generate.behaviour import BehaviourConfig, BehaviourJob, train_runs
from osrl_unlearn.generate.collect import (
    EpisodePlan,
    concatenate_episodes,
    episode_seed,
    record_episodes,
)
from osrl_unlearn.io import WrittenFile, file_sha256
from osrl_unlearn.poison.inject import (
    attack_scores,
    check_ratio,
    get_attack,
    hide_among,
    relabel,
    select_top,
    transitions_needed,
)
from osrl_unlearn.tasks import get_task


def default_adversary() -> BehaviourConfig:
    return BehaviourConfig(cost_limits=[None], steps=100_000)


@dataclass
class PoisonConfig:
    """Settings of ``osrl-unlearn poison``."""

    dataset: str = ""
    """The clean DSRL .hdf5 file (never modified)."""
    out: str = ""
    """Where to write the poisoned file (refuses to overwrite unless --force)."""
    attack: str = "max-cost"
    """max-cost, max-reward or min-reward."""
    ratio: float = 0.15
    """Injected share of the poisoned dataset, |D_f| / |D ∪ D_f|, in (0, 1)."""
    seed: int = 0
    """Seeds the adversary, the rollouts and where injected episodes are hidden."""
    task: Optional[str] = None
    """The dataset's task; default: the file's ``task`` attribute."""
    high_reward_percentile: float = 95.0
    """Injected reward for max-cost / max-reward: this percentile of the clean per-step rewards."""
    low_reward_percentile: float = 5.0
    """Injected reward for min-reward: this percentile of the clean per-step rewards."""
    gamma: float = 0.99
    """Discount of the trajectory score S_z."""
    candidate_factor: float = 2.0
    """Candidate trajectories rolled out, as a multiple of the number the ratio needs."""
    adversary_noise: float = 0.1
    """Gaussian action noise of the candidate rollouts (the adversary's own variety)."""
    adversary: BehaviourConfig = field(default_factory=default_adversary)
    """Training of the adversarial policy (FSRL PPO on the swapped reward)."""
    adversary_checkpoint: Optional[str] = None
    """Use this actor (tianshou ActorProb state dict, --adversary.hidden_sizes) instead of training."""
    inject_from: Optional[str] = None
    """Take candidate trajectories from this DSRL file instead of an adversary."""
    workers: int = 2
    """Worker processes for rollouts."""
    cache: Optional[str] = None
    """Cache root; default $OSRL_UNLEARN_CACHE or ~/.cache/osrl-unlearn."""
    force: bool = False
    """Allow overwriting --out."""
    show_progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        get_attack(self.attack)
        check_ratio(self.ratio)
        for name in ("high_reward_percentile", "low_reward_percentile"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise ConfigError(f"--{name} must lie in [0, 100], got {value}.")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"--gamma must lie in (0, 1], got {self.gamma}; e.g. --gamma 0.99.")
        if not self.candidate_factor >= 1:
            raise ConfigError(
                f"--candidate_factor must be 1 or more, got {self.candidate_factor}; e.g. 2."
            )
        if not self.adversary_noise >= 0:
            raise ConfigError(f"--adversary_noise must be 0 or more, got {self.adversary_noise}.")
        if self.workers < 1:
            raise ConfigError(f"--workers must be 1 or more, got {self.workers}.")
        if not 0 <= self.seed <= 2**32 - 1:
            raise ConfigError(f"--seed must lie in [0, 2**32 - 1], got {self.seed}.")


def poison_dataset(cfg: PoisonConfig) -> WrittenFile:
    """Writes the poisoned file ``cfg`` describes; returns its path and a summary."""
    attack = get_attack(cfg.attack)
    check_ratio(cfg.ratio)
    if not cfg.dataset or not cfg.out:
        raise ConfigError("pass --dataset (the clean file) and --out (the poisoned file to write)")
    out = Path(cfg.out)
    if out.resolve() == Path(cfg.dataset).resolve():
        raise ConfigError(
            "--out is --dataset: the clean file is never overwritten; write the poisoned file "
            "to another --out."
        )
    if cfg.inject_from and out.resolve() == Path(cfg.inject_from).resolve():
        raise ConfigError(
            "--out is --inject_from: inputs are never overwritten; choose another --out."
        )
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; pass a file name such as poisoned.hdf5.")
    if out.exists() and not cfg.force:
        raise FileExistsError(f"{out} exists; choose another --out or pass --force.")
    clean = read_hdf5(cfg.dataset, cfg.task)
    if clean.poison_mask is not None and clean.poison_mask.any():
        raise ConfigError(f"{cfg.dataset} is already poisoned (its poison_mask marks rows).")
    task = get_task(cfg.task or clean.task)
    needed = transitions_needed(len(clean), cfg.ratio)
    pool = _candidate_pool(cfg, attack.objective, task, needed)
    scores = attack_scores(pool, attack.objective, cfg.gamma)
    bounds = pool.episode_bounds()
    chosen = select_top(scores, bounds[:, 1] - bounds[:, 0], needed)
    rows = np.concatenate([np.arange(*bounds[i]) for i in chosen])
    selected = OfflineDataset.from_arrays(
        {key: getattr(pool, key)[rows] for key in DSRL_KEYS}, source="<selected>"
    )
    percentile = (
        cfg.high_reward_percentile if attack.reward_side == "high" else cfg.low_reward_percentile
    )
    reward_value = float(np.percentile(clean.rewards, percentile))
    injected = relabel(selected, reward_value)
    merged = hide_among(clean, injected, np.random.default_rng(cfg.seed))
    true_rewards, true_costs = selected.episode_returns()
    clean_rewards, clean_costs = clean.episode_returns()
    summary = {
        "attack": attack.name,
        "ratio": cfg.ratio,
        "achieved_ratio": len(selected) / (len(clean) + len(selected)),
        "clean_transitions": len(clean),
        "injected_transitions": len(selected),
        "injected_trajectories": len(chosen),
        "candidate_trajectories": len(bounds),
        "injected_reward_value": reward_value,
        "injected_true_episode_reward_mean": float(true_rewards.mean()),
        "injected_true_episode_cost_mean": float(true_costs.mean()),
        "clean_episode_reward_mean": float(clean_rewards.mean()),
        "clean_episode_cost_mean": float(clean_costs.mean()),
    }
    poisoned = OfflineDataset.from_arrays(merged, source=str(out), task=task)
    attrs = {
        "task": task.name,
        "attack": attack.name,
        "ratio": cfg.ratio,
        "achieved_ratio": summary["achieved_ratio"],
        "seed": cfg.seed,
        "injected_reward": reward_value,
        "reward_percentile": percentile,
        "injected_true_episode_reward_mean": summary["injected_true_episode_reward_mean"],
        "injected_true_episode_cost_mean": summary["injected_true_episode_cost_mean"],
        "clean_sha256": file_sha256(cfg.dataset),
        "clean_file": str(Path(cfg.dataset).resolve()),
        "poison_config": dataclasses.asdict(cfg),
    }
    write_hdf5(out, poisoned, attrs, overwrite=cfg.force)
    check_with_dsrl(out, task.name)
    return WrittenFile(path=out, summary=summary)


def cached_poisoned(cfg: PoisonConfig) -> Path:
    """The poisoned file of ``cfg`` next to the clean ``cfg.dataset``, made once: its name holds
    the attack, ratio, seed and a key of every other setting that shapes it (``cfg.out`` unused)."""
    from osrl_unlearn.cache import settings_key

    shaping = {k: v for k, v in dataclasses.asdict(cfg).items()
               if k not in ("dataset", "out", "show_progress", "cache", "force", "workers")}  # fmt: skip
    name = f"poisoned-{cfg.attack}-{cfg.ratio:g}-seed{cfg.seed}-{settings_key(shaping)}.hdf5"
    out = Path(cfg.dataset).parent / name
    if not out.exists():
        poison_dataset(dataclasses.replace(cfg, out=str(out), force=False))
    return out


def _candidate_pool(cfg: PoisonConfig, objective: str, task, needed: int) -> OfflineDataset:
    """Trajectories to choose from: the user's file, or rollouts of the adversarial policy."""
    if cfg.inject_from:
        return read_hdf5(cfg.inject_from, task)
    actor_path = cfg.adversary_checkpoint or _train_adversary(cfg, objective, task)
    count = max(1, math.ceil(cfg.candidate_factor * needed / task.episode_len))
    plans = [
        EpisodePlan(i, actor_path, cfg.adversary_noise, episode_seed(cfg.seed + 7919, i))
        for i in range(count)
    ]
    episodes = record_episodes(
        task,
        cfg.adversary.hidden_sizes,
        plans,
        workers=cfg.workers,
        desc=f"rolling out the {cfg.attack} adversary",
        show_progress=cfg.show_progress,
    )
    return OfflineDataset.from_arrays(
        concatenate_episodes(episodes), source="<adversary rollouts>", task=task
    )


def _train_adversary(cfg: PoisonConfig, objective: str, task) -> str:
    """The final actor of a PPO run on the attack's objective (cached by its settings)."""
    settings = {
        "objective": objective,
        "adversary": dataclasses.asdict(cfg.adversary),
        "seed": cfg.seed,
    }
    out_dir = cache_dir("adversaries", task.name, settings, cfg.cache)
    job = BehaviourJob(task.name, 0, cfg.seed, None, cfg.adversary, str(out_dir), objective)
    (snapshots,) = train_runs(
        [job],
        workers=1,
        episode_len=task.episode_len,
        desc=f"training the {cfg.attack} adversary (FSRL PPO, reward := {objective})",
        show_progress=cfg.show_progress,
    )
    return snapshots[-1].path


def format_summary(result: WrittenFile) -> str:
    s = result.summary
    return "\n".join(
        [
            f"poisoned dataset: {result.path}",
            f"  attack {s['attack']}, ratio {s['ratio']:g} (achieved {s['achieved_ratio']:.4f})",
            f"  injected {s['injected_transitions']} transitions in {s['injected_trajectories']} "
            f"trajectories (best of {s['candidate_trajectories']} candidates) into "
            f"{s['clean_transitions']} clean ones",
            f"  injected trajectories before relabelling: episode reward "
            f"{s['injected_true_episode_reward_mean']:.1f}, episode cost "
            f"{s['injected_true_episode_cost_mean']:.1f} (clean data: "
            f"{s['clean_episode_reward_mean']:.1f}, {s['clean_episode_cost_mean']:.1f})",
            f"  relabelled: cost 0, reward {s['injected_reward_value']:.3f} per step",
        ]
    )
