"""The repair methods behind ``agent.unlearn(..., method=...)`` and the ablations of Safe-RULE.

Every gradient method is the one loop of :mod:`.loop` with some terms switched (spec section 6):

- ``safe-rule``: the method (paper defaults);
- ``reward-only``: Safe-RULE with every cost term removed;
- ``trajdeleter-adv`` / ``trajdeleter-adv-cost``: (our earlier reading of TrajDeleter) critics frozen while the actor suppresses the reward
  advantage on forget states (plus a cost-advantage term), fixed beta_f = 1, then a convergence
  phase on keep data only;
- ``finetune``: the agent's own OSRL training step on keep data;
- ``retrain``: a fresh agent of the same architecture trained on keep data by OSRL's trainer;
- ``trajdeleter`` / ``trajdeleter-cost``: TrajDeleter as its authors run it (:mod:`.trajdeleter`,
  its own :class:`TrajDeleterConfig`);
- ``relabel`` (the default, :data:`DEFAULT_METHOD`): ours, the agent's own training step on keep data and forget data given corrected,
  pessimistic labels, from a reset actor (:mod:`.relabel`, its own :class:`RelabelConfig`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from osrl_unlearn.errors import ConfigError
from osrl_unlearn.unlearn.config import (
    FinetuneConfig,
    RelabelConfig,
    SafeRuleConfig,
    TrajDeleterConfig,
)

RELABEL = "relabel"
DEFAULT_METHOD = RELABEL
"""What ``unlearn``, ``repair_run`` and ``osrl-unlearn unlearn`` run when no method is named: the
method that repaired most on the ``cpu`` grid (docs/results.md)."""
OWN_CONFIGS: dict[str, Any] = {
    "finetune": (FinetuneConfig, {}),
    "retrain": (FinetuneConfig, {}),
    RELABEL: (RelabelConfig, {}),
    "trajdeleter": (TrajDeleterConfig, {"cost_aware": False}),
    "trajdeleter-cost": (TrajDeleterConfig, {"cost_aware": True}),
}
"""Methods with a config class of their own: (class, the settings that define the method)."""

TRAINING_METHODS = ("finetune", "retrain")
"""Methods that run OSRL's own training step instead of the unlearning steps."""

DEFINING: dict[str, dict[str, Any]] = {
    "safe-rule": {"forget_objective": "safe-rule", "use_cost": True},
    "reward-only": {"forget_objective": "safe-rule", "use_cost": False},
    "trajdeleter-adv": {"forget_objective": "trajdeleter"},
    "trajdeleter-adv-cost": {"forget_objective": "trajdeleter-cost"},
}
"""The settings that make each method what it is (applied over a user's config too)."""

_TRAJDELETER_DEFAULTS = {
    "adaptive_beta": False,
    "beta_init": 1.0,
    "critic_unlearning": False,
    "convergence_fraction": 0.5,
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "trajdeleter-adv": _TRAJDELETER_DEFAULTS,
    "trajdeleter-adv-cost": _TRAJDELETER_DEFAULTS,
}
"""Further settings a method starts from when no config is given."""

METHODS = (*DEFINING, *OWN_CONFIGS)

ABLATIONS: dict[str, dict[str, Any]] = {
    "fixed-beta": {"adaptive_beta": False, "beta_init": 1.0},
    "no-critic-unlearning": {"critic_unlearning": False},
    "q-ref-0": {"q_ref_percentile": 0.0},
    "q-ref-100": {"q_ref_percentile": 100.0},
    "actor-forget-safe": {"actor_forget_variant": "safe"},
    "lagrangian-keep": {"keep_objective": "lagrangian"},
    "behaviour-unlearning": {"behaviour_unlearning": True},
    "actor-reset": {"actor_reset": True, "actor_lr": 1e-3},
}
"""Safe-RULE ablations the paper reports, plus the variants of ours measured in the README, as
overrides (``actor-reset`` relearns the actor at OSRL's actor learning rate, 1e-3)."""


def method_config(method: str, config: Any = None, agent: str | None = None) -> Any:
    """The settings ``method`` runs with: its defaults when ``config`` is None, else ``config``
    with only the method's defining settings applied (so a user's learning rates stay); with
    ``agent`` (an OSRL key such as 'bcql'), its 'auto' settings resolved for that agent
    (:meth:`RelabelConfig.for_agent`).
    ``relabel`` takes a :class:`RelabelConfig`, ``trajdeleter`` / ``trajdeleter-cost`` a
    :class:`TrajDeleterConfig`, ``finetune`` / ``retrain`` a :class:`FinetuneConfig`, every other
    method a :class:`SafeRuleConfig`.

    Raises:
        ConfigError: an unknown method, or a config of another method's kind.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    wanted, defining = OWN_CONFIGS.get(method, (SafeRuleConfig, DEFINING.get(method, {})))
    if config is not None and not isinstance(config, wanted):
        raise ConfigError(
            f"method {method!r} takes a {wanted.__name__}, got a {type(config).__name__}; "
            f"pass {wanted.__name__}(...) or leave config out for the method's defaults."
        )
    if config is None:
        config = replace(wanted(), **DEFAULTS.get(method, {}))
    config = replace(config, **defining)
    return config.for_agent(agent) if agent and hasattr(config, "for_agent") else config


def method_of(config: Any) -> str:
    """The method a config runs when no method is named: ``relabel`` for a
    :class:`RelabelConfig`, ``trajdeleter`` (``-cost`` when cost-aware) for a
    :class:`TrajDeleterConfig`, ``finetune`` for a :class:`FinetuneConfig`, ``safe-rule`` for a
    :class:`SafeRuleConfig`; without a config, :data:`DEFAULT_METHOD`."""
    if config is None:
        return DEFAULT_METHOD
    if isinstance(config, RelabelConfig):
        return RELABEL
    if isinstance(config, TrajDeleterConfig):
        return "trajdeleter-cost" if config.cost_aware else "trajdeleter"
    return "finetune" if isinstance(config, FinetuneConfig) else "safe-rule"


def ablation_config(name: str, config: SafeRuleConfig | None = None) -> SafeRuleConfig:
    """Safe-RULE with the ablation ``name`` applied (see :data:`ABLATIONS`); ``a+b`` applies
    ablations ``a`` and ``b`` together (``b`` wins where both set a field)."""
    overrides: dict[str, Any] = {}
    for part in name.split("+"):
        if part not in ABLATIONS:
            raise ConfigError(
                f"unknown ablation {part!r}; expected one of {', '.join(ABLATIONS)}, or several "
                "joined by '+'"
            )
        overrides.update(ABLATIONS[part])
    return replace(method_config("safe-rule", config), **overrides)


def repair_steps(method: str, config: Any, budget: int, training_steps: int) -> int:
    """Steps a defence runs under a step budget (the grid's cells, the demo): retraining trains as
    long as the agent was trained; every other method runs its own budget (``config.steps``), at
    most ``budget``."""
    if method == "retrain":
        return training_steps
    return min(budget, config.steps)
