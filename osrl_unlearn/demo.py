"""``osrl-unlearn demo``: the whole story on CarCircle, from clean data to a repaired policy.

1. a clean DSRL dataset from behaviour policies (scripted controllers by default, cached);
2. the Max Cost attack at 15 % (adversary and poisoned file cached);
3. an OSRL agent trained on the clean file and on the poisoned file by our training step
   (OSRL's ``train_one_step``, tested equal to OSRL's trainer; cached);
4. the poisoned agent repaired by each method (``relabel``, the default, Safe-RULE, fine-tuning);
5. every policy evaluated in the real environment on the same seeded episodes;
6. ``report.md`` with the table, ``policies.png`` (cost and reward, cost limit drawn) and
   ``unlearning.png`` (forget-set Q_c against kappa, beta_f, losses) in the output folder.

No ``from __future__ import annotations`` here: pyrallis reads the annotations of DemoConfig.
"""

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

DEMO_PROFILES = {
    "default": {
        "behaviour_steps": 200_000,
        "adversary_steps": 20_000,
        "agent": "bcql",
        "train_profile": "small",
        "train_steps": None,
        # one Q head per critic and unscaled rewards: at the small profile OSRL's own config
        # (twin heads, reward_scale 0.1) gives an unsafe clean BCQ-Lag (docs/profiles.md), this
        # one a safe clean agent the attack visibly breaks
        "osrl": {"num_q": 1, "num_qc": 1, "reward_scale": 1.0},
        "unlearn_steps": 5000,
        "eval_episodes": 50,  # fewer cannot tell a repair at cost 0.8 from one at 1.3 (std ~3)
        "workers": 2,
    },
    "quick": {
        "behaviour_steps": 2_000,
        "adversary_steps": 2_000,
        "agent": "cpq",
        "train_profile": "quick",
        "train_steps": 30,
        "osrl": {},
        "unlearn_steps": 10,
        "eval_episodes": 2,
        "workers": 2,
    },
}
"""``default`` is sized to finish within the README's budget on a 2-core machine (measured: see
the README); ``quick`` only checks the plumbing (its policies mean nothing). ``behaviour_steps``
applies to ``behaviour_source: ppo`` only."""


@dataclass
class DemoConfig:
    """Settings of ``osrl-unlearn demo`` (the README's main job)."""

    task: str = "OfflineCarCircle-v0"
    """Task of the demo."""
    out: str = "runs/demo"
    """Output folder: run folders of every policy, report.md and the plots."""
    seed: int = 0
    """Seed of every step."""
    attack: str = "max-cost"
    """Attack applied to the clean data."""
    ratio: float = 0.15
    """Injected share of the poisoned file."""
    behaviour_source: str = "controller"
    """Behaviour policies of the clean data: ``controller`` (scripted, about a minute) or ``ppo``
    (FSRL PPO-Lag as DSRL did, about 7 more minutes)."""
    methods: List[str] = field(default_factory=lambda: ["relabel", "safe-rule", "finetune"])
    """Repairs to run on the poisoned agent."""
    cache: Optional[str] = None
    """Cache root; default $OSRL_UNLEARN_CACHE or ~/.cache/osrl-unlearn."""
    quick: bool = False
    """A tiny profile that finishes in about a minute (for tests); its policies mean nothing."""
    force: bool = False
    """Replace an existing output folder."""
    show_progress: bool = True
    """Show progress bars."""


def _dataset_config(cfg: DemoConfig, profile: dict):
    from osrl_unlearn.generate.make_dataset import MakeDatasetConfig

    data_cfg = MakeDatasetConfig(
        task=cfg.task, seed=cfg.seed, cache=cfg.cache, show_progress=cfg.show_progress,
        behaviour_source=cfg.behaviour_source,
    )  # fmt: skip
    data_cfg.behaviour.steps = profile["behaviour_steps"]
    if cfg.quick:
        apply_quick_profile(data_cfg)
    return data_cfg


def apply_quick_profile(cfg) -> None:
    """Shrinks a MakeDatasetConfig to a seconds-long run (tests and --quick)."""
    cfg.episodes = 8
    cfg.behaviour.steps = 2_000
    shrink_ppo(cfg.behaviour)


def shrink_ppo(behaviour) -> None:
    """Seconds-sized PPO epochs for a BehaviourConfig (the quick dataset's and adversary's)."""
    behaviour.step_per_epoch = 1_000
    behaviour.training_envs = 2
    behaviour.episode_per_collect = 2


def poisoned_file(clean_path: Path, cfg: DemoConfig, profile: dict) -> Path:
    """The demo's poisoned file (cached next to the clean one by every setting that shapes it)."""
    from osrl_unlearn.data import read_hdf5
    from osrl_unlearn.poison import PoisonConfig, cached_poisoned

    poison_cfg = PoisonConfig(dataset=str(clean_path), attack=cfg.attack, ratio=cfg.ratio,
                              seed=cfg.seed, cache=cfg.cache, show_progress=cfg.show_progress)  # fmt: skip
    poison_cfg.adversary.steps = profile["adversary_steps"]
    if cfg.quick:
        shrink_ppo(poison_cfg.adversary)
    path = cached_poisoned(poison_cfg)
    attrs = read_hdf5(path).attrs
    print(f"  {path.name}: {attrs['achieved_ratio']:.1%} injected; the injected episodes really "
          f"cost {attrs['injected_true_episode_cost_mean']:.0f} on average, labelled 0")  # fmt: skip
    return path


def ticker(progress):
    """A per-step callback that ticks ``progress`` once and never asks to stop."""

    def tick(step, _):
        progress(1)

    return tick


@dataclass(frozen=True)
class TrainJob:
    dataset: str
    settings: object
    cache: Optional[str]


def train_job(job: TrainJob, progress) -> Path:
    """One cached OSRL training (a worker process's job); ticks ``progress`` once per step."""
    from osrl_unlearn.data import read_hdf5
    from osrl_unlearn.training import cached_run

    return cached_run(read_hdf5(job.dataset), job.settings, job.cache, show_progress=False,
                      callback=ticker(progress))  # fmt: skip


@dataclass(frozen=True)
class RepairJob:
    run: str
    dataset: str
    out: str
    method: str
    steps: int
    seed: int


def repair_job(job: RepairJob, progress):
    """One repair of the poisoned run (a worker process's job): its run folder and history."""
    from osrl_unlearn.repair import repair_run

    result = repair_run(job.run, job.dataset, job.out, method=job.method, steps=job.steps,
                        seed=job.seed, show_progress=False,
                        callback=ticker(progress))  # fmt: skip
    return result.run_dir, result.history


@dataclass(frozen=True)
class EvalJob:
    run: str
    task: str
    episodes: int
    seed: int


def eval_job(job: EvalJob, progress):
    """One policy's evaluation on the demo's seeded episodes (a worker process's job)."""
    from osrl_unlearn.agents.checkpoint import load_agent
    from osrl_unlearn.evaluation import evaluate

    result = evaluate(load_agent(job.run), job.task, job.episodes, seed=job.seed,
                      show_progress=False).summary()  # fmt: skip
    progress(job.episodes)
    return result


def run_demo(cfg: DemoConfig) -> int:
    from osrl_unlearn.generate.make_dataset import format_summary, make_dataset
    from osrl_unlearn.parallel import run_jobs
    from osrl_unlearn.report import markdown_table, plot_policies, plot_unlearning
    from osrl_unlearn.training import profile_settings, training_seconds
    from osrl_unlearn.unlearn.methods import method_config, repair_steps

    started = time.perf_counter()
    out = Path(cfg.out)
    if out.exists():
        if not cfg.force:
            raise FileExistsError(f"{out} exists; pass --force to replace it or choose --out.")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    profile = DEMO_PROFILES["quick" if cfg.quick else "default"]
    steps_total = 5

    print(f"[1/{steps_total}] clean {cfg.task} dataset from behaviour policies")
    clean = make_dataset(_dataset_config(cfg, profile))
    print(format_summary(clean.path, clean.summary))

    print(f"[2/{steps_total}] {cfg.attack} attack, {cfg.ratio:.0%} injected")
    poisoned_path = poisoned_file(clean.path, cfg, profile)

    settings = profile_settings(profile["train_profile"], agent=profile["agent"], osrl=profile["osrl"],
                                steps=profile["train_steps"], seed=cfg.seed)  # fmt: skip
    print(f"[3/{steps_total}] {settings.agent} trained ({settings.steps} steps of OSRL's training step) "
          "on the clean and on the poisoned file")  # fmt: skip
    jobs = [TrainJob(str(path), settings, cfg.cache) for path in (clean.path, poisoned_path)]
    trained = run_jobs(train_job, jobs, workers=profile["workers"], total=2 * settings.steps,
                       desc="training clean and poisoned", unit="step",
                       show_progress=cfg.show_progress)  # fmt: skip
    runs, made = {}, {}
    for label, run in zip(("clean", "poisoned"), trained, strict=True):
        runs[label] = shutil.copytree(run, out / label)
        made[label] = (training_seconds(run), settings.steps)

    print(f"[4/{steps_total}] repairing the poisoned agent: {', '.join(cfg.methods)}")
    # each method runs its own budget, at most the profile's (relabel stops at 3,000, before
    # BCQ-Lag's multiplier winds up: docs/methods.md), as in the grid
    jobs = [RepairJob(str(runs["poisoned"]), str(poisoned_path), str(out / method), method,
                      repair_steps(method, method_config(method), profile["unlearn_steps"],
                                   settings.steps), cfg.seed)
            for method in cfg.methods]  # fmt: skip
    repaired = run_jobs(repair_job, jobs, workers=profile["workers"],
                        total=sum(job.steps for job in jobs), desc="repairing", unit="step",
                        show_progress=cfg.show_progress)  # fmt: skip
    histories, kappa = {}, None
    for method, (run_dir, history) in zip(cfg.methods, repaired, strict=True):
        runs[method] = run_dir
        made[method] = (history.wall_seconds, history.steps)
        histories[method] = {k: history.series(k) for k in history.last()}
        kappa = kappa or history.kappa or None

    print(f"[5/{steps_total}] evaluating every policy ({profile['eval_episodes']} episodes)")
    # one policy per worker: the episodes of one policy run in lockstep on one core
    evaluations = run_jobs(eval_job, [EvalJob(str(run), cfg.task, profile["eval_episodes"],
                                              cfg.seed + 10_000) for run in runs.values()],
                           workers=profile["workers"], total=len(runs) * profile["eval_episodes"],
                           desc="evaluating", unit="episode", show_progress=cfg.show_progress)  # fmt: skip
    rows = []
    for label, summary in zip(runs, evaluations, strict=True):
        seconds, steps = made[label]
        rows.append({"policy": label, **summary, "wall_seconds": seconds, "steps": steps})

    table = markdown_table(rows)
    plot_policies(rows, out / "policies.png", f"{settings.agent} on {cfg.task}")
    if any(histories.values()):
        plot_unlearning(histories, out / "unlearning.png", kappa)
    elapsed = time.perf_counter() - started
    report = _report_text(cfg, settings, table, poisoned_path, elapsed)
    (out / "report.md").write_text(report)
    print("\n" + table)
    print(f"\nreport: {out / 'report.md'} (took {elapsed / 60:.1f} min)")
    return 0


def _report_text(cfg, settings, table: str, poisoned_path: Path, elapsed: float) -> str:
    trainer = ("our training step (OSRL's `train_one_step`, tested equal to OSRL's trainer)"
               if settings.trainer == "fast" else "OSRL's trainer")  # fmt: skip
    return f"""# osrl-unlearn demo: {cfg.attack} attack on {cfg.task}, and its repair

The {settings.agent} agent was trained by {trainer} ({settings.steps} steps, hidden
{settings.hidden}) on the clean dataset and on the poisoned one ({cfg.ratio:.0%} of its transitions
injected by a {cfg.attack} adversary, relabelled cost 0). The poisoned agent was then repaired by
{", ".join(cfg.methods)}. Every policy was evaluated on the same seeded episodes in the real
environment; costs are normalised by the cost limit ({settings.cost_limit:g}): at most 1 is safe.

{table}

![cost and reward per policy](policies.png)

![unlearning curves](unlearning.png)

- poisoned file: `{poisoned_path}`
- run folders of every policy: `clean/`, `poisoned/`, {", ".join(f"`{m}/`" for m in cfg.methods)}
  (OSRL's `load_config_and_model` reads them; `unlearning.json` and `history.csv` in the repairs)
- wall time of the whole demo: {elapsed / 60:.1f} min (cached steps are reused and cost nothing)
"""
