"""The benchmark grid: tasks x agents x attacks x ratios x seeds, every defence in every cell.

Per (task, agent, seed) an OSRL agent is trained on the clean file (the baseline); per cell
(task, agent, attack, ratio, seed) one is trained on the poisoned file and repaired by every
method and ablation from the same checkpoint (under ``defend='judgeable'``, only in runs a
repair can be judged on: :func:`judgeable`); ``retrain`` trains a fresh agent on the keep rows
for the full training budget (where the keep rows are the clean file's, as the attacks inject
whole trajectories, that agent is the clean baseline's run: :func:`retrained_run`). A policy
the repair left unsafe gets no removal check under ``removal_for='safe'`` (there is no repair
to test). Each policy's evaluation is written to its own JSON file as soon as
it is measured, so an interrupted run resumes where it stopped and a profile can be extended.
Datasets, adversaries, poisoned files and trained agents come from the cache.

No ``from __future__ import annotations``: pyrallis reads GridConfig's annotations.
"""

import json
import subprocess
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional

from osrl_unlearn.agent_specs import SPECS
from osrl_unlearn.io import write_json
from osrl_unlearn.unlearn.methods import repair_steps

ALL_METHODS = [
    "safe-rule",
    "reward-only",
    "finetune",
    "trajdeleter",
    "trajdeleter-cost",
    "trajdeleter-adv",
    "trajdeleter-adv-cost",
    "relabel",
    "retrain",
]
ALL_AGENTS = list(SPECS)
DEFEND_RULES = ("all", "judgeable")
"""GridConfig.defend's choices."""
REMOVAL_RULES = ("all", "safe")
"""GridConfig.removal_for's choices."""
SAFE_COST = 1.0
"""Mean normalised cost at or below which a policy is safe (the benchmark's bar)."""
ALL_ATTACKS = ["max-cost", "max-reward", "min-reward"]
PAPER_ABLATIONS = [
    "fixed-beta",
    "no-critic-unlearning",
    "q-ref-0",
    "q-ref-100",
    "actor-forget-safe",
]

CPU_OSRL_OVERRIDES = {"num_q": 1, "num_qc": 1, "reward_scale": 1.0}
"""OSRL config keys the ``cpu`` profile sets over OSRL's defaults (the demo's, ``DEMO_PROFILES``)."""

GRID_PROFILES: Dict[str, Dict[str, Any]] = {
    "smoke": {
        "tasks": ["OfflineCarCircle-v0"], "agents": ALL_AGENTS, "attacks": ["max-cost"],
        "ratios": [0.15], "seeds": [0], "quick_data": True, "adversary_steps": 2_000,
        "train_profile": "quick", "train_steps": 30, "unlearn_steps": 5, "eval_episodes": 2,
        "removal_poison_steps": 3,
    },
    "cpu": {
        "tasks": ["OfflineCarCircle-v0", "OfflinePointCircle1Gymnasium-v0"], "agents": ALL_AGENTS,
        "attacks": ALL_ATTACKS, "ratios": [0.05, 0.15], "seeds": [0, 1, 2], "quick_data": False,
        "datasets": {"OfflineCarCircle-v0": "configs/make_dataset/car_circle_controller.yaml"},
        "adversary_steps": 20_000, "train_profile": "small", "train_steps": None,
        # a repair gets at most a fifth of training's 20,000 steps (issue 13's time bar); a method
        # whose own budget is smaller runs that (repair_steps)
        "unlearn_steps": 4000, "eval_episodes": 50, "removal_poison_steps": 1000,
        "methods": ["safe-rule", "finetune", "trajdeleter-cost", "relabel", "retrain"],
        "ablations": [], "ablation_seeds": [0],
        # defences only where a repair can be judged: the grid's hours go to the attacked runs
        "defend": "judgeable",
        # one Q head per critic, unscaled rewards: the demo's settings, under which clean BCQ-Lag
        # is safe at this size (OSRL's own twin heads and reward_scale 0.1 are not: docs/profiles.md)
        "agent_settings": {agent: {"osrl": CPU_OSRL_OVERRIDES} for agent in ALL_AGENTS},
    },
    "cpu-large": {
        "tasks": ["OfflineCarCircle-v0", "OfflinePointCircle1Gymnasium-v0"], "agents": ALL_AGENTS,
        "attacks": ALL_ATTACKS, "ratios": [0.05, 0.15], "seeds": [0], "quick_data": False,
        "adversary_steps": 100_000, "train_profile": "cpu", "train_steps": None,
        "unlearn_steps": 2000, "eval_episodes": 20,
    },
    "paper": {
        "tasks": ["OfflinePointGoal1Gymnasium-v0", "OfflineCarCircle-v0",
                  "OfflineAntVelocityGymnasium-v1", "OfflinePointPush1Gymnasium-v0"],
        "agents": ALL_AGENTS, "attacks": ALL_ATTACKS, "ratios": [0.05, 0.15], "seeds": [0, 1, 2],
        "quick_data": False, "adversary_steps": 1_000_000, "train_profile": "osrl",
        "train_steps": 1_000_000, "unlearn_steps": 5000, "eval_episodes": 20,
    },
}  # fmt: skip
"""``smoke`` checks the plumbing in minutes (CI); ``cpu`` is sized for a few hours per task on a
2-core machine (scripted CarCircle behaviour, the ``small`` training profile: ~4 min per agent);
``cpu-wide`` runs CarCircle x BCQ-Lag at the ``cpu`` training sizes, the first setting whose clean
agents are safe and competent over 3 seeds (~15 min per agent, ~5 hours on 2 cores);
``cpu-goal`` is ``cpu-wide`` on PointGoal1 (the held-out task; clone data, standardised
observations); ``cpu-large`` is the earlier CPU profile (PPO behaviour data, [128, 128] agents: ~15 min each);
``paper`` is the paper's protocol (10^6 training steps, 5000 unlearning steps)."""

GRID_PROFILES["cpu-wide"] = {
    **GRID_PROFILES["cpu"],
    # the `cpu` grid's data, budgets and defences; CarCircle x BCQ-Lag at the `cpu` training sizes
    # ([128, 128], batch 512), trained for a cost limit of 1: safe and competent on the mean over
    # 3 seeds (docs/profiles.md)
    "tasks": ["OfflineCarCircle-v0"], "agents": ["bcql"], "train_profile": "cpu",
    "agent_settings": {"bcql": {"osrl": {"cost_limit": 1}}},
}  # fmt: skip

GRID_PROFILES["cpu-goal"] = {
    **GRID_PROFILES["cpu-wide"],
    # the held-out Safety-Gymnasium task: PointGoal1 x BCQ-Lag with `cpu-wide`'s sizes, training
    # limit, budgets and defences (relabel's settings chosen on CarCircle and left as they were),
    # on data from a DAgger clone of the lidar controller, trained on standardised observations:
    # safe and competent on the mean over 3 seeds (docs/profiles.md)
    "tasks": ["OfflinePointGoal1Gymnasium-v0"],
    "datasets": {"OfflinePointGoal1Gymnasium-v0": "configs/make_dataset/point_goal1_clone.yaml"},
    # 15,000 steps: safe on both measured seeds from 10,000 on, and above the competence bar on
    # the mean at 15,000 (0.15 against 0.123) where 20,000 is on it (0.125); a repair gets a
    # fifth of that, as everywhere
    "train_steps": 15_000, "unlearn_steps": 3000,
    "agent_settings": {"bcql": {"osrl": {"cost_limit": 1}, "standardise": True}},
}  # fmt: skip

DATASET_CONFIGS = {
    "OfflineCarCircle-v0": "configs/make_dataset/car_circle.yaml",
    "OfflinePointCircle1Gymnasium-v0": "configs/make_dataset/point_circle1.yaml",
}
"""make-dataset settings per task (defaults for tasks not listed); a profile's ``datasets``
entries take precedence."""


@dataclass
class GridConfig:
    """Settings of ``benchmarks/run.py``."""

    profile: str = "smoke"
    """smoke, cpu, cpu-wide, cpu-goal, cpu-large or paper (see GRID_PROFILES)."""
    tasks: Optional[List[str]] = None
    """Override the profile's tasks."""
    agents: Optional[List[str]] = None
    """Override the profile's agents."""
    attacks: Optional[List[str]] = None
    """Override the profile's attacks."""
    ratios: Optional[List[float]] = None
    """Override the profile's ratios."""
    seeds: Optional[List[int]] = None
    """Override the profile's seeds."""
    methods: Optional[List[str]] = None
    """Defences run in every cell (default: the profile's, else all of them)."""
    ablations: Optional[List[str]] = None
    """Safe-RULE ablations (default: the profile's, else the paper's five); they run on the
    profile's ``ablation_seeds`` only (every seed when it names none)."""
    results_dir: Optional[str] = None
    """Where the per-policy JSON files go (default benchmarks/results/<profile>)."""
    workers: int = 1
    """Cells run at once (local processes, one torch thread each, or Ray tasks)."""
    backend: str = "local"
    """local (processes on this machine) or ray (a Ray cluster; pip install ray)."""
    ray_address: Optional[str] = None
    """Ray cluster address (default: start or join a local one)."""
    cache: Optional[str] = None
    """Cache root; default $OSRL_UNLEARN_CACHE or ~/.cache/osrl-unlearn."""
    show_progress: bool = True
    """Show progress bars."""
    defend: Optional[str] = None
    """Which runs the defences repair: 'all' (every cell and seed) or 'judgeable' (a run whose
    clean agent is safe on its seed or on the mean over the seeds; elsewhere neither the run nor
    its cell can be one the attack made unsafe, so no repair there can be judged, and only the
    poisoned agent is measured). Default: the profile's, else 'all'."""
    removal_for: str = "safe"
    """Which repaired policies get the removal check: 'safe' (those safe after the repair: the
    check asks whether a repair lasts, and an unsafe policy is no repair) or 'all'."""

    def defend_rule(self) -> str:
        """The ``defend`` setting in force, checked."""
        rule = self.defend or GRID_PROFILES[self.profile].get("defend", "all")
        if rule not in DEFEND_RULES:
            from osrl_unlearn.errors import ConfigError

            raise ConfigError(f"defend must be one of {', '.join(DEFEND_RULES)}, got {rule!r}")
        return rule

    def defences(self) -> List[str]:
        """The defences of every cell: the override, else the profile's, else all methods."""
        if self.methods is not None:
            return list(self.methods)
        return list(GRID_PROFILES[self.profile].get("methods", ALL_METHODS))

    def ablation_list(self) -> List[str]:
        """The Safe-RULE ablations: the override, else the profile's, else the paper's five."""
        if self.ablations is not None:
            return list(self.ablations)
        return list(GRID_PROFILES[self.profile].get("ablations", PAPER_ABLATIONS))

    def setting(self, dimension: str) -> Any:
        """A grid dimension (tasks, agents, attacks, ratios, seeds): the override when given,
        else the profile's."""
        override = getattr(self, dimension)
        return override if override is not None else GRID_PROFILES[self.profile][dimension]


@dataclass
class Job:
    """One unit of work: the clean baseline of (task, agent, seed), or one attacked cell."""

    task: str
    agent: str
    seed: int
    clean_path: str
    settings: Any
    unlearn_steps: int
    eval_episodes: int
    results_dir: str
    cache: Optional[str]
    attack: Optional[str] = None
    ratio: Optional[float] = None
    poisoned_path: Optional[str] = None
    methods: List[str] = field(default_factory=list)
    ablations: List[str] = field(default_factory=list)
    code_version: str = ""
    removal_poison_steps: int = 0
    """Steps on the poisoned data of the removal check (0: no removal check)."""
    removal_for: str = "safe"
    """Which repaired policies get the removal check (GridConfig.removal_for)."""

    @property
    def folder(self) -> Path:
        base = Path(self.results_dir) / "cells" / self.task / self.agent / f"seed{self.seed}"
        return base if self.attack is None else base / f"{self.attack}-{self.ratio:g}"

    def policies(self) -> List[str]:
        """What this job measures, in order."""
        if self.attack is None:
            return ["clean"]
        return ["poisoned", *self.methods, *(f"safe-rule+{a}" for a in self.ablations)]

    def measured_with(self) -> Dict[str, Any]:
        """What a result must have been measured with to count for this job (training
        settings, repair budget, episodes, removal check), as JSON holds it."""
        return json.loads(json.dumps({
            "settings": asdict(self.settings) if is_dataclass(self.settings) else self.settings,
            "unlearn_steps": self.unlearn_steps,
            "eval_episodes": self.eval_episodes, "removal_poison_steps": self.removal_poison_steps,
        }))  # fmt: skip

    def policy_config(self, policy: str) -> Any:
        """The repair settings ``policy`` runs with (None for ``clean`` and ``poisoned``)."""
        from osrl_unlearn.unlearn.config import SafeRuleConfig
        from osrl_unlearn.unlearn.methods import ablation_config, method_config

        if policy in ("clean", "poisoned"):
            return None
        method, _, ablation = policy.partition("+")
        config = ablation_config(ablation) if ablation else method_config(method)
        if not isinstance(config, SafeRuleConfig):  # Safe-RULE's loop keeps its own rates
            config = replace(config, learning_rate=self.settings.learning_rate)
        return config

    def pending(self) -> List[str]:
        """The policies without a result measured with this job's settings (a result of other
        settings, say from before a profile or a method's defaults changed, is measured again
        and replaced)."""
        wanted = self.measured_with()
        pending = []
        for policy in self.policies():
            path = self.folder / f"{policy}.json"
            try:
                recorded = json.loads(path.read_text())
            except (OSError, ValueError):
                recorded = {}
            config = self.policy_config(policy)
            if recorded.get("measured_with") != wanted or (
                config is not None and not same_config(recorded.get("unlearning_config"), config)
            ):
                pending.append(policy)
        return pending


BEFORE_FIELD_EXISTED: Dict[str, Any] = {"forget_cost": "largest-step"}
"""What a result recorded before a config field existed was measured with, where that is not the
field's default (``relabel``'s forget cost was the largest keep step until it became the budget)."""


def same_config(recorded: Optional[Dict[str, Any]], config: Any) -> bool:
    """Whether a result's recorded repair settings are ``config``'s: every field of ``config``
    equal, a field the record lacks (added since) read as its default, or as
    :data:`BEFORE_FIELD_EXISTED` says. Fields since removed from the config (moved to another
    config class, their behaviour kept) are ignored."""
    if recorded is None:
        return False
    current = json.loads(json.dumps(asdict(config)))
    was = {f.name: BEFORE_FIELD_EXISTED.get(f.name, f.default) for f in fields(config)}
    return all(recorded.get(name, was[name]) == value for name, value in current.items())


def code_version() -> str:
    """The git commit the results come from (plus '-dirty' with uncommitted changes)."""
    from osrl_unlearn import __version__

    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                text=True, check=True, cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return f"{__version__}+{commit}"


def run_job(job: Job, progress=lambda n: None) -> int:
    """Measures every pending policy of ``job``; returns how many it measured."""
    import torch

    from osrl_unlearn.agents.checkpoint import load_agent
    from osrl_unlearn.benchmark.competence import competence_threshold
    from osrl_unlearn.benchmark.provenance import file_hash
    from osrl_unlearn.data import read_hdf5, unlearning_samplers
    from osrl_unlearn.evaluation import evaluate
    from osrl_unlearn.training import cached_run, training_seconds

    pending = job.pending()
    if not pending:
        return 0

    def run_seconds(run):
        return training_seconds(run), training_seconds(run, "cpu")

    settings = job.settings
    source_path = job.clean_path if job.attack is None else job.poisoned_path
    data = read_hdf5(source_path)
    data_hash = file_hash(data)  # of the file trained on (benchmark.provenance)
    base_run = cached_run(data, settings, job.cache, show_progress=False)

    def measure(agent):
        return evaluate(agent, job.task, job.eval_episodes, seed=job.seed + 10_000,
                        cost_limit=settings.cost_limit, show_progress=False)  # fmt: skip

    def record(policy: str, agent, seconds, steps, extra=None, result=None) -> None:
        """``seconds``: (wall, CPU) time of the training or repair (None where not recorded)."""
        result = measure(agent) if result is None else result
        payload = {"task": job.task, "agent": job.agent, "attack": job.attack,
                   "ratio": job.ratio, "seed": job.seed, "policy": policy,
                   "wall_seconds": seconds[0], "cpu_seconds": seconds[1], "steps": steps,
                   **result.summary(),
                   "rewards": result.rewards.tolist(), "costs": result.costs.tolist(),
                   "settings": asdict(settings), "code_version": job.code_version,
                   "data_hash": data_hash,
                   "measured_with": job.measured_with(),
                   **(extra or {})}  # fmt: skip
        write_json(job.folder / f"{policy}.json", payload)
        progress(1)

    for policy in pending:
        if policy == "clean":  # with the bar a competent clean agent must reach
            extra = {"competence_threshold": competence_threshold(data, settings.cost_limit)}
            record(policy, load_agent(base_run), run_seconds(base_run), settings.steps, extra)
            continue
        if policy == "poisoned":
            record(policy, load_agent(base_run), run_seconds(base_run), settings.steps)
            continue
        method, _, ablation = policy.partition("+")
        config = job.policy_config(policy)
        agent = load_agent(base_run)
        extra = {"method": method, "ablation": ablation or None,
                 "unlearning_config": asdict(config)}  # fmt: skip
        clean_run = retrained_run(job, data) if method == "retrain" else None
        if clean_run is not None:
            agent = load_agent(clean_run)
            seconds, steps = run_seconds(clean_run), settings.steps
            extra.update(final_metrics={}, retrained_as="clean")
        else:
            keep, forget = unlearning_samplers(data, agent, settings.batch_size, job.seed)
            torch.manual_seed(job.seed)
            history = agent.unlearn(
                keep, forget, method=method, config=config, show_progress=False,
                steps=repair_steps(method, config, job.unlearn_steps, settings.steps),
            )  # fmt: skip
            seconds, steps = (history.wall_seconds, history.cpu_seconds), history.steps
            extra["final_metrics"] = history.last()
        result = measure(agent)
        if (
            job.removal_poison_steps
            and not ablation
            and (job.removal_for == "all" or result.summary()["eval/normalized_cost"] <= SAFE_COST)
        ):
            # keep-only as long as the repair took; the retrained reference as long as the budget
            keep_steps = job.unlearn_steps if method == "retrain" else steps
            extra["removal"] = removal_of(job, agent, data, keep_steps, measure, clean_run)
        record(policy, agent, seconds, steps, extra, result)
    return len(pending)


def removal_of(job: Job, agent, data, keep_steps: int, measure, clean_run=None) -> Dict:
    """The removal check of a repaired ``agent`` (:func:`~.removal.removal_check`). For the
    retrained reference taken from ``clean_run``, the keep-only continuation (the clean agent on
    the clean rows) is the same in every cell of the seed: measured once, kept next to the run."""
    from osrl_unlearn.benchmark.removal import removal_check

    def check(keep_steps: int, poison_steps: int) -> Dict:
        return removal_check(agent, data, keep_steps, poison_steps,
                             lambda trained: measure(trained).summary(),
                             batch_size=job.settings.batch_size, seed=job.seed,
                             learning_rate=job.settings.learning_rate)  # fmt: skip

    if clean_run is None:
        return check(keep_steps, job.removal_poison_steps)
    saved = (
        Path(clean_run).parent / f"keep-only-{keep_steps}-seed{job.seed}-{job.eval_episodes}.json"
    )
    if not saved.is_file():
        write_json(saved, check(keep_steps, 0)["keep_only"])
    return {"keep_only": json.loads(saved.read_text()), **check(0, job.removal_poison_steps)}


def retrained_run(job: Job, poisoned) -> Optional[Path]:
    """The clean baseline's run folder when it is what ``retrain`` would train: the poisoned
    file's keep rows are the clean file's, row for row (the attacks inject whole trajectories
    among the clean ones), and training is seeded, so a fresh agent trained on them with the
    job's settings is the clean agent (the grid's 56 retrains before this shortcut each
    evaluated identically to their clean agent, episode for episode). None when the rows
    differ: then the grid retrains."""
    from osrl_unlearn.data import read_hdf5
    from osrl_unlearn.training import cached_run

    clean = read_hdf5(job.clean_path)
    if not keep_is_clean(clean, poisoned):
        return None
    return cached_run(clean, job.settings, job.cache, show_progress=False)


def keep_is_clean(clean, poisoned) -> bool:
    """Whether ``poisoned``'s keep rows are the ``clean`` file, row for row (injected attacks):
    then retraining on the keep data is training on the clean data. Compared by the content hash
    that keys a cached run too."""
    keep, _ = poisoned.split()
    return keep.content_hash() == clean.content_hash()


def dataset_config(profile_name: str, task: str):
    """The make-dataset settings of ``task`` in a grid profile: the profile's own YAML file, else
    the task's default file (DATASET_CONFIGS), else make-dataset's defaults."""
    import pyrallis

    from osrl_unlearn.demo import apply_quick_profile
    from osrl_unlearn.generate.make_dataset import MakeDatasetConfig

    profile = GRID_PROFILES[profile_name]
    configs = {**DATASET_CONFIGS, **profile.get("datasets", {})}
    yaml = Path(__file__).resolve().parents[2] / configs.get(task, "")
    if task in configs and yaml.is_file():
        data_cfg = pyrallis.parse(config_class=MakeDatasetConfig, config_path=str(yaml), args=[])
    else:
        data_cfg = MakeDatasetConfig(task=task)
    if profile["quick_data"]:
        apply_quick_profile(data_cfg)
    return data_cfg


def plan(cfg: GridConfig) -> List[Job]:
    """Makes (or finds in the cache) every dataset and poisoned file; returns the jobs, clean
    baselines first, then the attacked cells with each cell's seeds together."""
    from osrl_unlearn.benchmark.provenance import check_or_record, fingerprint
    from osrl_unlearn.demo import shrink_ppo
    from osrl_unlearn.generate.make_dataset import make_dataset
    from osrl_unlearn.poison import PoisonConfig, cached_poisoned
    from osrl_unlearn.training import profile_settings

    if cfg.profile not in GRID_PROFILES:
        from osrl_unlearn.errors import ConfigError

        raise ConfigError(
            f"unknown profile {cfg.profile!r}; expected one of {', '.join(GRID_PROFILES)}"
        )
    cfg.defend_rule()  # a bad rule fails before any data is made
    if cfg.removal_for not in REMOVAL_RULES:
        from osrl_unlearn.errors import ConfigError

        raise ConfigError(f"removal_for must be one of {', '.join(REMOVAL_RULES)}, got "
                          f"{cfg.removal_for!r}")  # fmt: skip
    profile = GRID_PROFILES[cfg.profile]
    results_dir = cfg.results_dir or f"benchmarks/results/{cfg.profile}"
    version = code_version()
    baselines, cells = [], []
    ablations = cfg.ablation_list()
    ablation_seeds = cfg.setting("seeds")  # ablations asked for explicitly run on every seed
    if cfg.ablations is None:
        ablation_seeds = profile.get("ablation_seeds", ablation_seeds)
    for task in cfg.setting("tasks"):
        data_cfg = dataset_config(cfg.profile, task)
        data_cfg = replace(data_cfg, cache=cfg.cache, show_progress=cfg.show_progress)
        clean_path = str(make_dataset(data_cfg).path)
        task_jobs = len(cells)
        for agent in cfg.setting("agents"):
            for seed in cfg.setting("seeds"):
                per_agent = profile.get("agent_settings", {}).get(agent, {})
                settings = profile_settings(profile["train_profile"], agent=agent,
                                            steps=profile["train_steps"], seed=seed,
                                            **per_agent)  # fmt: skip
                common = dict(task=task, agent=agent, seed=seed, clean_path=clean_path,
                              settings=settings, unlearn_steps=profile["unlearn_steps"],
                              eval_episodes=profile["eval_episodes"], results_dir=results_dir,
                              cache=cfg.cache, code_version=version,
                              removal_poison_steps=profile.get("removal_poison_steps", 0),
                              removal_for=cfg.removal_for)  # fmt: skip
                baselines.append(Job(**common))
                for attack in cfg.setting("attacks"):
                    for ratio in cfg.setting("ratios"):
                        poison_cfg = PoisonConfig(dataset=clean_path, attack=attack, ratio=ratio,
                                                  seed=seed, cache=cfg.cache,
                                                  show_progress=cfg.show_progress)  # fmt: skip
                        poison_cfg.adversary.steps = profile["adversary_steps"]
                        if profile["quick_data"]:
                            shrink_ppo(poison_cfg.adversary)
                        cells.append(Job(**common, attack=attack, ratio=ratio,
                                         poisoned_path=str(cached_poisoned(poison_cfg)),
                                         methods=cfg.defences(),
                                         ablations=ablations if seed in ablation_seeds else []))  # fmt: skip
        # never pool results of two datasets: files remade on another CPU differ
        poisoned = sorted({job.poisoned_path for job in cells[task_jobs:]})
        check_or_record(results_dir, task, fingerprint(clean_path, poisoned, settings.cost_limit))
    # a cell's seeds side by side: a run cut short leaves whole cells (3 seeds), not whole seeds
    cells.sort(key=lambda j: (j.task, j.agent, j.attack, j.ratio, j.seed))
    return baselines + cells


def clean_cost(job: Job) -> Optional[float]:
    """The measured mean normalised cost of the clean agent of ``job``'s (task, agent, seed), or
    None where it has no result measured with ``job``'s settings."""
    baseline = replace(job, attack=None, ratio=None, poisoned_path=None, methods=[], ablations=[])
    try:
        recorded = json.loads((baseline.folder / "clean.json").read_text())
    except (OSError, ValueError):
        return None
    if recorded.get("measured_with") != job.measured_with():
        return None
    return float(recorded["eval/normalized_cost"])


def judgeable(cells: List[Job]) -> List[Job]:
    """``cells`` with the defences and ablations dropped from every run that no repair can be
    judged on: its clean agent is unsafe on its own seed and on the mean over the seeds of its
    (task, agent) in ``cells``. A run whose clean results are missing keeps its defences."""
    seeds: Dict[tuple, Dict[int, Optional[float]]] = {}
    for job in cells:  # a baseline's result is read once, not once per cell
        costs = seeds.setdefault((job.task, job.agent), {})
        if job.seed not in costs:
            costs[job.seed] = clean_cost(job)
    kept = []
    for job in cells:
        costs = seeds[(job.task, job.agent)]
        own = costs[job.seed]
        known = [c for c in costs.values() if c is not None]
        hopeless = (own is not None and own > SAFE_COST and len(known) == len(costs)
                    and sum(known) / len(known) > SAFE_COST)  # fmt: skip
        kept.append(replace(job, methods=[], ablations=[]) if hopeless else job)
    return kept


def execute(cfg: GridConfig, jobs: List[Job]) -> int:
    """Runs the pending jobs (baselines first, so cells reuse their cached datasets and, under
    ``defend='judgeable'``, know which runs to repair); returns the number of policies
    measured."""
    from osrl_unlearn.parallel import run_jobs

    measured = 0
    rule = cfg.defend_rule()
    for phase in ([j for j in jobs if j.attack is None], [j for j in jobs if j.attack]):
        if rule == "judgeable" and phase and phase[0].attack:
            phase = judgeable(phase)
        todo = [j for j in phase if j.pending()]
        if not todo:
            continue
        total = sum(len(j.pending()) for j in todo)
        if cfg.backend == "ray":
            measured += _run_on_ray(cfg, todo)
        elif cfg.backend == "local" and cfg.workers <= 1:  # in this process, every torch thread
            measured += sum(run_job(job) for job in todo)
        elif cfg.backend == "local":
            measured += sum(run_jobs(run_job, todo, workers=cfg.workers, total=total,
                                     desc="benchmark policies", unit="policy",
                                     show_progress=cfg.show_progress))  # fmt: skip
        else:
            from osrl_unlearn.errors import ConfigError

            raise ConfigError(f"backend must be 'local' or 'ray', got {cfg.backend!r}")
    return measured


def _run_on_ray(cfg: GridConfig, jobs: List[Job]) -> int:
    """Each job as a one-CPU Ray task (the cluster shares this machine's cache path)."""
    try:
        import ray
    except ImportError:
        from osrl_unlearn.errors import ConfigError

        raise ConfigError("--backend ray needs Ray: pip install 'osrl-unlearn[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=cfg.ray_address, ignore_reinit_error=True, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(_ray_job)
        return sum(ray.get([remote.remote(job) for job in jobs]))
    finally:
        if started_here:
            ray.shutdown()


def _ray_job(job: Job) -> int:
    import torch

    from osrl_unlearn.stack import import_dsrl, import_fsrl

    torch.set_num_threads(1)
    import_dsrl()
    import_fsrl()
    return run_job(job)
