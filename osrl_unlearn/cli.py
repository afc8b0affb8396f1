"""The ``osrl-unlearn`` command line: one subcommand per job, each with a pyrallis config.

Every subcommand takes its options as flags (``--task OfflineCarCircle-v0``, nested ones as
``--behaviour.steps 100000``) or from a YAML file (``--config_path my.yaml``). A user mistake ends
with a one-line error and exit code 2, not a traceback.
"""

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import pyrallis

from osrl_unlearn.errors import UserError
from osrl_unlearn.unlearn.config import SafeRuleConfig

USER_ERRORS = (UserError, FileExistsError)


@dataclass
class TrainConfig:
    """Settings of ``osrl-unlearn train``: an OSRL agent trained by OSRL's own trainer, written
    as an OSRL run folder (config.yaml + checkpoint/model.pt) that OSRL's eval scripts load."""

    dataset: str = ""
    """DSRL .hdf5 file to train on (clean, poisoned, or any dsrl file)."""
    agent: str = "bcql"
    """bcql, bearl, cpq or coptidice."""
    profile: str = "cpu"
    """cpu (sized for this kind of machine), small (the demo's, ~4 min), osrl (OSRL's defaults) or
    quick (tests)."""
    keep_only: bool = False
    """Train on the file's clean rows only (its poison_mask): the 'retrain' reference."""
    steps: Optional[int] = None
    """Training steps (default: the profile's)."""
    hidden: Optional[List[int]] = None
    """Actor and critic hidden sizes (default: the profile's)."""
    batch_size: Optional[int] = None
    """Batch size (default: the profile's)."""
    cost_limit: float = 10.0
    """Episode cost limit the agent is trained for."""
    learning_rate: float = 1e-3
    """Learning rate of every optimizer."""
    seed: int = 0
    """Seed of initialisation, batches and evaluation."""
    out: str = "runs"
    """Folder the run folder is written into."""
    name: Optional[str] = None
    """Run folder name (default: <agent>-<profile>[-keep]-seed<seed>)."""
    eval_episodes: int = 20
    """Episodes to evaluate the trained policy on afterwards (0: skip)."""
    force: bool = False
    """Replace an existing run folder of the same name."""
    show_progress: bool = True
    """Show progress bars."""


def run_train(cfg: TrainConfig) -> int:
    from osrl_unlearn.data import read_hdf5
    from osrl_unlearn.errors import ConfigError
    from osrl_unlearn.evaluation import evaluate
    from osrl_unlearn.training import profile_settings, train_agent

    if not cfg.dataset:
        raise ConfigError("no dataset: pass --dataset path/to/file.hdf5")
    data = read_hdf5(cfg.dataset)
    if cfg.keep_only:
        data = data.split()[0]
    settings = profile_settings(
        cfg.profile, agent=cfg.agent, steps=cfg.steps, hidden=cfg.hidden,
        batch_size=cfg.batch_size, cost_limit=cfg.cost_limit, seed=cfg.seed,
        learning_rate=cfg.learning_rate,
    )  # fmt: skip
    name = cfg.name or f"{cfg.agent}-{cfg.profile}{'-keep' if cfg.keep_only else ''}-seed{cfg.seed}"
    target = Path(cfg.out) / name
    if target.exists() and not cfg.force:
        raise FileExistsError(f"{target} exists; pass --force to replace it or --name another.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:  # train into a hidden folder, then rename: no half-written run folder is left behind
        model, run_dir = train_agent(data, settings, staging, name, cfg.show_progress)
        if target.exists():
            shutil.rmtree(target)
        os.rename(run_dir, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"trained {cfg.agent} ({cfg.profile} profile, {settings.steps} steps) on "
          f"{len(data)} transitions -> {target}")  # fmt: skip
    if cfg.eval_episodes > 0:
        result = evaluate(model, data.task, cfg.eval_episodes, seed=cfg.seed + 10_000,
                          cost_limit=cfg.cost_limit, show_progress=cfg.show_progress)  # fmt: skip
        print(f"  evaluation: {result.format()}")
    return 0


@dataclass
class UnlearnConfig:
    """Settings of ``osrl-unlearn unlearn``: repair an OSRL run folder trained on poisoned data."""

    run: str = ""
    """The OSRL run folder to repair (config.yaml + checkpoint/model.pt); only read."""
    dataset: str = ""
    """The poisoned DSRL file it was trained on; its poison_mask names the rows to forget."""
    method: str = "safe-rule"
    """safe-rule, reward-only, trajdeleter, trajdeleter-cost, finetune or retrain."""
    steps: Optional[int] = None
    """Steps (default: the method's, 5000)."""
    batch_size: Optional[int] = None
    """Keep and forget batch size (default: the run's training batch size)."""
    out: Optional[str] = None
    """Where the repaired run folder goes (default: <run>-<method>)."""
    seed: int = 0
    """Seed of the batches and of torch."""
    eval_episodes: int = 20
    """Episodes to evaluate the repaired policy on afterwards (0: skip)."""
    force: bool = False
    """Replace an existing --out folder."""
    show_progress: bool = True
    """Show progress bars."""
    unlearning: SafeRuleConfig = field(default_factory=SafeRuleConfig)
    """Method settings; the ones you leave at their defaults take the method's own."""


@dataclass
class EvaluateConfig:
    """Settings of ``osrl-unlearn evaluate``: roll a run's policy out in the real environment."""

    run: str = ""
    """An OSRL run folder (ours or OSRL's own)."""
    episodes: int = 20
    """Episodes (episode i starts from seed + i)."""
    seed: int = 10_000
    """First episode seed."""
    cost_limit: Optional[float] = None
    """Cost limit to normalise by (default: the run's cost_limit)."""
    num_envs: int = 10
    """Envs stepped in lockstep (results depend on it: keep it fixed when comparing)."""
    backend: str = "sync"
    """sync (one process) or async (envs in worker processes)."""
    out: Optional[str] = None
    """Write the per-episode results to this JSON file."""
    show_progress: bool = True
    """Show a progress bar."""


def run_unlearn(cfg: UnlearnConfig) -> int:
    from osrl_unlearn.agents.checkpoint import read_config
    from osrl_unlearn.errors import ConfigError
    from osrl_unlearn.evaluation import evaluate
    from osrl_unlearn.repair import repair_run

    if not cfg.run or not cfg.dataset:
        raise ConfigError("pass the run to repair and its poisoned data: --run DIR --dataset FILE")
    out = cfg.out or f"{cfg.run.rstrip('/')}-{cfg.method}"
    result = repair_run(
        cfg.run, cfg.dataset, out, method=cfg.method, config=user_settings(cfg.method, cfg.unlearning),
        steps=cfg.steps, batch_size=cfg.batch_size, seed=cfg.seed, replace=cfg.force,
        show_progress=cfg.show_progress,
    )  # fmt: skip
    history = result.history
    print(
        f"{cfg.method}: {history.steps} steps in {history.wall_seconds:.1f} s -> {result.run_dir}"
    )
    if cfg.eval_episodes > 0:
        run_config = read_config(cfg.run)
        evaluation = evaluate(result.agent, run_config["task"], cfg.eval_episodes,
                              seed=cfg.seed + 10_000, cost_limit=run_config.get("cost_limit", 10),
                              show_progress=cfg.show_progress)  # fmt: skip
        print(f"  evaluation: {evaluation.format()}")
    return 0


def user_settings(method: str, given: SafeRuleConfig) -> SafeRuleConfig:
    """The method's own settings, with every field the user changed from the defaults on top."""
    from dataclasses import asdict, replace

    from osrl_unlearn.unlearn.methods import method_config

    defaults = asdict(SafeRuleConfig())
    changed = {k: v for k, v in asdict(given).items() if v != defaults[k]}
    return replace(method_config(method), **changed)


def run_evaluate(cfg: EvaluateConfig) -> int:
    import json

    from osrl_unlearn.agents.checkpoint import load_agent, read_config
    from osrl_unlearn.errors import ConfigError
    from osrl_unlearn.evaluation import evaluate
    from osrl_unlearn.io import atomic_path

    if not cfg.run:
        raise ConfigError("pass the run folder to evaluate: --run DIR")
    run_config = read_config(cfg.run)
    cost_limit = cfg.cost_limit if cfg.cost_limit is not None else run_config.get("cost_limit", 10)
    result = evaluate(load_agent(cfg.run), run_config["task"], cfg.episodes, seed=cfg.seed,
                      cost_limit=cost_limit, num_envs=cfg.num_envs, backend=cfg.backend,
                      show_progress=cfg.show_progress)  # fmt: skip
    print(f"{cfg.run}: {result.format()} ({'safe' if result.is_safe() else 'unsafe'} at cost "
          f"limit {cost_limit:g}, {result.wall_seconds:.1f} s)")  # fmt: skip
    if cfg.out:
        payload = {"run": cfg.run, "task": result.task, "cost_limit": cost_limit,
                   "seed": cfg.seed, "num_envs": result.num_envs, **result.summary(),
                   "rewards": result.rewards.tolist(), "costs": result.costs.tolist()}  # fmt: skip
        with atomic_path(Path(cfg.out)) as tmp:
            Path(tmp).write_text(json.dumps(payload, indent=1))
    return 0


@dataclass
class ReportConfig:
    """Settings of ``osrl-unlearn report``: evaluate run folders side by side into report.md,
    policies.png (cost and reward, cost limit drawn) and unlearning.png (from history.csv)."""

    runs: List[str] = field(default_factory=list)
    """Run folders to compare, e.g. "[runs/clean,runs/poisoned,runs/poisoned-safe-rule]"."""
    labels: Optional[List[str]] = None
    """A name per run (default: the folder names)."""
    episodes: int = 20
    """Evaluation episodes per run (the same seeded episodes for all)."""
    seed: int = 10_000
    """First episode seed."""
    out: str = "report"
    """Output folder."""
    force: bool = False
    """Replace existing report files."""
    show_progress: bool = True
    """Show progress bars."""


def run_report(cfg: ReportConfig) -> int:
    import json

    from osrl_unlearn.agents.checkpoint import load_agent, read_config
    from osrl_unlearn.errors import ConfigError
    from osrl_unlearn.evaluation import evaluate
    from osrl_unlearn.report import markdown_table, plot_policies, plot_unlearning, read_history_csv

    if not cfg.runs:
        raise ConfigError('pass the run folders to compare: --runs "[runs/a,runs/b]"')
    labels = cfg.labels or [Path(run).name for run in cfg.runs]
    if len(labels) != len(cfg.runs):
        raise ConfigError(f"{len(labels)} labels for {len(cfg.runs)} runs; give one per run.")
    out = Path(cfg.out)
    if (out / "report.md").exists() and not cfg.force:
        raise FileExistsError(f"{out / 'report.md'} exists; pass --force or choose --out.")
    rows, histories, kappa = [], {}, None
    for label, run in zip(labels, cfg.runs, strict=True):
        config = read_config(run)
        result = evaluate(load_agent(run), config["task"], cfg.episodes, seed=cfg.seed,
                          cost_limit=config.get("cost_limit", 10), show_progress=cfg.show_progress)  # fmt: skip
        made = {}
        for record in ("unlearning.json", "training.json"):
            if (Path(run) / record).is_file():
                made = json.loads((Path(run) / record).read_text())
                break
        rows.append({"policy": label, **result.summary(), "wall_seconds": made.get("wall_seconds"),
                     "steps": made.get("steps")})  # fmt: skip
        if (Path(run) / "history.csv").is_file():
            histories[label] = read_history_csv(Path(run) / "history.csv")
            kappa = kappa or made.get("kappa_q") or None
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows)
    figures = [plot_policies(rows, out / "policies.png")]
    if histories:
        figures.append(plot_unlearning(histories, out / "unlearning.png", kappa))
    images = "\n\n".join(f"![{f.stem}]({f.name})" for f in figures)
    (out / "report.md").write_text(
        f"# Policies compared ({cfg.episodes} episodes each, first seed {cfg.seed})\n\n"
        f"{table}\n\n{images}\n"
    )
    print(table + f"\n\nreport: {out / 'report.md'}")
    return 0


def run_make_dataset(cfg) -> int:
    from osrl_unlearn.generate.make_dataset import format_summary, make_dataset

    result = make_dataset(cfg)
    print(format_summary(result.path, result.summary))
    if cfg.out:
        print(f"  copied to {cfg.out}")
    return 0


def run_poison(cfg) -> int:
    from osrl_unlearn.poison import format_summary, poison_dataset

    print(format_summary(poison_dataset(cfg)))
    return 0


@dataclass(frozen=True)
class Command:
    config: type
    run: Callable[[object], int]
    help: str


def _commands() -> dict[str, Command]:
    from osrl_unlearn.demo import DemoConfig, run_demo
    from osrl_unlearn.generate.make_dataset import MakeDatasetConfig
    from osrl_unlearn.poison import PoisonConfig

    return {
        "make-dataset": Command(
            MakeDatasetConfig,
            run_make_dataset,
            "generate a DSRL-format dataset from behaviour policies in the real environment",
        ),
        "poison": Command(
            PoisonConfig,
            run_poison,
            "inject an attacker's relabelled trajectories into a clean dataset (max-cost, ...)",
        ),
        "train": Command(
            TrainConfig,
            run_train,
            "train an OSRL agent with OSRL's trainer into an OSRL run folder (or the keep set only)",
        ),
        "unlearn": Command(
            UnlearnConfig,
            run_unlearn,
            "repair a run trained on poisoned data (--method safe-rule, finetune, retrain, ...)",
        ),
        "evaluate": Command(
            EvaluateConfig,
            run_evaluate,
            "roll a run's policy out in the real environment: reward and cost, normalised",
        ),
        "report": Command(
            ReportConfig,
            run_report,
            "evaluate run folders side by side: report.md with cost/reward plots and curves",
        ),
        "demo": Command(
            DemoConfig,
            run_demo,
            "the main job: attack, damage and repair on CarCircle, with a report",
        ),
    }


def usage(commands: dict[str, Command]) -> str:
    lines = ["usage: osrl-unlearn <command> [--option value ...] [--config_path file.yaml]", ""]
    lines += [f"  {name:<14}{cmd.help}" for name, cmd in commands.items()]
    lines += ["", "`osrl-unlearn <command> --help` lists a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = _commands()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(commands))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"error: unknown command {name!r}\n\n{usage(commands)}", file=sys.stderr)
        return 2
    command = commands[name]
    cfg = pyrallis.parse(config_class=command.config, args=rest)
    try:
        return command.run(cfg)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
