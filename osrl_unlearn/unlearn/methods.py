"""The repair methods behind ``agent.unlearn(..., method=...)`` and the ablations of Safe-RULE.

Every gradient method is the one loop of :mod:`.loop` with some terms switched (spec section 6):

- ``safe-rule``: the method (paper defaults);
- ``reward-only``: Safe-RULE with every cost term removed;
- ``trajdeleter`` / ``trajdeleter-cost``: critics frozen while the actor suppresses the reward
  advantage on forget states (plus a cost-advantage term), fixed beta_f = 1, then a convergence
  phase on keep data only;
- ``finetune``: the agent's own OSRL training step on keep data;
- ``retrain``: a fresh agent of the same architecture trained on keep data by OSRL's trainer.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from osrl_unlearn.errors import ConfigError
from osrl_unlearn.unlearn.config import SafeRuleConfig

TRAINING_METHODS = ("finetune", "retrain")
"""Methods that run OSRL's own training step instead of the unlearning steps."""

DEFINING: dict[str, dict[str, Any]] = {
    "safe-rule": {"forget_objective": "safe-rule", "use_cost": True},
    "reward-only": {"forget_objective": "safe-rule", "use_cost": False},
    "trajdeleter": {"forget_objective": "trajdeleter"},
    "trajdeleter-cost": {"forget_objective": "trajdeleter-cost"},
    "finetune": {},
    "retrain": {},
}
"""The settings that make each method what it is (applied over a user's config too)."""

_TRAJDELETER_DEFAULTS = {
    "adaptive_beta": False,
    "beta_init": 1.0,
    "critic_unlearning": False,
    "convergence_fraction": 0.5,
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "trajdeleter": _TRAJDELETER_DEFAULTS,
    "trajdeleter-cost": _TRAJDELETER_DEFAULTS,
}
"""Further settings a method starts from when no config is given."""

METHODS = tuple(DEFINING)

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


def method_config(method: str, config: SafeRuleConfig | None = None) -> SafeRuleConfig:
    """The settings ``method`` runs with: its defaults when ``config`` is None, else ``config``
    with only the method's defining settings applied (so a user's learning rates stay).

    Raises:
        ConfigError: an unknown method.
    """
    if method not in DEFINING:
        raise ConfigError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if config is None:
        config = replace(SafeRuleConfig(), **DEFAULTS.get(method, {}))
    return replace(config, **DEFINING[method])


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
