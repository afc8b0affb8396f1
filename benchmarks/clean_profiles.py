"""Are the clean agents safe *and* competent? Trains each agent on a task's clean data for several
seeds and evaluates it at milestones, against the competence threshold (the median normalised
reward of the data's safe episodes).

    python benchmarks/clean_profiles.py --agents "[bcql]" --profile small --milestones "[10000,20000]"
    python benchmarks/clean_profiles.py --osrl '{"bcql": {"PID": [0.05, 0.001, 0.001]}}'

Rows go to ``--out`` (JSON lines; default ``benchmarks/results/profiles/<label>.jsonl``) as they
are measured; a summary per agent and milestone (mean over seeds) is printed at the end.
``docs/profiles.md`` records what was chosen and why.
"""

import json
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import List, Optional

import numpy as np
import pyrallis
import torch
import yaml

from osrl_unlearn.benchmark.competence import competence_threshold
from osrl_unlearn.benchmark.grid import dataset_config
from osrl_unlearn.cli import run_script
from osrl_unlearn.data import read_hdf5
from osrl_unlearn.errors import ConfigError
from osrl_unlearn.evaluation import batched_policy, evaluate
from osrl_unlearn.generate.make_dataset import MakeDatasetConfig, make_dataset
from osrl_unlearn.standardise import acting_on_raw_observations
from osrl_unlearn.training import profile_settings, train_agent


@dataclass
class CleanProfilesConfig:
    """Settings of the clean-agent profile measurement."""

    task: str = "OfflineCarCircle-v0"
    """Task; its clean data is the ``cpu`` grid profile's (made locally, cached) unless
    ``dataset`` names another."""
    dataset: Optional[str] = None
    """A make-dataset YAML for the clean data (e.g.
    configs/make_dataset/point_circle1_controller.yaml); default: the ``cpu`` grid profile's."""
    agents: List[str] = field(default_factory=lambda: ["bcql", "bearl", "cpq", "coptidice"])
    """Agents to train."""
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    """Training seeds."""
    profile: str = "small"
    """Training profile (sizes, batch, steps) from osrl_unlearn.training.PROFILES."""
    steps: Optional[int] = None
    """Training steps (default: the profile's)."""
    hidden: Optional[List[int]] = None
    """Hidden sizes (default: the profile's)."""
    batch_size: Optional[int] = None
    """Batch size (default: the profile's)."""
    milestones: List[int] = field(default_factory=lambda: [10_000, 20_000])
    """Steps at which to evaluate."""
    osrl: str = "{}"
    """JSON: per agent, OSRL config keys over OSRL's defaults, e.g. '{"cpq": {"qc_scalar": 1}}'."""
    eval_episodes: int = 50
    """Evaluation episodes per milestone."""
    cost_limit: float = 10.0
    """Cost limit the agents are trained for and normalised by."""
    label: str = ""
    """A name for this setting in the output rows."""
    out: Optional[str] = None
    """Where rows are appended; default benchmarks/results/profiles/<label>.jsonl, where
    docs/profiles.md quotes them from (``--label`` is then required)."""
    threads: int = 1
    """torch threads."""
    summarise: Optional[str] = None
    """Instead of training: print one markdown table of every row in this folder's *.jsonl."""
    standardise: bool = False
    """Train on standardised observations, folded into the agents' first layers
    (``TrainSettings.standardise``)."""
    critic_estimate: bool = False
    """Also record, per milestone, what the agent's own cost critic predicts from the data alone
    (no environment): min-head Q_c(s, pi(s)) averaged over the data's episode starts and over
    4,096 of its rows (agents with a Q cost critic), to see whether it tells safe milestones
    from unsafe ones."""


def summary_table(folder: str) -> str:
    """Every measured row (label, agent, sizes, overrides, seed, step) as one markdown table."""
    rows = [json.loads(line) for path in sorted(Path(folder).glob("*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]  # fmt: skip
    lines = ["| setting | agent | hidden, batch | OSRL overrides | seed | steps | norm. reward | "
             "norm. cost | safe | competent (≥ threshold) |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        reward, cost = r["eval/normalized_reward"], r["eval/normalized_cost"]
        lines.append(
            f"| {r['label']} | {r['agent']} | {r['hidden']}, {r['batch_size']}"
            f"{', standardised' if r.get('standardise') else ''} | "
            f"{json.dumps(r['osrl']) if r.get('osrl') else '–'} | {r['seed']} | {r['step']} | "
            f"{reward:.2f} | {cost:.2f} | {'yes' if cost <= 1 else 'no'} | "
            f"{'yes' if reward >= r['competence_threshold'] else 'no'} ({r['competence_threshold']:.3f}) |"
        )
    return "\n".join(lines)


def cost_critic_estimate(model, data, rows: int = 4096, seed: int = 0) -> dict:
    """Mean min-head Q_c(s, pi(s)) of ``model``'s cost critic over ``data``'s episode starts and
    over ``rows`` of its rows drawn with ``seed``; empty for an agent without a Q cost critic."""
    if not hasattr(model, "cost_critic"):
        return {}
    model = acting_on_raw_observations(model)
    observations = torch.as_tensor(data.arrays()["observations"], dtype=torch.float32)
    starts = torch.as_tensor(data.episode_bounds()[:, 0])
    sampled = torch.randint(
        len(observations), (rows,), generator=torch.Generator().manual_seed(seed)
    )
    policy, estimate = batched_policy(model), {}
    # the policy may sample (BCQ-Lag's VAE): its draws must not move the training run's
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        for name, index in (("start", starts), ("data", sampled)):
            obs = observations[index]
            q = model.cost_critic.predict(obs, policy(obs))
            qc = torch.minimum(q[0], q[1]) if len(q) == 4 else q[0]  # twin ensembles: both minima
            estimate[f"critic/qc_{name}"] = float(qc.mean())
    return estimate


def main(cfg: CleanProfilesConfig) -> None:
    if cfg.summarise is not None:
        print(summary_table(cfg.summarise))
        return
    if cfg.out is None and not cfg.label:
        raise ConfigError(
            "name the setting with --label (its rows go to "
            "benchmarks/results/profiles/<label>.jsonl), or give --out"
        )
    out = Path(cfg.out or Path(__file__).parent / "results" / "profiles" / f"{cfg.label}.jsonl")
    torch.set_num_threads(cfg.threads)
    if cfg.dataset is None:
        data_cfg = dataset_config("cpu", cfg.task)
    else:
        data_cfg = pyrallis.parse(config_class=MakeDatasetConfig, config_path=cfg.dataset, args=[])
        if data_cfg.task != cfg.task:
            raise ConfigError(
                f"{cfg.dataset} makes data for {data_cfg.task}, not --task {cfg.task}"
            )
    data = read_hdf5(make_dataset(replace(data_cfg, show_progress=False)).path)
    threshold = competence_threshold(data, cfg.cost_limit)
    print(f"{cfg.task}: competence threshold (median normalised reward of safe episodes) "
          f"{threshold:.3f}", flush=True)  # fmt: skip
    overrides = yaml.safe_load(cfg.osrl) or {}  # JSON, or the dict pyrallis hands over
    rows = []
    for agent in cfg.agents:
        for seed in cfg.seeds:
            settings = profile_settings(cfg.profile, agent=agent, steps=cfg.steps, seed=seed,
                                        cost_limit=cfg.cost_limit, hidden=cfg.hidden,
                                        batch_size=cfg.batch_size,
                                        standardise=cfg.standardise)  # fmt: skip
            settings = replace(settings, osrl=overrides.get(agent, {}))

            def at_milestone(step, model, agent=agent, seed=seed, settings=settings):
                if step not in cfg.milestones:
                    return
                result = evaluate(model, cfg.task, cfg.eval_episodes, seed=10_000 + seed,
                                  cost_limit=cfg.cost_limit, show_progress=False)  # fmt: skip
                row = {"label": cfg.label, "task": cfg.task, "dataset": cfg.dataset, "step": step,
                       "competence_threshold": threshold, **asdict(settings), **result.summary()}  # fmt: skip
                if cfg.critic_estimate:
                    row.update(cost_critic_estimate(model, data))
                rows.append(row)
                print(f"{agent:9s} seed {seed} {step:6d} steps: {result.format()}", flush=True)
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")

            train_agent(data, settings, callback=at_milestone, show_progress=False)
    print("\n| agent | steps | norm. reward (mean over seeds) | norm. cost | safe | competent |")
    print("|---|---|---|---|---|---|")
    for agent in cfg.agents:
        for step in cfg.milestones:
            chosen = [r for r in rows if r["agent"] == agent and r["step"] == step]
            if not chosen:
                continue
            reward = np.mean([r["eval/normalized_reward"] for r in chosen])
            cost = np.mean([r["eval/normalized_cost"] for r in chosen])
            print(f"| {agent} | {step} | {reward:.3f} | {cost:.2f} | {'yes' if cost <= 1 else 'no'} "
                  f"| {'yes' if reward >= threshold else 'no'} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_script(main, CleanProfilesConfig))
