"""``osrl-unlearn make-dataset``: a DSRL-format dataset made locally from behaviour policies.

Pipeline: train behaviour policies (:mod:`.behaviour`, cached), roll their snapshots out with
several levels of action noise (:mod:`.collect`), write the DSRL file atomically into the cache
folder keyed by every setting, and summarise the episode reward / cost spread (JSON and a PNG).
"""

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
import pyrallis

from osrl_unlearn.cache import cache_dir
from osrl_unlearn.data.dataset import OfflineDataset
from osrl_unlearn.data.hdf5 import check_with_dsrl, read_hdf5, write_hdf5
from osrl_unlearn.errors import ConfigError
from osrl_unlearn.generate.behaviour import (
    BehaviourConfig,
    BehaviourJob,
    Snapshot,
    train_runs,
)
from osrl_unlearn.generate.clone import CloneConfig, train_clone
from osrl_unlearn.generate.collect import (
    EpisodePlan,
    concatenate_episodes,
    episode_seed,
    record_episodes,
)
from osrl_unlearn.generate.controller import controller_defaults, make_controllers
from osrl_unlearn.io import WrittenFile, atomic_path
from osrl_unlearn.tasks import DEFAULT_COST_LIMIT, get_task

DATASET_FILE = "dataset.hdf5"


@dataclass
class ControllerConfig:
    """Scripted behaviour: one controller per radius x (x limit x) speed on the circle tasks, per
    clearance x speed on PointGoal1 (see .controller); unset settings take the task's defaults
    (``CONTROLLER_DEFAULTS``)."""

    radii: Optional[List[float]] = None
    """Circle radii followed (CarCircle's circle has radius 7, PointCircle1's 1.5)."""
    speeds: Optional[List[float]] = None
    """CarCircle: forward commands (share of the top speed); PointCircle1, PointGoal1: m/s."""
    x_limits: Optional[List[float]] = None
    """PointCircle1 only: bounds on the aim point's |x| (the cost starts at |x| > 1.125)."""
    clearances: Optional[List[float]] = None
    """PointGoal1 only: distance kept from each hazard's edge (m); a negative one drives through them."""
    sensing: Optional[str] = None
    """PointGoal1 only: ``state`` (default: the simulator's positions) or ``lidar`` (the recorded
    observation's lidars, which an agent trained on the data sees too)."""
    steering_gain: Optional[float] = None
    """PointGoal1 only: steering per radian of heading error (default 10: saturated, nearly
    bang-bang; a lower gain gives a smoother rule, easier to imitate)."""
    speed_gain: Optional[float] = None
    """PointGoal1 only: throttle per m/s of speed error (default 20)."""

    def for_task(self, task_name: str) -> "ControllerConfig":
        """These settings with the unset ones taken from ``task_name``'s defaults."""
        defaults = controller_defaults(task_name)
        return ControllerConfig(**{key: defaults.get(key) if value is None else value
                                   for key, value in asdict(self).items()})  # fmt: skip

    def controllers(self, task_name: str) -> list:
        full = self.for_task(task_name)
        return make_controllers(task_name, full.radii, full.speeds, full.x_limits,
                                full.clearances, full.sensing, full.steering_gain,
                                full.speed_gain)  # fmt: skip


@dataclass
class MakeDatasetConfig:
    """Settings of ``osrl-unlearn make-dataset`` (every one of them keys the cache)."""

    task: str = "OfflineCarCircle-v0"
    """dsrl task id, e.g. OfflineCarCircle-v0 or OfflinePointCircle1Gymnasium-v0."""
    seed: int = 0
    """Seeds behaviour training and every recorded episode: same seed, same file."""
    episodes: int = 300
    """Episodes to record, spread evenly over the behaviour snapshots and noise levels."""
    action_noise: List[float] = field(default_factory=lambda: [0.0, 0.3])
    """Std of the Gaussian noise added to the behaviour actions; one level per episode in turn."""
    action_noise_correlation: float = 0.0
    """Correlation of the noise from one step to the next (0: independent draws; 0.95: a push
    held for ~20 steps, an Ornstein-Uhlenbeck process of the same std), so that noisy episodes
    drift off the behaviour's path and record its way back."""
    behaviour_source: str = "ppo"
    """``ppo``: behaviour policies trained by FSRL's PPO-Lag, as DSRL made its data (minutes);
    ``controller``: scripted controllers, no training (CarCircle, PointCircle1, PointGoal1);
    ``clone``: neural policies learnt from those controllers by DAgger (:mod:`.clone`), which an
    agent can represent where it cannot fit the controllers' sharp rules."""
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)
    """How the PPO behaviour policies are trained (``behaviour_source: ppo``)."""
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    """The scripted controllers (``behaviour_source: controller``, and the experts of
    ``clone``)."""
    clone: CloneConfig = field(default_factory=CloneConfig)
    """How each controller is distilled into a neural policy (``behaviour_source: clone``)."""
    cost_limit: float = DEFAULT_COST_LIMIT
    """Episode cost limit used in the printed spread (share of episodes within the limit)."""
    workers: int = 2
    """Worker processes for training and collection (part of the settings: see cache_settings)."""
    out: Optional[str] = None
    """Also copy the dataset here (refuses to overwrite an existing file unless --force)."""
    cache: Optional[str] = None
    """Cache root; default $OSRL_UNLEARN_CACHE or ~/.cache/osrl-unlearn."""
    force: bool = False
    """Regenerate even if the cache holds this dataset; allow overwriting --out."""
    show_progress: bool = True
    """Show progress bars."""

    def cache_settings(self) -> dict:
        """The settings that determine the file's content (not where it is copied, nor how)."""
        settings = asdict(self)
        # ``workers`` stays: Bullet-Safety-Gym's reset is not history-free (an episode differs
        # with the episodes the same env instance ran before), and workers split the episodes.
        for key in ("out", "cache", "force", "show_progress", "cost_limit"):
            settings.pop(key)
        if not self.action_noise_correlation:  # files made before it existed keep their key
            settings.pop("action_noise_correlation")
        # Only the chosen source's settings shape the file; a PPO dataset keeps the key it had
        # before controllers existed, so cached datasets stay valid.
        if self.behaviour_source != "clone":  # files made before clones keep their key
            settings.pop("clone")
        if self.behaviour_source == "ppo":
            settings.pop("behaviour_source")
            settings.pop("controller")
        else:
            settings.pop("behaviour")
            # settings a task's controllers lack (unset, no default) are left out: the files
            # keep the keys they had before the others existed
            full = asdict(self.controller.for_task(self.task))
            settings["controller"] = {
                key: value for key, value in full.items() if value is not None
            }
        return settings


def make_dataset(cfg: MakeDatasetConfig) -> WrittenFile:
    """Makes (or reuses from the cache) the dataset ``cfg`` describes; returns its path and spread."""
    task = get_task(cfg.task)
    if cfg.episodes <= 0:
        raise ConfigError(f"episodes must be positive, got {cfg.episodes}")
    if not cfg.action_noise or any(n < 0 for n in cfg.action_noise):
        raise ConfigError(
            f"action_noise needs one or more non-negative levels, got {cfg.action_noise}"
        )
    if not 0.0 <= cfg.action_noise_correlation < 1.0:
        raise ConfigError(
            f"action_noise_correlation must be in [0, 1), got {cfg.action_noise_correlation}: "
            "0 draws the noise independently per step, 0.95 holds a push for ~20 steps"
        )
    if cfg.behaviour_source not in ("ppo", "controller", "clone"):
        raise ConfigError(
            f"behaviour_source must be ppo, controller or clone, got {cfg.behaviour_source!r}"
        )
    if cfg.behaviour_source == "clone":
        counts = ("iterations", "first_episodes", "episodes_per_iteration", "steps", "batch_size")
        small = [f"clone.{key} = {getattr(cfg.clone, key)}" for key in counts
                 if getattr(cfg.clone, key) < 1]  # fmt: skip
        if small or not cfg.clone.learning_rate > 0:
            raise ConfigError(
                f"{', '.join(small) or f'clone.learning_rate = {cfg.clone.learning_rate}'}: "
                "the DAgger settings must be 1 or more (the learning rate above 0)"
            )
    if cfg.behaviour_source in ("controller", "clone"):
        if not cfg.controller.controllers(task.name):
            raise ConfigError(
                "controller.radii (PointGoal1: controller.clearances), controller.speeds and "
                "PointCircle1's controller.x_limits need one value or more"
            )
    folder = cache_dir("datasets", task.name, cfg.cache_settings(), cfg.cache)
    path = folder / DATASET_FILE
    if path.is_file() and (folder / "summary.json").is_file() and not cfg.force:
        summary = json.loads((folder / "summary.json").read_text())
        summary.update(
            spread_summary(read_hdf5(path, task), cfg.cost_limit), reused_from_cache=True
        )
    else:
        summary = _generate(cfg, task, folder)
    if cfg.out is not None:
        with atomic_path(cfg.out, overwrite=cfg.force) as tmp:
            shutil.copyfile(path, tmp)
    return WrittenFile(path=path, summary=summary)


def _generate(cfg: MakeDatasetConfig, task, folder: Path) -> dict:
    started = time.perf_counter()
    if cfg.behaviour_source == "controller":
        controllers = cfg.controller.controllers(task.name)
        policies = [{"controller": c} for c in controllers]
        sources = [c.source() for c in controllers]
        kind = "goal" if task.name == "OfflinePointGoal1Gymnasium-v0" else "circle"
        generator = f"scripted {kind} controllers + action noise"
    elif cfg.behaviour_source == "clone":
        controllers = cfg.controller.controllers(task.name)
        policies = [{"actor_path": str(_clone_of(cfg, task, c))} for c in controllers]
        sources = [{**c.source(), "label": f"DAgger clone of {c.source()['label']}"}
                   for c in controllers]  # fmt: skip
        generator = "DAgger clones of scripted controllers + action noise"
    else:
        snapshots = _behaviour_snapshots(cfg, task.name)
        policies = [{"actor_path": snapshot.path} for snapshot in snapshots]
        sources = [{"label": "PPO (no cost)" if s.cost_limit is None
                    else f"PPO-Lag, limit {s.cost_limit:g}", "cost_limit": s.cost_limit,
                    "epoch": s.epoch} for s in snapshots]  # fmt: skip
        generator = "FSRL PPO-Lag behaviour snapshots + action noise"
    trained = time.perf_counter()
    plans = [
        EpisodePlan(
            index=i,
            actor_path=policies[i % len(policies)].get("actor_path", ""),
            noise=cfg.action_noise[(i // len(policies)) % len(cfg.action_noise)],
            noise_correlation=cfg.action_noise_correlation,
            seed=episode_seed(cfg.seed, i),
            controller=policies[i % len(policies)].get("controller"),
            actor_kind="clone" if cfg.behaviour_source == "clone" else "fsrl",
        )
        for i in range(cfg.episodes)
    ]
    episodes = record_episodes(
        task,
        cfg.clone.hidden_sizes if cfg.behaviour_source == "clone" else cfg.behaviour.hidden_sizes,
        plans,
        workers=cfg.workers,
        desc=f"recording {task.name}",
        show_progress=cfg.show_progress,
    )
    attrs = {
        "task": task.name,
        "seed": cfg.seed,
        "generator": f"osrl-unlearn make-dataset ({generator})",
        "generator_config": cfg.cache_settings(),
    }
    dataset = OfflineDataset.from_arrays(
        concatenate_episodes(episodes), attrs=attrs, source=str(folder / DATASET_FILE), task=task
    )
    collected = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    write_hdf5(folder / DATASET_FILE, dataset, overwrite=True)
    check_with_dsrl(folder / DATASET_FILE, task.name)
    summary = spread_summary(dataset, cfg.cost_limit)
    summary.update(
        behaviour_seconds=round(trained - started, 1),
        collection_seconds=round(collected - trained, 1),
        total_seconds=round(time.perf_counter() - started, 1),
        behaviour_policies=len(policies),
        reused_from_cache=False,
    )
    summary["episode_sources"] = [
        {**sources[i % len(sources)], "noise": plans[i].noise} for i in range(cfg.episodes)
    ]
    with atomic_path(folder / "summary.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    with atomic_path(folder / "config.yaml", overwrite=True) as tmp:
        tmp.write_text(pyrallis.dump(cfg))
    plot_spread(dataset, summary, cfg.cost_limit, folder / "spread.png")
    return summary


def _clone_of(cfg: MakeDatasetConfig, task, controller) -> Path:
    """The DAgger clone of ``controller`` (trained once, then read from the cache)."""
    settings = {"clone": asdict(cfg.clone), "controller": controller.source(), "seed": cfg.seed}
    out = cache_dir("behaviour", task.name, settings, cfg.cache) / "clone.pt"
    return train_clone(task, controller, cfg.clone, cfg.seed, out, cfg.show_progress)


def _behaviour_snapshots(cfg: MakeDatasetConfig, task_name: str) -> list[Snapshot]:
    """Every snapshot of every behaviour run, training the runs that are not cached yet."""
    behaviour_settings = {"behaviour": asdict(cfg.behaviour), "seed": cfg.seed}
    root = cache_dir("behaviour", task_name, behaviour_settings, cfg.cache)
    jobs = [
        BehaviourJob(task_name, run, cfg.seed + run, limit, cfg.behaviour, str(root / f"run{run}"))
        for run, limit in enumerate(cfg.behaviour.cost_limits)
    ]
    runs = train_runs(
        jobs,
        workers=cfg.workers,
        episode_len=get_task(task_name).episode_len,
        desc="training {} behaviour policies (FSRL PPO-Lag)",
        show_progress=cfg.show_progress,
    )
    return [snapshot for snapshots in runs for snapshot in snapshots]


def spread_summary(dataset: OfflineDataset, cost_limit: float) -> dict:
    """Episode reward / cost spread of a dataset, as numbers a person can compare with DSRL's."""
    rewards, costs = dataset.episode_returns()

    def stats(values: np.ndarray) -> dict:
        q = np.percentile(values, [0, 25, 50, 75, 100])
        return {
            k: round(float(v), 2)
            for k, v in zip(("min", "p25", "median", "p75", "max"), q, strict=False)
        }

    return {
        "task": dataset.attrs.get("task"),
        "transitions": len(dataset),
        "episodes": len(rewards),
        "episode_reward": stats(rewards),
        "episode_cost": stats(costs),
        "cost_limit": cost_limit,
        "episodes_within_cost_limit": int((costs <= cost_limit).sum()),
        "episodes_above_cost_limit": int((costs > cost_limit).sum()),
    }


def format_summary(path: Path, summary: dict) -> str:
    """The spread as a few aligned lines for the terminal."""
    r, c = summary["episode_reward"], summary["episode_cost"]
    lines = [
        f"dataset: {path}",
        f"  {summary['transitions']} transitions in {summary['episodes']} episodes",
        "                 min      p25   median      p75      max",
        "  reward  " + "".join(f"{r[k]:9.1f}" for k in ("min", "p25", "median", "p75", "max")),
        "  cost    " + "".join(f"{c[k]:9.1f}" for k in ("min", "p25", "median", "p75", "max")),
        f"  episodes with cost <= {summary['cost_limit']:g}: {summary['episodes_within_cost_limit']}, "
        f"above: {summary['episodes_above_cost_limit']}",
    ]
    if summary.get("reused_from_cache"):
        lines.append("  (reused from the cache; --force regenerates)")
    else:
        lines.append(
            f"  took {summary['total_seconds']:.0f} s: behaviour policies "
            f"{summary['behaviour_seconds']:.0f} s, recording {summary['collection_seconds']:.0f} s"
        )
    return "\n".join(lines)


def plot_spread(dataset: OfflineDataset, summary: dict, cost_limit: float, out: Path) -> Path:
    """Scatter of episode cost against reward, coloured by behaviour policy, cost limit drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rewards, costs = dataset.episode_returns()
    sources = summary["episode_sources"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label in dict.fromkeys(s["label"] for s in sources):
        rows = [i for i, s in enumerate(sources) if s["label"] == label]
        ax.scatter(costs[rows], rewards[rows], s=12, alpha=0.7, label=label)
    ax.axvline(cost_limit, color="red", linestyle="--", label=f"cost limit {cost_limit:g}")
    ax.set_xlabel("episode cost")
    ax.set_ylabel("episode reward")
    ax.set_title(f"{summary['task']}: {summary['episodes']} episodes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out
