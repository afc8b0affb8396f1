"""Every defence on one poisoned agent, side by side: one cell of the benchmark grid, printed.

    python benchmarks/defences.py                                  # CarCircle, BCQL, Max Cost 15 %
    python benchmarks/defences.py --agent cpq --ablations "[fixed-beta,no-critic-unlearning]"

An OSRL agent is trained (OSRL's trainer, cached by settings) on the clean file and on the
poisoned file; the poisoned one is repaired by each method from the same checkpoint; retrain trains
a fresh agent on the keep rows for the full training budget. Every policy is evaluated on the same
seeded episodes. The results are the grid's (``benchmarks/results/<profile>/cells/...``), so this
cell is not measured again by ``benchmarks/run.py``; prints the table (normalised reward and cost,
mean ± std, wall time, steps) and writes a bar plot.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from osrl_unlearn.benchmark.grid import ALL_METHODS, GridConfig, execute, plan
from osrl_unlearn.benchmark.report import group_cells, load_results
from osrl_unlearn.cli import run_script
from osrl_unlearn.report import markdown_table, plot_policies


@dataclass
class DefencesConfig:
    """Settings of the defence comparison."""

    task: str = "OfflineCarCircle-v0"
    """dsrl task."""
    agent: str = "bcql"
    """OSRL agent."""
    attack: str = "max-cost"
    """Attack."""
    ratio: float = 0.15
    """Injected share."""
    seed: int = 0
    """Seed of data, training, repairs and evaluation."""
    profile: str = "cpu"
    """Grid profile: training, unlearning and evaluation budgets (see GRID_PROFILES)."""
    methods: List[str] = field(default_factory=lambda: list(ALL_METHODS))
    """Defences to run."""
    ablations: List[str] = field(default_factory=list)
    """Safe-RULE ablations to run too (fixed-beta, no-critic-unlearning, q-ref-0, ...)."""
    results_dir: Optional[str] = None
    """Results folder (default benchmarks/results/<profile>)."""
    plot: str = "defences.png"
    """Bar plot of every policy's normalised cost and reward."""


def main(cfg: DefencesConfig) -> None:
    grid = GridConfig(profile=cfg.profile, tasks=[cfg.task], agents=[cfg.agent],
                      attacks=[cfg.attack], ratios=[cfg.ratio], seeds=[cfg.seed],
                      methods=cfg.methods, ablations=cfg.ablations,
                      results_dir=cfg.results_dir)  # fmt: skip
    jobs = plan(grid)
    execute(grid, jobs)
    cells = group_cells(load_results(jobs[0].results_dir))
    found = cells[(cfg.task, cfg.agent, cfg.seed, cfg.attack, cfg.ratio)]
    order = ["clean", "poisoned", *cfg.methods, *(f"safe-rule+{a}" for a in cfg.ablations)]
    rows = [{**found[p], "policy": p} for p in order if p in found]
    print(f"\n{cfg.agent} on {cfg.task}, {cfg.attack} {cfg.ratio:.0%}, {cfg.profile} profile")
    print(markdown_table(rows))
    plot_policies(rows, Path(cfg.plot), f"{cfg.agent} on {cfg.task}, {cfg.attack} {cfg.ratio:.0%}")
    print(f"plot: {cfg.plot}")


if __name__ == "__main__":
    sys.exit(run_script(main, DefencesConfig))
