"""Load an OSRL run folder, unlearn part of its data, save the repaired run, all through the API.

    python examples/unlearn_osrl_run.py --dataset clean.hdf5 --agent bcql --work_dir runs/example

1. Trains an OSRL agent briefly with OSRL's own trainer, and writes its run folder with fsrl's
   logger exactly as OSRL's ``examples/train/train_<algo>.py`` does (``config.yaml`` +
   ``checkpoint/model.pt``). Skip this with ``--run_dir`` to start from a run you already have.
2. ``load_agent(run_dir)`` rebuilds it as osrl-unlearn's subclass.
3. ``agent.unlearn(keep, forget)``: the forget set is the file's ``poison_mask`` when it has one
   (``osrl-unlearn poison`` writes it); a clean file stands in its costliest episodes, so the
   example runs before any attack exists.
4. ``save_run`` writes the repaired agent as a new OSRL run folder (the input is never touched).
5. ``evaluate`` rolls the policy out before and after unlearning on the same seeded episodes.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from osrl_unlearn import RelabelConfig, load_agent, save_run
from osrl_unlearn.agents.checkpoint import read_config
from osrl_unlearn.cli import run_script
from osrl_unlearn.data import OfflineDataset, read_hdf5, unlearning_samplers
from osrl_unlearn.evaluation import evaluate
from osrl_unlearn.training import TrainSettings, train_agent
from osrl_unlearn.unlearn.metadata import unlearning_metadata


@dataclass
class ExampleConfig:
    """Settings of the example."""

    dataset: str = ""
    """A DSRL .hdf5 file (``osrl-unlearn make-dataset --out clean.hdf5`` makes one)."""
    agent: str = "bcql"
    """bcql, bearl, cpq or coptidice."""
    work_dir: str = "runs/example"
    """Where the OSRL run and the repaired run are written (must not exist yet)."""
    run_dir: Optional[str] = None
    """An existing OSRL run folder to unlearn from instead of training one."""
    train_steps: int = 200
    """OSRL training steps for the run of step 1."""
    unlearn_steps: int = 200
    """Unlearning steps."""
    hidden: List[int] = field(default_factory=lambda: [64, 64])
    """Hidden sizes of the agent trained in step 1."""
    batch_size: int = 256
    """Transitions per batch."""
    forget_episodes: float = 0.1
    """Without a poison mask: the share of costliest episodes used as the forget set."""
    eval_episodes: int = 10
    """Episodes evaluated before and after unlearning (same seeds); 0 skips evaluation."""
    seed: int = 0
    """Seed of training, unlearning and evaluation."""


def train_osrl_run(cfg: ExampleConfig, data: OfflineDataset, run_parent: Path) -> Path:
    """Step 1, the way OSRL's training scripts do it (OSRL's config and fsrl logger)."""
    settings = TrainSettings(
        agent=cfg.agent, steps=cfg.train_steps, batch_size=cfg.batch_size, hidden=cfg.hidden,
        seed=cfg.seed,
    )  # fmt: skip
    _, run_dir = train_agent(data, settings, run_parent, run_name="osrl_run")
    return run_dir


def forget_mask(data: OfflineDataset, share: float) -> np.ndarray:
    """The poison mask, or (for a clean file) the costliest ``share`` of episodes."""
    if data.poison_mask is not None:
        return data.poison_mask
    bounds = data.episode_bounds()
    _, costs = data.episode_returns()
    chosen = np.argsort(-costs, kind="stable")[: max(1, int(len(costs) * share))]
    mask = np.zeros(len(data), dtype=bool)
    for start, end in bounds[chosen]:
        mask[start:end] = True
    return mask


def main(cfg: ExampleConfig) -> Path:
    work = Path(cfg.work_dir)
    data = read_hdf5(cfg.dataset)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else train_osrl_run(cfg, data, work)
    agent = load_agent(run_dir)
    if cfg.eval_episodes:
        before = evaluate(agent, data.task, cfg.eval_episodes, seed=cfg.seed + 10_000)
        print(f"before unlearning: {before.format()}")
    data.poison_mask = forget_mask(data, cfg.forget_episodes)
    keep, forget = unlearning_samplers(data, agent, cfg.batch_size, cfg.seed)
    torch.manual_seed(cfg.seed)
    unlearn_config = RelabelConfig(steps=cfg.unlearn_steps)  # the default method, relabel
    history = agent.unlearn(keep, forget, config=unlearn_config)
    out = save_run(
        agent,
        work / "repaired",
        {**read_config(run_dir), "agent": cfg.agent},
        unlearning_metadata("relabel", unlearn_config, history, data.split()[1], str(run_dir)),
    )
    first = history.metrics[0]
    print(
        f"unlearned {len(forget)} transitions in {history.steps} steps "
        f"({history.wall_seconds:.1f} s): forget rows relabelled cost {first['relabel/cost']:g}, "
        f"reward {first['relabel/reward']:.3g}\nrepaired run: {out}"
    )
    if cfg.eval_episodes:
        after = evaluate(load_agent(out), data.task, cfg.eval_episodes, seed=cfg.seed + 10_000)
        print(f"after unlearning:  {after.format()}")
    return out


if __name__ == "__main__":
    sys.exit(run_script(main, ExampleConfig))
