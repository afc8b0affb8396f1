"""What the package knows about each OSRL agent, in one place.

Every per-agent table elsewhere (batch layouts, OSRL class and trainer names, constructor keys,
learning-rate arguments, our subclass, our training step) is read from :data:`SPECS`. Adding an
agent means adding its spec here, its subclass (``osrl_unlearn.agents``), its fast step
(``osrl_unlearn.fast``) and its OSRL training config (``osrl_unlearn.osrl_configs``).

The module imports nothing heavy: the data layer and the command line read it without torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AgentSpec:
    """One OSRL agent as this package uses it."""

    key: str
    """The agent's name in OSRL's scripts and in ours (``bcql``)."""
    osrl_name: str
    """OSRL's class name, also the prefix of its trainer and training config (``BCQL``)."""
    layout: str
    """Batch layout its trainer takes: ``transition`` or ``coptidice`` (with ``is_init``)."""
    constructor_keys: tuple[str, ...]
    """``config.yaml`` keys OSRL's ``eval_<algo>.py`` builds the agent from, beyond the common
    sizes (``a_hidden_sizes``, ``c_hidden_sizes``, ``gamma``, ``cost_limit``, ``episode_len``)."""
    trainer_learning_rates: dict[str, float] = field(default_factory=dict)
    """The learning-rate arguments of OSRL's ``<Name>Trainer`` and their defaults there (the
    training config's own values are in :mod:`osrl_unlearn.osrl_configs`)."""
    config_learning_rates: tuple[str, ...] = ()
    """The training-config keys OSRL's ``train_<algo>.py`` hands the trainer as rates (BEAR-Lag's
    script leaves ``alpha_lr`` at the trainer's default)."""
    dataset_statistics: bool = False
    """Its constructor takes the dataset's statistics (COptiDICE) and its trainer one batch
    tuple instead of unpacked tensors."""
    action_rule: str = "actor-forward"
    """How OSRL's evaluation acts (:data:`osrl_unlearn.evaluation.ACTION_RULES`):
    ``vae-perturbation`` (BCQ-Lag's actor on a VAE-decoded action), ``actor-forward`` (the
    deterministic ``_actor_forward``), ``actor-mode`` (the actor's deterministic mode)."""
    subclass: str = ""
    """``module:Class`` of our subclass with ``unlearn``."""
    fast_step: str = ""
    """``module:Class`` of our training step (:mod:`osrl_unlearn.fast`)."""

    def agent_class(self) -> type:
        return _resolve(self.subclass)

    def step_class(self) -> type:
        return _resolve(self.fast_step)


def _resolve(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


_TWIN_CRITIC = ("vae_hidden_sizes", "sample_action_num", "PID", "tau", "lmbda", "beta")

SPECS: dict[str, AgentSpec] = {
    spec.key: spec
    for spec in (
        AgentSpec(
            "bcql", "BCQL", "transition", (*_TWIN_CRITIC, "phi", "num_q", "num_qc"),
            {"actor_lr": 1e-4, "critic_lr": 1e-4, "vae_lr": 1e-4},
            ("actor_lr", "critic_lr", "vae_lr"),
            action_rule="vae-perturbation",
            subclass="osrl_unlearn.agents.actor_critic:BCQL",
            fast_step="osrl_unlearn.fast.bcql:BCQLStep",
        ),
        AgentSpec(
            "bearl", "BEARL", "transition",
            (*_TWIN_CRITIC, "num_q", "num_qc", "mmd_sigma", "target_mmd_thresh",
             "start_update_policy_step"),
            {"actor_lr": 1e-3, "critic_lr": 1e-3, "vae_lr": 1e-3, "alpha_lr": 1e-3},
            ("actor_lr", "critic_lr", "vae_lr"),
            subclass="osrl_unlearn.agents.actor_critic:BEARL",
            fast_step="osrl_unlearn.fast.bcql:BEARLStep",
        ),
        AgentSpec(
            "cpq", "CPQ", "transition",
            ("vae_hidden_sizes", "sample_action_num", "tau", "beta", "num_q", "num_qc",
             "qc_scalar"),
            {"actor_lr": 1e-4, "critic_lr": 1e-4, "alpha_lr": 1e-4, "vae_lr": 1e-4},
            ("actor_lr", "critic_lr", "alpha_lr", "vae_lr"),
            subclass="osrl_unlearn.agents.actor_critic:CPQ",
            fast_step="osrl_unlearn.fast.cpq:CPQStep",
        ),
        AgentSpec(
            "coptidice", "COptiDICE", "coptidice",
            ("alpha", "f_type", "cost_ub_epsilon", "num_nu", "num_chi"),
            {"actor_lr": 1e-3, "critic_lr": 1e-3, "scalar_lr": 1e-3},
            ("actor_lr", "critic_lr", "scalar_lr"),
            dataset_statistics=True,
            action_rule="actor-mode",
            subclass="osrl_unlearn.agents.coptidice:COptiDICE",
            fast_step="osrl_unlearn.fast.coptidice:COptiDICEStep",
        ),
    )
}  # fmt: skip
"""Agent name -> its spec."""


def spec_of(agent: Any) -> AgentSpec:
    """The spec of an agent object: ours or OSRL's own class (matched by the OSRL class it is or
    derives from).

    Raises:
        TypeError: not an OSRL agent.
    """
    by_class = {spec.osrl_name: spec for spec in SPECS.values()}
    for cls in type(agent).__mro__:
        if cls.__name__ in by_class and cls.__module__.split(".")[0] in ("osrl", "osrl_unlearn"):
            return by_class[cls.__name__]
    raise TypeError(f"{type(agent).__name__} is not an OSRL agent; expected one of "
                    f"{', '.join(by_class)}")  # fmt: skip


def agent_spec(name: str) -> AgentSpec:
    """The spec of agent ``name`` (case-insensitive).

    Raises:
        KeyError: an unknown agent, with the known ones named.
    """
    try:
        return SPECS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown agent {name!r}; expected one of {', '.join(SPECS)}") from None
