"""Training an OSRL agent, fed by the fast sampler, into an OSRL run folder.

The training step is ours by default (:mod:`osrl_unlearn.fast`: OSRL's ``train_one_step``,
computed several times faster, tested equal to it); ``trainer="osrl"`` runs OSRL's own trainer.
The run folder is written the way OSRL's ``examples/train/train_<algo>.py`` writes it: fsrl's
logger saves ``config.yaml`` and ``checkpoint/model.pt`` holding ``{"model_state": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from tqdm.auto import tqdm

from osrl_unlearn.agent_specs import SPECS
from osrl_unlearn.agents.checkpoint import build_agent
from osrl_unlearn.data import BatchSampler, OfflineDataset, dataset_stats, layout_for
from osrl_unlearn.fast import learning_rates
from osrl_unlearn.osrl_configs import osrl_train_config
from osrl_unlearn.stack import import_fsrl
from osrl_unlearn.standardise import Standardisation, fold
from osrl_unlearn.tasks import get_task
from osrl_unlearn.trainers import make_trainer, osrl_trainer  # noqa: F401  (re-exported)


@dataclass
class TrainSettings:
    """A CPU-sized OSRL training run (OSRL's defaults are hidden [256, 256] and 100k+ steps)."""

    agent: str = "bcql"
    steps: int = 2000
    batch_size: int = 512
    hidden: list[int] = field(default_factory=lambda: [128, 128])
    cost_limit: float = 10.0
    seed: int = 0
    learning_rate: Optional[float] = None
    """Every network's learning rate; None keeps OSRL's per-agent rates (its training config)."""
    vae_hidden: int = 0
    """VAE hidden size of BCQ-Lag / BEAR-Lag / CPQ; 0 means max(hidden)."""
    trainer: str = "fast"
    """Training step: ``fast`` (ours, equal to OSRL's) or ``osrl`` (OSRL's own trainer)."""
    osrl: Dict[str, Any] = field(default_factory=dict)
    """OSRL training-config keys set over OSRL's defaults (e.g. ``{"PID": [0.5, 0.01, 0.01]}``)."""
    standardise: bool = False
    """Train on standardised observations (the data's per-feature mean and std), folded into the
    networks' first layers at the end: the checkpoint acts on raw observations in OSRL's own code
    (:mod:`osrl_unlearn.standardise`); the mean and std are kept in ``config.yaml``."""


PROFILES: dict[str, dict[str, Any]] = {
    "osrl": {"hidden": [256, 256], "vae_hidden": 400, "batch_size": 512, "steps": 100_000},
    "cpu": {"hidden": [128, 128], "batch_size": 512, "steps": 20_000},
    "small": {"hidden": [32, 32], "batch_size": 64, "steps": 20_000},
    "quick": {"hidden": [32, 32], "batch_size": 128, "steps": 300},
}
"""Training profiles: ``osrl`` is OSRL's defaults (hours on this CPU); ``cpu`` and ``small`` were
chosen by measuring what policy each size gives here (``benchmarks/profiles.py``, see the
README): ``cpu`` ~15 min per BCQ-Lag agent, ``small`` ~4 min (the demo's and the ``cpu`` benchmark
grid's); ``quick`` is for tests and smoke runs (not a usable policy)."""


def profile_settings(profile: str, **overrides: Any) -> TrainSettings:
    """TrainSettings of a named profile, with ``overrides`` (None values ignored) on top."""
    from osrl_unlearn.errors import ConfigError

    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    values = {**PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None}}
    return TrainSettings(**values)


def training_config(data: OfflineDataset, settings: TrainSettings) -> dict[str, Any]:
    """The agent's complete OSRL training config: OSRL's own ``<Algo>TrainConfig`` defaults with
    the task, seed and the profile's sizes on top (what OSRL's scripts build and evaluate from)."""
    task = get_task(data.task)
    config = osrl_train_config(settings.agent)
    config.update(
        task=task.name, agent=settings.agent, seed=settings.seed, episode_len=task.episode_len,
        a_hidden_sizes=list(settings.hidden), c_hidden_sizes=list(settings.hidden),
        batch_size=settings.batch_size, update_steps=settings.steps,
        cost_limit=settings.cost_limit, trainer=settings.trainer,
    )  # fmt: skip
    if "vae_hidden_sizes" in config:
        config["vae_hidden_sizes"] = settings.vae_hidden or max(settings.hidden)
    if settings.learning_rate is not None:
        config.update(learning_rates(settings.agent, settings.learning_rate))
    config.update(settings.osrl)
    if settings.standardise:
        config.update(Standardisation.of(data.observations).config_entries())
    return config


def train_agent(
    data: OfflineDataset,
    settings: TrainSettings,
    run_parent: str | Path | None = None,
    run_name: str = "run",
    show_progress: bool = True,
    callback: Callable[[int, torch.nn.Module], None] | None = None,
) -> tuple[torch.nn.Module, Path | None]:
    """Trains ``settings.agent`` on ``data`` (``settings.trainer``'s step); writes a run folder if
    asked.

    ``callback(steps_done, model)`` runs after every step (e.g. to evaluate at milestones). With
    ``settings.standardise`` the model it gets reads standardised observations until the end of
    training; :func:`osrl_unlearn.evaluation.evaluate` acts with a folded copy of it.
    """
    import_fsrl()
    from fsrl.utils import BaseLogger, DummyLogger

    config = training_config(data, settings)
    torch.manual_seed(settings.seed)
    model = build_agent(settings.agent, config)
    standardisation = Standardisation.from_config(config)
    if standardisation is not None:
        data = standardisation.applied_to(data)
        model.observation_standardisation = standardisation
    if SPECS[settings.agent].dataset_statistics:  # OSRL's script hands COptiDICE these
        stats = dataset_stats(data)
        model.init_state_propotion = stats.init_state_proportion
        model.observations_std = torch.from_numpy(stats.observations_std)
        model.actions_std = torch.from_numpy(stats.actions_std)
    logger = DummyLogger()
    if run_parent is not None:
        logger = BaseLogger(str(run_parent), log_txt=False, name=run_name)
        logger.save_config(config, verbose=False)
        logger.setup_checkpoint_fn(lambda: {"model_state": model.state_dict()})
    # fsrl's BaseLogger keeps no per-step values outside wandb/tensorboard: skip the host syncs
    step_logger = None if isinstance(logger, (DummyLogger, BaseLogger)) else logger
    trainer = make_trainer(settings.trainer, settings.agent, model, step_logger)
    sampler = BatchSampler(
        data, settings.batch_size, layout=layout_for(settings.agent), seed=settings.seed,
        reward_scale=config["reward_scale"], cost_scale=config["cost_scale"],
    )  # fmt: skip
    model.train()
    for step, batch in enumerate(
        tqdm(
            sampler.batches(settings.steps),
            total=settings.steps,
            desc=f"training {settings.agent} ({settings.trainer})",
            disable=not show_progress,
        )
    ):
        trainer.train_one_step(*batch)
        if callback is not None:
            callback(step + 1, model)
            model.train()
    model.eval()
    if standardisation is not None:
        fold(model, standardisation)
        del model.observation_standardisation
    if run_parent is None:
        return model, None
    logger.save_checkpoint()
    return model, Path(logger.log_dir)


def cached_run(
    data: OfflineDataset,
    settings: TrainSettings,
    cache: str | Path | None = None,
    show_progress: bool = True,
    callback: Callable[[int, torch.nn.Module], None] | None = None,
) -> Path:
    """The OSRL run folder of ``settings`` trained on ``data``, trained once and then reused.

    Keyed by the data's content hash and every training setting, under ``<cache>/agents``; the
    training wall time is kept in the run's ``training.json``. ``callback`` as in
    :func:`train_agent` (not called when the run comes from the cache).
    """
    import json
    import os
    import shutil
    import tempfile
    import time
    from dataclasses import asdict

    from osrl_unlearn.cache import cache_dir
    from osrl_unlearn.io import clean_stale, staging_prefix

    key = {"data": data.content_hash(), **asdict(settings)}
    if not settings.standardise:  # the key of every run cached before the setting existed
        del key["standardise"]
    folder = cache_dir("agents", data.task, key, cache)
    run = folder / "run"
    if (run / "checkpoint" / "model.pt").is_file():
        return run
    folder.mkdir(parents=True, exist_ok=True)
    # staged under a name that carries this process's id: a rerun removes what a killed run left
    clean_stale(run)
    if run.exists():  # a cache entry without its checkpoint is incomplete: train it again
        shutil.rmtree(run, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=staging_prefix(run), dir=folder))
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        _, run_dir = train_agent(data, settings, staging, "run", show_progress, callback)
        record = {"wall_seconds": time.perf_counter() - started,
                  "cpu_seconds": time.process_time() - cpu_started, "steps": settings.steps}  # fmt: skip
        (run_dir / "training.json").write_text(json.dumps(record))
        try:
            os.rename(run_dir, run)
        except OSError:  # another worker finished the same run first: keep theirs
            if not (run / "checkpoint" / "model.pt").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return run


def training_seconds(run: Path, clock: str = "wall") -> float | None:
    """Wall (``clock="wall"``) or this process's CPU time (``"cpu"``) recorded by
    :func:`cached_run` for a run folder (None if not recorded: runs cached before CPU time was
    recorded have wall time only)."""
    import json

    path = Path(run) / "training.json"
    return json.loads(path.read_text()).get(f"{clock}_seconds") if path.is_file() else None
