"""The ``osrl-unlearn`` command line: one subcommand per job, each with a pyrallis config.

Every subcommand takes its options as flags (``--task OfflineCarCircle-v0``, nested ones as
``--behaviour.steps 100000``) or from a YAML file (``--config_path my.yaml``). A user mistake ends
with a one-line error and exit code 2, not a traceback.
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import pyrallis

from osrl_unlearn.errors import UserError

USER_ERRORS = (UserError, FileExistsError)


@dataclass
class DemoConfig:
    """Settings of ``osrl-unlearn demo`` (the README's main job)."""

    task: str = "OfflineCarCircle-v0"
    """Task of the demo."""
    seed: int = 0
    """Seed of every step."""
    cache: Optional[str] = None
    """Cache root; default $OSRL_UNLEARN_CACHE or ~/.cache/osrl-unlearn."""
    quick: bool = False
    """A tiny profile that finishes in about a minute (for tests), with a poor dataset."""
    show_progress: bool = True
    """Show progress bars."""


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


def run_demo(cfg: DemoConfig) -> int:
    """The main job. Until attacks and unlearning land, it makes the clean CarCircle dataset."""
    from osrl_unlearn.data.hdf5 import check_with_dsrl
    from osrl_unlearn.generate.make_dataset import MakeDatasetConfig, format_summary, make_dataset

    data_cfg = MakeDatasetConfig(
        task=cfg.task, seed=cfg.seed, cache=cfg.cache, show_progress=cfg.show_progress
    )
    if cfg.quick:
        apply_quick_profile(data_cfg)
    print(f"[1/1] clean {cfg.task} dataset from behaviour policies")
    result = make_dataset(data_cfg)
    print(format_summary(result.path, result.summary))
    rows = check_with_dsrl(result.path, cfg.task)
    print(f"  dsrl's env.get_dataset(h5path=...) read {rows} transitions")
    print(f"  spread plot: {result.path.parent / 'spread.png'}")
    return 0


def apply_quick_profile(cfg) -> None:
    """Shrinks a MakeDatasetConfig to a seconds-long run (tests and --quick)."""
    cfg.episodes = 8
    cfg.behaviour.steps = 2_000
    cfg.behaviour.step_per_epoch = 1_000
    cfg.behaviour.training_envs = 2
    cfg.behaviour.episode_per_collect = 2


@dataclass(frozen=True)
class Command:
    config: type
    run: Callable[[object], int]
    help: str


def _commands() -> dict[str, Command]:
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
        "demo": Command(DemoConfig, run_demo, "the main job (see the README)"),
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
