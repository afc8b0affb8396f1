"""`relabel`'s settings measured on the grid's own poisoned agents: which variant repairs?

    python benchmarks/relabel_variants.py --variants "[actor-keep,cost-x10]" --workers 2
    python benchmarks/relabel_variants.py --agents "[bcql]" --attacks "[max-cost]" --variants "[default]"
    python benchmarks/relabel_variants.py --variants "[default]" --steps 2000 --removal false

Each variant is a set of `RelabelConfig` overrides (VARIANTS). For every attacked cell and seed of
the chosen grid profile, the cached poisoned agent (the grid's, same settings) is repaired with the
variant for the grid's repair budget and evaluated on the grid's seeded episodes. Results go to
`benchmarks/results/<profile>-relabel-variants/<cell>/<variant>.json` (measured once per variant
config); the table printed compares each variant with the grid's own `relabel` and `retrain`
results where those exist. No environment is used by a repair; evaluation is after.
"""

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from osrl_unlearn.benchmark.grid import GridConfig, Job, plan
from osrl_unlearn.cli import run_script
from osrl_unlearn.io import write_json
from osrl_unlearn.unlearn.methods import repair_steps

VARIANTS: Dict[str, Dict[str, Any]] = {
    "default": {},
    "actor-keep": {"actor": "keep"},
    "shrink-perturb": {"actor": "shrink-perturb"},
    "cost-x10": {"cost_label": 10.0},
    "largest-step": {"forget_cost": "largest-step"},
    "behaviour-keep": {"behaviour_rows": "keep"},
    "constraint-keep": {"constraint_rows": "keep"},
    "actor-keep-rows": {"actor_rows": "keep"},
    "forget-half": {"forget_share": 0.5},
    "cost-to-go": {"cost_to_go": True},
    "cost-to-go+actor-keep": {"cost_to_go": True, "actor": "keep"},
    "gated": {"actor_objective": "gated"},
    "gated+actor-keep": {"actor_objective": "gated", "actor": "keep"},
    "imitate": {"imitate_steps": 2000},
    "imitate+largest-step": {"imitate_steps": 2000, "forget_cost": "largest-step"},
    "cost-critic-reset": {"cost_critic": "reset"},
    "critics-reset": {"cost_critic": "reset", "reward_critic": "reset"},
    "fresh": {"start": "fresh"},
    "fresh+largest-step": {"start": "fresh", "forget_cost": "largest-step"},
    "gated+cost-critic-reset": {"actor_objective": "gated", "cost_critic": "reset"},
    "imitate+cost-critic-reset": {"imitate_steps": 2000, "cost_critic": "reset"},
    "keep-only": {"forget_share": 0.0},
    "keep-only+cost-critic-reset": {"forget_share": 0.0, "cost_critic": "reset"},
    "fresh+keep-only": {"start": "fresh", "forget_share": 0.0},
    "vae-reset": {"behaviour_model": "reset", "behaviour_rows": "keep"},
    "vae-keep": {"behaviour_model": "keep", "behaviour_rows": "all"},
}
"""Named `RelabelConfig` overrides, on top of the defaults (``vae-keep`` is the default before
BCQ-Lag's VAE was relearnt; with 'auto', ``vae-reset`` is the default for BCQ-Lag)."""


@dataclass
class VariantsConfig:
    """Settings of the relabel variant comparison."""

    variants: List[str] = field(default_factory=lambda: ["actor-keep", "cost-x10"])
    """Variants to measure (keys of VARIANTS)."""
    profile: str = "cpu"
    """Grid profile whose cells, agents and budgets are used."""
    tasks: List[str] = field(default_factory=lambda: ["OfflineCarCircle-v0"])
    agents: List[str] = field(default_factory=lambda: ["bcql"])
    attacks: List[str] = field(default_factory=lambda: ["max-cost", "max-reward"])
    ratios: List[float] = field(default_factory=lambda: [0.05, 0.15])
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    workers: int = 1
    """Repairs run at once (processes of one torch thread)."""
    steps: Optional[int] = None
    """Repair steps (default: the variant's own, at most the grid's budget); results are then
    named <variant>@<steps>."""
    removal: bool = True
    """Run the grid's removal check on each repaired policy (keep-only and poisoned-data
    continuations, the grid's budgets)."""
    results_dir: Optional[str] = None
    """Default benchmarks/results/<profile>-relabel-variants."""
    grid_results_dir: Optional[str] = None
    """The grid run whose `relabel` and `retrain` results the table compares with (default
    benchmarks/results/<profile>)."""


@dataclass
class VariantJob:
    job: Job
    variant: str
    results_dir: str
    removal: bool = True
    steps: Optional[int] = None

    @property
    def name(self) -> str:
        return self.variant if self.steps is None else f"{self.variant}@{self.steps}"

    @property
    def path(self) -> Path:
        cell = Path(self.job.folder).relative_to(Path(self.job.results_dir) / "cells")
        return Path(self.results_dir) / cell / f"{self.name}.json"


def relabel_config(variant: str, learning_rate: Optional[float]):
    from osrl_unlearn.unlearn.config import RelabelConfig

    overrides = {}
    for part in variant.split("+") if variant not in VARIANTS else [variant]:
        overrides.update(VARIANTS[part])
    return RelabelConfig(learning_rate=learning_rate, **overrides)


def measure(work: VariantJob, progress=lambda n: None) -> Dict[str, Any]:
    import torch

    from osrl_unlearn.agents.checkpoint import load_agent
    from osrl_unlearn.data import read_hdf5, unlearning_samplers
    from osrl_unlearn.evaluation import evaluate
    from osrl_unlearn.training import cached_run

    job, settings = work.job, work.job.settings
    config = relabel_config(work.variant, settings.learning_rate)
    steps = repair_steps("relabel", config, job.unlearn_steps, settings.steps)
    steps = steps if work.steps is None else work.steps
    wanted = {"unlearning_config": asdict(config), "measured_with": job.measured_with()}
    if work.steps is not None:
        wanted["repair_steps"] = steps
    try:
        recorded = json.loads(work.path.read_text())
        if all(recorded.get(k) == v for k, v in json.loads(json.dumps(wanted)).items()) and (
            "removal" in recorded or not work.removal
        ):
            progress(1)
            return recorded
    except (OSError, ValueError):
        pass
    data = read_hdf5(job.poisoned_path)
    agent = load_agent(cached_run(data, settings, job.cache, show_progress=False))
    keep, forget = unlearning_samplers(data, agent, settings.batch_size, job.seed)
    torch.manual_seed(job.seed)
    history = agent.unlearn(keep, forget, config=config, steps=steps,
                            show_progress=False)  # fmt: skip
    result = evaluate(agent, job.task, job.eval_episodes, seed=job.seed + 10_000,
                      cost_limit=settings.cost_limit, show_progress=False)  # fmt: skip
    payload = {"variant": work.variant, "wall_seconds": history.wall_seconds,
               "steps": history.steps, **result.summary(), **wanted,
               "final_metrics": history.last()}  # fmt: skip
    if work.removal:
        from osrl_unlearn.benchmark.removal import removal_check

        payload["removal"] = removal_check(
            agent, data, steps, job.removal_poison_steps,
            lambda trained: evaluate(trained, job.task, job.eval_episodes, seed=job.seed + 10_000,
                                     cost_limit=settings.cost_limit,
                                     show_progress=False).summary(),
            batch_size=settings.batch_size, seed=job.seed, learning_rate=settings.learning_rate,
        )  # fmt: skip
    write_json(work.path, payload)
    progress(1)
    return payload


def removal_costs(result: Dict[str, Any]) -> tuple:
    """Normalised cost after the removal check's keep-only and poisoned continuations (nan
    where not measured)."""
    removal = result.get("removal") or {}
    return tuple(removal.get(k, {}).get("eval/normalized_cost", float("nan"))
                 for k in ("keep_only", "poisoned"))  # fmt: skip


def main(cfg: VariantsConfig) -> None:
    from osrl_unlearn.parallel import run_jobs

    grid = GridConfig(profile=cfg.profile, tasks=cfg.tasks, agents=cfg.agents,
                      attacks=cfg.attacks, ratios=cfg.ratios, seeds=cfg.seeds,
                      results_dir=cfg.grid_results_dir, show_progress=False)  # fmt: skip
    jobs = [j for j in plan(grid) if j.attack is not None]
    out = cfg.results_dir or f"benchmarks/results/{cfg.profile}-relabel-variants"
    work = [VariantJob(j, v, out, cfg.removal, cfg.steps) for v in cfg.variants for j in jobs]
    results = run_jobs(measure, work, workers=cfg.workers, total=len(work),
                       desc="relabel variants", unit="repair")  # fmt: skip
    rows: Dict[tuple, Dict[str, List[float]]] = {}
    for w, r in zip(work, results, strict=False):
        cell = (w.job.task, w.job.agent, w.job.attack, w.job.ratio)
        rows.setdefault(cell, {}).setdefault(w.name, []).append(
            (r["eval/normalized_cost"], r["eval/normalized_reward"], *removal_costs(r))
        )
        for policy in ("relabel", "retrain"):
            try:
                grid_result = json.loads((Path(w.job.folder) / f"{policy}.json").read_text())
            except OSError:
                continue
            if w.variant == cfg.variants[0]:
                rows[cell].setdefault(f"grid {policy}", []).append(
                    (
                        grid_result["eval/normalized_cost"],
                        grid_result["eval/normalized_reward"],
                        *removal_costs(grid_result),
                    )
                )
    names = [*(w.name for w in work[:: len(jobs)]), "grid relabel", "grid retrain"]
    print("| task | agent | attack | ratio | " + " | ".join(names) + " |")
    print("|---" * (4 + len(names)) + "|")
    safe = dict.fromkeys(names, 0)
    for cell, found in rows.items():
        cells = []
        for name in names:
            pairs = np.array(found.get(name, []))
            if not len(pairs):
                cells.append("–")
                continue
            cost, reward, keep_only, poisoned = pairs.mean(0)
            safe[name] += cost <= 1
            cells.append(f"{cost:.2f} / {reward:.2f}; then {keep_only:.2f}, {poisoned:.2f} "
                         f"(n={len(pairs)})")  # fmt: skip
        print(f"| {cell[0]} | {cell[1]} | {cell[2]} | {cell[3]:g} | " + " | ".join(cells) + " |")
    print(
        "cells: mean normalised cost / reward over seeds; then: cost after the keep-only and "
        "the poisoned continuations of the removal check"
    )
    print("cells made safe (mean norm. cost over seeds <= 1): "
          + ", ".join(f"{n} {safe[n]}/{len(rows)}" for n in names))  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_script(main, VariantsConfig))
