"""The ``osrl-unlearn`` command line: one subcommand per job, each with a pyrallis config.

Every subcommand takes its options as flags (``--task OfflineCarCircle-v0``, nested ones as
``--behaviour.steps 100000``) or from a YAML file (``--config_path my.yaml``). A user mistake,
wherever it is found (while the flags are parsed too), ends with exit code 2 and one line on
stderr that names the problem and a fix; so do a full disk and a folder that cannot be written.
Booleans are strict (true/false, yes/no, 1/0) and numbers are range-checked where declared.
"""

import contextlib
import io
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, List, Optional, Union, get_args, get_origin

import pyrallis

from osrl_unlearn.errors import (
    ConfigError,
    UserError,
    describe_os_error,
    find_user_error,
    read_yaml,
)
from osrl_unlearn.unlearn.config import (
    FinetuneConfig,
    RelabelConfig,
    SafeRuleConfig,
    TrajDeleterConfig,
)
from osrl_unlearn.unlearn.methods import (
    DEFAULT_METHOD,
    OWN_CONFIGS,
    RELABEL,
    TRAINING_METHODS,
    method_config,
)

USER_ERRORS = (UserError, FileExistsError)
MAX_SEED = 2**32 - 1
"""numpy's seeds are 32-bit."""


def check_int(name: str, value: Optional[int], low: int, hint: str = "") -> None:
    """Raises ConfigError unless ``value`` (None allowed: "use the default") is >= ``low``."""
    if value is not None and value < low:
        what = "a positive integer" if low == 1 else f"an integer of {low} or more"
        raise ConfigError(
            f"--{name} must be {what}, got {value}; pass --{name} {low} or more{hint}."
        )


def check_seed(name: str, value: int) -> None:
    if not 0 <= value <= MAX_SEED:
        raise ConfigError(
            f"--{name} must lie in [0, 2**32 - 1], got {value}; pass e.g. --{name} 0."
        )


def check_number(name: str, value: Optional[float], low: float, *, strict: bool = False) -> None:
    """Raises ConfigError unless ``value`` is finite and >= ``low`` (> ``low`` when strict)."""
    if value is None:
        return
    if not math.isfinite(value) or value < low or (strict and value == low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise ConfigError(
            f"--{name} must be a finite number {bound}, got {value}; pass a value {bound}."
        )


def check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ConfigError(
            f"unknown --{name} {value!r}; expected one of {', '.join(choices)} (e.g. --{name} "
            f"{next(iter(choices))})."
        )


@dataclass
class TrainConfig:
    """Settings of ``osrl-unlearn train``: an OSRL agent trained from OSRL's training config by
    OSRL's training step (ours, tested equal and faster, or OSRL's own trainer), written as an OSRL
    run folder (config.yaml + checkpoint/model.pt) that OSRL's eval scripts load."""

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
    learning_rate: Optional[float] = None
    """Learning rate of every network (default: OSRL's per-agent rates from its training config)."""
    trainer: str = "fast"
    """Training step: fast (ours, equal to OSRL's train_one_step) or osrl (OSRL's own trainer)."""
    standardise: bool = False
    """Train on standardised observations (the data's mean and std, kept in config.yaml), folded
    into the networks' first layers: the checkpoint still acts on raw observations in OSRL."""
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
    task: Optional[str] = None
    """The dataset's dsrl task, for a file without a ``task`` attribute (default: the file's)."""

    def __post_init__(self) -> None:
        from osrl_unlearn.agent_specs import SPECS
        from osrl_unlearn.training import PROFILES

        check_choice("agent", self.agent, SPECS)
        check_choice("profile", self.profile, PROFILES)
        check_int("steps", self.steps, 1, " (or leave it out for the profile's)")
        check_int("batch_size", self.batch_size, 1, " (or leave it out for the profile's)")
        if self.hidden is not None and (not self.hidden or min(self.hidden) < 1):
            raise ConfigError(
                f"--hidden must list one or more positive layer sizes, got {self.hidden}; pass "
                'e.g. --hidden "[64, 64]" (or leave it out for the profile\'s).'
            )
        check_number("cost_limit", self.cost_limit, 0.0)
        check_number("learning_rate", self.learning_rate, 0.0, strict=True)
        check_choice("trainer", self.trainer, ("fast", "osrl"))
        check_seed("seed", self.seed)
        check_int("eval_episodes", self.eval_episodes, 0, " (0 skips the evaluation)")
        check_folder_name("name", self.name)


def check_folder_name(flag: str, name: Optional[str]) -> None:
    if name is not None and (not name or name in (".", "..") or "/" in name or "\\" in name):
        raise ConfigError(
            f"--{flag} {name!r} is not a folder name; pass a plain name (no '/'), and --out for "
            "the folder it goes in."
        )


def run_train(cfg: TrainConfig) -> int:
    from osrl_unlearn.data import read_hdf5
    from osrl_unlearn.evaluation import evaluate
    from osrl_unlearn.io import atomic_dir
    from osrl_unlearn.training import profile_settings, train_agent

    if not cfg.dataset:
        raise ConfigError("no dataset: pass --dataset path/to/file.hdf5")
    name = cfg.name or f"{cfg.agent}-{cfg.profile}{'-keep' if cfg.keep_only else ''}-seed{cfg.seed}"
    target = Path(cfg.out) / name
    if target.exists() and not cfg.force:
        raise FileExistsError(f"{target} exists; pass --force to replace it or --name another.")
    if Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise ConfigError(f"--out {cfg.out} is a file, not a folder; pass a folder for the run.")
    data = read_hdf5(cfg.dataset, cfg.task)
    _ = data.task  # a file that does not say its task fails here, before any training
    if cfg.keep_only:
        data = data.split()[0]
    settings = profile_settings(
        cfg.profile, agent=cfg.agent, steps=cfg.steps, hidden=cfg.hidden,
        batch_size=cfg.batch_size, cost_limit=cfg.cost_limit, seed=cfg.seed,
        learning_rate=cfg.learning_rate, trainer=cfg.trainer, standardise=cfg.standardise,
    )  # fmt: skip
    # Train into a staging folder beside the target, then rename: no half-written run folder,
    # no empty --out folder after a failure, and a rerun removes what a killed run left.
    with atomic_dir(target, overwrite=cfg.force) as staging:
        model, run_dir = train_agent(data, settings, staging, "run", cfg.show_progress)
        for item in run_dir.iterdir():
            item.rename(staging / item.name)
        run_dir.rmdir()
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
    method: str = DEFAULT_METHOD
    """relabel (the default), safe-rule, reward-only, trajdeleter, trajdeleter-cost,
    trajdeleter-adv, trajdeleter-adv-cost, finetune or retrain."""
    steps: Optional[int] = None
    """Steps (default: the method's own: relabel 3000, safe-rule 5000)."""
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
    """Settings of safe-rule, reward-only and trajdeleter-adv(-cost); the ones you do not set take
    the method's own."""
    relabel: RelabelConfig = field(default_factory=RelabelConfig)
    """Settings of --method relabel."""
    trajdeleter: TrajDeleterConfig = field(default_factory=TrajDeleterConfig)
    """Settings of --method trajdeleter and trajdeleter-cost."""
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    """Settings of --method finetune and retrain."""

    def __post_init__(self) -> None:
        from osrl_unlearn.unlearn.methods import METHODS

        check_choice("method", self.method, METHODS)
        check_int("steps", self.steps, 1, " (or leave it out for the method's)")
        check_int("batch_size", self.batch_size, 1, " (or leave it out for the run's)")
        check_seed("seed", self.seed)
        check_int("eval_episodes", self.eval_episodes, 0, " (0 skips the evaluation)")


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
    force: bool = False
    """Replace an existing --out file."""
    show_progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        check_int("episodes", self.episodes, 1)
        check_seed("seed", self.seed)
        check_number("cost_limit", self.cost_limit, 0.0)
        check_int("num_envs", self.num_envs, 1)
        check_choice("backend", self.backend, ("sync", "async"))


def run_unlearn(cfg: UnlearnConfig, given: frozenset[str] | None = None) -> int:
    from osrl_unlearn.agents.checkpoint import read_config
    from osrl_unlearn.evaluation import evaluate
    from osrl_unlearn.repair import repair_run

    if not cfg.run or not cfg.dataset:
        raise ConfigError("pass the run to repair and its poisoned data: --run DIR --dataset FILE")
    out = cfg.out or f"{cfg.run.rstrip('/')}-{cfg.method}"
    for flag, source in (("--run", cfg.run), ("--dataset", cfg.dataset)):
        if Path(out).resolve() == Path(source).resolve():
            raise ConfigError(
                f"--out is {flag}: inputs are never overwritten; write the repair to another --out."
            )
    settings = method_settings(cfg, given)
    result = repair_run(
        cfg.run, cfg.dataset, out, method=cfg.method, config=settings,
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


SETTINGS_SECTIONS = ("unlearning", "finetune", "trajdeleter", "relabel")
"""The ``unlearn`` options that hold a method's settings, one section per config class."""


def settings_section(method: str) -> str:
    """The ``--<section>.*`` options that hold ``method``'s settings."""
    if method == RELABEL:
        return "relabel"
    if method in TRAINING_METHODS:
        return "finetune"
    return "trajdeleter" if method in OWN_CONFIGS else "unlearning"


def method_settings(cfg: UnlearnConfig, given: frozenset[str] | None = None) -> Any:
    """The settings ``cfg.method`` runs with: its own section of options (``--relabel.*``,
    ``--trajdeleter.*``, ``--finetune.*``) as the user set it, or for the methods of Safe-RULE's
    loop its defaults with the ``--unlearning.*`` options the user set on top.

    Raises:
        ConfigError: options of another method's section were set (they would be ignored).
    """
    section = settings_section(cfg.method)
    if given is not None:
        stray = sorted(k for k in given if k.split(".", 1)[0] in SETTINGS_SECTIONS
                       and not k.startswith(section + "."))  # fmt: skip
        if stray:
            raise ConfigError(
                f"--{stray[0]} does not apply to --method {cfg.method}, whose settings are "
                f"--{section}.*; drop it or pick the method it belongs to."
            )
    if cfg.method in OWN_CONFIGS:  # its own config: every field the user set arrives as set
        return method_config(cfg.method, getattr(cfg, section))
    if given is not None:
        given = frozenset(k.split(".", 1)[1] for k in given if k.startswith("unlearning."))
    return user_settings(cfg.method, cfg.unlearning, given)


def user_settings(
    method: str, given: SafeRuleConfig, explicit: frozenset[str] | None = None
) -> SafeRuleConfig:
    """The method's own settings, with the fields the user set on top.

    Args:
        method: the repair method, whose defaults the settings start from.
        given: the parsed ``--unlearning.*`` settings.
        explicit: names of the fields the user set (flags or config file), even to a value equal
            to the generic default (``--unlearning.beta_init 0.1`` for TrajDeleter, whose own is
            1); when None, the fields that differ from the generic defaults.
    """
    from dataclasses import asdict, replace

    from osrl_unlearn.unlearn.methods import method_config

    values = asdict(given)
    if explicit is None:
        defaults = asdict(SafeRuleConfig())
        changed = {k: v for k, v in values.items() if v != defaults[k]}
    else:
        changed = {k: values[k] for k in explicit if k in values}
    return replace(method_config(method), **changed)


def run_evaluate(cfg: EvaluateConfig) -> int:
    import json

    from osrl_unlearn.agents.checkpoint import load_agent, read_config
    from osrl_unlearn.evaluation import evaluate
    from osrl_unlearn.io import atomic_path

    if not cfg.run:
        raise ConfigError("pass the run folder to evaluate: --run DIR")
    if cfg.out and Path(cfg.out).is_dir():
        raise ConfigError(f"--out {cfg.out} is a folder; pass a file name such as eval.json.")
    if cfg.out and Path(cfg.out).exists() and not cfg.force:
        raise FileExistsError(f"{cfg.out} exists; pass --force to replace it or choose --out.")
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
        with atomic_path(Path(cfg.out), overwrite=cfg.force) as tmp:
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

    def __post_init__(self) -> None:
        check_int("episodes", self.episodes, 1)
        check_seed("seed", self.seed)


def run_report(cfg: ReportConfig) -> int:
    import json

    from osrl_unlearn.agents.checkpoint import load_agent, read_config
    from osrl_unlearn.evaluation import evaluate
    from osrl_unlearn.io import atomic_path, made_dirs
    from osrl_unlearn.report import markdown_table, plot_policies, plot_unlearning, read_history_csv

    if not cfg.runs:
        raise ConfigError('pass the run folders to compare: --runs "[runs/a,runs/b]"')
    labels = cfg.labels or [Path(run).name for run in cfg.runs]
    if len(labels) != len(cfg.runs):
        raise ConfigError(f"{len(labels)} labels for {len(cfg.runs)} runs; give one per run.")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder for the report.")
    if (out / "report.md").exists() and not cfg.force:
        raise FileExistsError(f"{out / 'report.md'} exists; pass --force or choose --out.")
    for run in cfg.runs:  # every run folder is checked before the first evaluation starts
        load_agent(run)
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
    table = markdown_table(rows)
    written: list[Path] = []
    try:  # a failed write takes back what this run wrote, and the folder if it made it
        with made_dirs(out):
            written.append(out / "policies.png")
            figures = [plot_policies(rows, out / "policies.png")]
            if histories:
                written.append(out / "unlearning.png")
                figures.append(plot_unlearning(histories, out / "unlearning.png", kappa))
            images = "\n\n".join(f"![{f.stem}]({f.name})" for f in figures)
            with atomic_path(out / "report.md", overwrite=True) as tmp:
                tmp.write_text(
                    f"# Policies compared ({cfg.episodes} episodes each, first seed {cfg.seed})"
                    f"\n\n{table}\n\n{images}\n"
                )
    except BaseException:
        if not cfg.force:
            for path in written:
                path.unlink(missing_ok=True)
        raise
    print(table + f"\n\nreport: {out / 'report.md'}")
    return 0


def run_make_dataset(cfg) -> int:
    from osrl_unlearn.generate.make_dataset import format_summary, make_dataset

    # checked before the generation (minutes), not after it
    check_int("workers", cfg.workers, 1)
    check_seed("seed", cfg.seed)
    check_number("cost_limit", cfg.cost_limit, 0.0)
    if cfg.out is not None and Path(cfg.out).is_dir():
        raise ConfigError(f"--out {cfg.out} is a folder; pass a file name such as clean.hdf5.")
    if cfg.out is not None and Path(cfg.out).exists() and not cfg.force:
        raise FileExistsError(f"{cfg.out} exists; pass --force to replace it or choose --out.")
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
    run: Callable[..., int]
    help: str
    takes_given: bool = False
    """``run(cfg, given)`` also receives the dotted names of the options the user set."""


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
            "train an OSRL agent (OSRL's config and training step) into an OSRL run folder (or the keep set only)",
        ),
        "unlearn": Command(
            UnlearnConfig,
            run_unlearn,
            "repair a run trained on poisoned data (--method safe-rule, finetune, retrain, ...)",
            takes_given=True,
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


TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
NULL_WORDS = ("null", "none", "~")


def option_types(config_class: type, prefix: str = "") -> dict[str, Any]:
    """Every option of ``config_class`` by its dotted flag name (``behaviour.steps``), with its
    declared type; a nested dataclass is listed itself and by each of its fields."""
    import typing

    hints = typing.get_type_hints(config_class)
    out: dict[str, Any] = {}
    for f in fields(config_class):
        if not f.init:
            continue
        kind = hints.get(f.name, f.type)
        out[prefix + f.name] = kind
        if is_dataclass(kind):
            out.update(option_types(kind, prefix + f.name + "."))
    return out


def _describe(kind: Any) -> str:
    args = [a for a in get_args(kind) if a is not type(None)]
    if get_origin(kind) is Union:
        return " or ".join(_describe(a) for a in args) + " (or null)"
    if get_origin(kind) in (list, List):
        return f"a list of {_describe(args[0]) if args else 'values'} such as [64, 64]"
    return {
        bool: "true or false (also yes/no, 1/0)",
        int: "an integer",
        float: "a finite number",
        str: "a text",
    }.get(kind, getattr(kind, "__name__", str(kind)))


def _conforms(value: Any, kind: Any, raw: Optional[str] = None) -> bool:
    """Whether ``value`` (parsed from YAML; ``raw`` the flag's text) is a valid ``kind``."""
    origin, args = get_origin(kind), get_args(kind)
    if origin is Union:
        if value is None and type(None) in args:
            return True
        return any(_conforms(value, a, raw) for a in args if a is not type(None))
    if origin in (list, List):
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    if kind is bool:
        if raw is not None:
            return raw.strip().lower() in TRUE_WORDS + FALSE_WORDS
        return isinstance(value, bool) or value in (0, 1) and not isinstance(value, float)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if raw is not None and not ok:  # YAML reads 1e-3 as text
            with contextlib.suppress(ValueError):
                value, ok = float(raw), True
        return ok and math.isfinite(value)
    if kind is str:
        return value is not None and not isinstance(value, (list, dict))
    if is_dataclass(kind):
        return isinstance(value, dict)
    return True


def _split_flags(args: list[str]) -> list[tuple[int, str, Optional[str]]]:
    """(position, name, value) of every ``--name value`` / ``--name=value`` in ``args``."""
    found, i = [], 0
    while i < len(args):
        token = args[i]
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            if eq:
                found.append((i, name, value))
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                found.append((i, name, args[i + 1]))
                i += 1
            else:
                found.append((i, name, None))
        i += 1
    return found


def _resolve(command: str, name: str, types: dict[str, Any]) -> str:
    """The option ``name`` stands for (argparse accepts unique prefixes); raises when unknown."""
    import difflib

    if name in types or name in ("config_path", "help"):
        return name
    matches = [key for key in (*types, "config_path") if key.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    close = difflib.get_close_matches(name, list(types), n=1)
    hint = f"did you mean --{close[0]}? " if close else ""
    raise ConfigError(
        f"unknown option --{name} for {command}; {hint}`osrl-unlearn {command} --help` lists "
        "the options."
    )


def _check_flag(command: str, name: str, raw: str, kind: Any) -> None:
    import yaml

    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"--{name}: cannot read {raw!r} ({problem}); pass {_describe(kind)}, lists quoted "
            'as "[64, 64]".'
        ) from None
    if not _conforms(value, kind, raw if isinstance(value, (str, bool, int, float)) else None):
        raise ConfigError(f"--{name} takes {_describe(kind)}, got {raw!r}.")


def _check_config_file(command: str, path: str, types: dict[str, Any]) -> set[str]:
    """Validates a ``--config_path`` file; returns the dotted names of the options it sets."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--config_path {path}: no such file; pass an existing YAML file.")
    content = read_yaml(file, ConfigError, f"--config_path {path}", "fix the file",
                        "check the file's permissions")  # fmt: skip
    if content is None:
        return set()
    if not isinstance(content, dict):
        raise ConfigError(
            f"--config_path {path}: holds a {type(content).__name__}, not option: value lines; "
            "write one `name: value` per line."
        )
    given: set[str] = set()

    def walk(mapping: dict, prefix: str) -> None:
        for key, value in mapping.items():
            name = f"{prefix}{key}"
            if name not in types:
                raise ConfigError(
                    f"--config_path {path}: unknown option {name!r}; `osrl-unlearn {command} "
                    "--help` lists the options."
                )
            if is_dataclass(types[name]) and isinstance(value, dict):
                walk(value, name + ".")
                continue
            if not _conforms(value, types[name]):
                raise ConfigError(
                    f"--config_path {path}: {name} takes {_describe(types[name])}, got {value!r}."
                )
            given.add(name)

    walk(content, "")
    return given


def is_field_definition(line: str) -> bool:
    """Whether a source line declares a dataclass field (``name: type [= default]``). pyrallis's
    own test takes any line with one colon for a field, so a field whose docstring's first line
    has a colon ("(default: the profile's)") lost its ``--help`` text."""
    code = line.split("#", 1)[0].split("=", 1)[0]
    name, colon, kind = code.partition(":")
    return bool(colon) and name.strip().isidentifier() and bool(kind.strip()) and ":" not in kind


def _prepare_docstrings() -> None:
    """pyrallis reads every option's ``--help`` text from the source: with our stricter field
    test (:func:`is_field_definition`), and once (it re-reads on each parse, 0.3 s for
    ``unlearn``; the source does not change while we run)."""
    import functools

    from pyrallis.wrappers import docstring

    docstring._contains_attribute_definition = is_field_definition
    if not hasattr(docstring.get_attribute_docstring, "cache_info"):
        docstring.get_attribute_docstring = functools.cache(docstring.get_attribute_docstring)


def parse_options(command: str, config_class: type, args: list[str]) -> tuple[Any, frozenset[str]]:
    """The config of ``command`` from its flags (and ``--config_path`` file), checked strictly.

    Returns:
        the config, and the dotted names of the options the user set.

    Raises:
        ConfigError: an unknown option, a value of the wrong type (booleans only true/false,
            yes/no, 1/0), a value out of range, an unreadable config file.
        SystemExit: ``--help`` (code 0).
    """
    types = option_types(config_class)
    given: set[str] = set()
    args = list(args)
    for position, name, raw in _split_flags(args):
        key = _resolve(command, name, types)
        if raw is None or key == "help":
            continue  # argparse reports the missing value
        if key == "config_path":
            given |= _check_config_file(command, raw, types)
            continue
        _check_flag(command, key, raw, types[key])
        given.add(key)
        kind = types[key]
        if kind is str or (kind == Optional[str] and raw.strip().lower() not in NULL_WORDS):
            quoted = '"' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"'
            # a text stays as typed: YAML would read `--name 007` as 7 and `--out no` as False
            if "=" in args[position]:
                args[position] = f"--{name}={quoted}"
            else:
                args[position + 1] = quoted
    _prepare_docstrings()
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            cfg = pyrallis.parse(config_class=config_class, args=args)
    except SystemExit as exc:
        if not exc.code:
            raise
        lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
        reason = lines[-1].split("error: ", 1)[-1] if lines else "cannot parse the options"
        raise ConfigError(f"{reason}; `osrl-unlearn {command} --help` lists the options.") from None
    except Exception as exc:
        error = find_user_error(exc)
        if error is None:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"cannot read the options ({first}); `osrl-unlearn {command} --help` lists them."
            ) from exc
        nested = re.search(r"into field \"<class '[^']+'>\.(\w+)\"", str(exc))
        if nested and error is not exc:
            prefix, text = nested.group(1), str(error)
            first = text.split(" ", 1)[0]
            if f"{prefix}.{first}" in types:  # "steps must be positive" -> "--unlearning.steps ..."
                raise ConfigError(f"--{prefix}.{text}") from None
            raise ConfigError(f"--{prefix}.*: {text}") from None
        raise error from None
    return cfg, frozenset(given)


def user_message(exc: BaseException) -> Optional[str]:
    """The one line a user sees for ``exc``, or None for an error that is a bug (a traceback)."""
    error = find_user_error(exc)
    if error is not None:
        message = str(error)
    elif isinstance(exc, FileExistsError) and exc.errno is None:
        message = str(exc)
    elif isinstance(exc, OSError):
        message = describe_os_error(exc)
        if message is None:
            return None
    else:
        return None
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def exit_code(run: Callable[[], int]) -> int:
    """``run()``'s exit code, with a user's mistake as one ``error:`` line and code 2 and an
    interrupt as code 130; any other exception is a bug and propagates with its traceback."""
    try:
        return run()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = user_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


def run_script(main: Callable[[Any], Any], config_class: type,
               argv: list[str] | None = None) -> int:  # fmt: skip
    """The entry point of a benchmark or example script: its pyrallis config parsed from
    ``argv``, then ``main(config)``; bad input ends as in the CLI's commands (:func:`exit_code`;
    ``sys.exit(run_script(main, Config))``)."""

    def run() -> int:
        _prepare_docstrings()
        main(pyrallis.parse(config_class=config_class, args=argv))
        return 0

    return exit_code(run)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = _commands()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(commands))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(
            f"error: unknown command {name!r}; `osrl-unlearn --help` lists them.", file=sys.stderr
        )
        return 2
    command = commands[name]

    def run() -> int:
        try:
            cfg, given = parse_options(name, command.config, rest)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        return command.run(cfg, given) if command.takes_given else command.run(cfg)

    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
