"""OSRL's training configs: every field of ``examples/configs/<algo>_configs.py``'s
``<Algo>TrainConfig`` with OSRL's defaults (osrl-lib 0.1.0 does not ship its examples, so they are
restated here).

A run folder whose ``config.yaml`` holds all of these is one OSRL's own scripts
(``examples/eval/eval_<algo>.py``, ``load_config_and_model``) read as if OSRL had written it; our
training starts from the same values, so a "default" agent here is OSRL's default agent.
"""

from __future__ import annotations

import copy
from typing import Any

from osrl_unlearn.agent_specs import SPECS

_COMMON: dict[str, Any] = {
    "project": "OSRL-baselines", "group": None, "name": None, "suffix": "", "logdir": "logs",
    "verbose": True, "outliers_percent": None, "noise_scale": None, "inpaint_ranges": None,
    "epsilon": None, "density": 1.0, "task": "OfflineCarCircle-v0", "dataset": None, "seed": 0,
    "device": "cpu", "threads": 4, "reward_scale": 0.1, "cost_scale": 1, "cost_limit": 10,
    "episode_len": 300, "batch_size": 512, "num_workers": 8, "a_hidden_sizes": [256, 256],
    "c_hidden_sizes": [256, 256], "gamma": 0.99, "eval_episodes": 10, "eval_every": 2500,
}  # fmt: skip

OSRL_TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "bcql": {
        **_COMMON, "prefix": "BCQL", "actor_lr": 0.001, "critic_lr": 0.001, "vae_lr": 0.001,
        "phi": 0.05, "lmbda": 0.75, "beta": 0.5, "update_steps": 100_000,
        "vae_hidden_sizes": 400, "sample_action_num": 10, "tau": 0.005, "num_q": 2, "num_qc": 2,
        "PID": [0.1, 0.003, 0.001],
    },
    "bearl": {
        **_COMMON, "prefix": "BEARL", "actor_lr": 0.001, "critic_lr": 0.001, "vae_lr": 0.001,
        "update_steps": 300_000, "vae_hidden_sizes": 400, "sample_action_num": 10, "tau": 0.005,
        "beta": 0.5, "lmbda": 0.75, "mmd_sigma": 50, "target_mmd_thresh": 0.05,
        "num_samples_mmd_match": 10, "start_update_policy_step": 0, "kernel": "gaussian",
        "num_q": 2, "num_qc": 2, "PID": [0.1, 0.003, 0.001],
    },
    "cpq": {
        **_COMMON, "prefix": "CPQ", "actor_lr": 0.0001, "critic_lr": 0.001, "alpha_lr": 0.0001,
        "vae_lr": 0.001, "update_steps": 100_000, "vae_hidden_sizes": 400,
        "sample_action_num": 10, "tau": 0.005, "beta": 0.5, "num_q": 2, "num_qc": 2,
        "qc_scalar": 1.5,
    },
    "coptidice": {
        **_COMMON, "prefix": "COptiDICE", "actor_lr": 0.0001, "critic_lr": 0.0001,
        "scalar_lr": 0.0001, "update_steps": 100_000, "alpha": 0.5, "cost_ub_epsilon": 0.01,
        "f_type": "softchi", "num_nu": 2, "num_chi": 2,
    },
}  # fmt: skip
"""Per agent, OSRL's training config (its CarCircle values, which are its defaults)."""

LEARNING_RATE_KEYS = {key: spec.config_learning_rates for key, spec in SPECS.items()}
"""The config keys OSRL's ``train_<algo>.py`` hands the agent's trainer as learning rates."""


def osrl_train_config(agent: str) -> dict[str, Any]:
    """A fresh copy of OSRL's training config of ``agent``."""
    return copy.deepcopy(OSRL_TRAIN_DEFAULTS[agent])


def trainer_learning_rates(agent: str, config: dict[str, Any]) -> dict[str, float]:
    """The learning-rate arguments of the agent's trainer, as OSRL's script takes them from
    ``config`` (OSRL's defaults for keys the config lacks)."""
    defaults = OSRL_TRAIN_DEFAULTS[agent]
    return {key: float(config.get(key, defaults[key])) for key in LEARNING_RATE_KEYS[agent]}
