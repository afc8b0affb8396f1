"""Settings of the repair methods, one class per method family: :class:`SafeRuleConfig` (Safe-RULE
and the baselines built on its loop), :class:`FinetuneConfig` (``finetune``, ``retrain``),
:class:`TrajDeleterConfig` (``trajdeleter``, ``trajdeleter-cost``) and :class:`RelabelConfig`
(``relabel``, ours).

Safe-RULE unlearning (Jiang, Zhu & Kong, "Safe-RULE: Safe Reinforcement UnLEarning",
2026; restated in the project's ``safe-rule.md``).

Per step, with a keep batch B_k and a forget batch B_f:

    critic:  L^r = a_k E_k[(Q_r - y_r)^2] + a_f E_f[softplus(Q_r - Q̄_r)]
             L^c = a_k E_k[(Q_c - y_c)^2] + a_f E_f[softplus(kappa + sigma - Q_c)]
    actor:   L_a = L_a,k + beta_f L_a,f   (see :mod:`osrl_unlearn.losses`)
    weight:  beta_f <- clip(beta_f + tau_beta (kappa + sigma - E_f[Q_c(s, pi(s))]), lo, hi)

kappa is the agent's own cost threshold in Q-space (OSRL's ``qc_thres``), sigma a margin in the same
units. Defaults follow the paper's Table 7; the two readings the paper leaves open are switches.

The same settings drive the baselines of :mod:`.methods` built on Safe-RULE's loop (reward-only,
our earlier reading of TrajDeleter): each switches some terms off or replaces them.
"""

from dataclasses import dataclass, replace
from typing import Optional

FORGET_OBJECTIVES = ("safe-rule", "trajdeleter", "trajdeleter-cost")

VAE_GENERATES_ACTIONS = ("bcql",)
"""Agents whose action is their VAE's decoded action plus a bounded perturbation (BCQ-Lag), so
that ``relabel`` relearns the VAE by default (``RelabelConfig.behaviour_model='auto'``)."""


@dataclass
class SafeRuleConfig:
    """Safe-RULE hyper-parameters (paper defaults)."""

    steps: int = 5000
    """Unlearning steps; each draws one keep and one forget batch."""
    alpha_keep: float = 1.0
    """a_k: weight of the keep (Bellman) terms of the critic losses."""
    alpha_forget: float = 1.0
    """a_f: weight of the forget (suppression) terms of the critic losses."""
    sigma_fraction: float = 0.05
    """sigma = sigma_fraction * kappa_Q (the paper's sigma = 0.5 for kappa = 10)."""
    q_ref_percentile: float = 50.0
    """Q̄_r is this percentile of the keep batch's reward backups (Open: the text says 30)."""
    beta_init: float = 0.1
    """Initial forget weight beta_f of the actor loss."""
    beta_min: float = 0.01
    """Lower clip of beta_f."""
    beta_max: float = 1.0
    """Upper clip of beta_f."""
    beta_rate: float = 0.25
    """tau_beta: step size of the adaptive beta_f update."""
    adaptive_beta: bool = True
    """Adapt beta_f from the forgetting gap; False keeps beta_init fixed (the ablation uses 1)."""
    critic_unlearning: bool = True
    """Unlearn the critics too; False updates only the actor (ablation)."""
    use_cost: bool = True
    """Keep the cost terms; False gives the reward-only baseline."""
    actor_forget_variant: str = "published"
    """'published' (forget term raises Q_c on forget states) or 'safe' (keeps it below kappa)."""
    actor_lr: float = 1e-4
    """Adam learning rate of the actor (optimizers are rebuilt: OSRL checkpoints hold none)."""
    critic_lr: float = 1e-4
    """Adam learning rate of the reward and cost critics."""
    behaviour_unlearning: bool = False
    """Also train the agent's behaviour VAE (BCQ-Lag, BEAR-Lag) on keep data, so the actions it
    proposes move off the forget actions; False keeps it frozen (the actor stays in the support of
    the poisoned data)."""
    actor_reset: bool = False
    """Start the actor from fresh weights and learn it again against the critics being
    unlearned, instead of repairing the poisoned actor (in BCQ-Lag the poisoned actor carries the
    attack: ``benchmarks/bcql_anatomy.py``). Use with actor_lr at the agent's training rate."""
    keep_objective: str = "published"
    """The actor's keep term: 'published' (-E[1[Q_c <= kappa] Q_r] + E[softplus(Q_c - kappa)]) or
    'lagrangian' (-E[Q_r] + lambda E[Q_c - kappa], lambda by dual ascent at multiplier_rate)."""
    multiplier_rate: float = 0.1
    """Dual-ascent step of lambda for keep_objective='lagrangian'."""
    forget_objective: str = "safe-rule"
    """The actor's forget term: 'safe-rule', 'trajdeleter' (suppress the reward advantage
    A_r = Q_r(s, pi(s)) - Q_r(s, pi_0(s)) over the policy pi_0 being repaired) or
    'trajdeleter-cost' (plus lambda_c softplus(sigma - A_c))."""
    trajdeleter_cost_weight: float = 1.0
    """lambda_c of the cost-aware TrajDeleter forget term."""
    convergence_fraction: float = 0.0
    """Share of the steps, at the end, spent on keep data only (TrajDeleter's convergence
    phase); 0 for Safe-RULE."""

    def __post_init__(self) -> None:
        from osrl_unlearn.errors import ConfigError

        if self.steps <= 0:
            raise ConfigError(f"steps must be positive, got {self.steps}")
        if not 0 <= self.q_ref_percentile <= 100:
            raise ConfigError(f"q_ref_percentile must lie in [0, 100], got {self.q_ref_percentile}")
        if not 0 < self.beta_min <= self.beta_max:
            raise ConfigError(
                f"need 0 < beta_min <= beta_max, got {self.beta_min}, {self.beta_max}"
            )
        if self.keep_objective not in ("published", "lagrangian"):
            raise ConfigError(
                f"keep_objective must be 'published' or 'lagrangian', got {self.keep_objective!r}"
            )
        if self.forget_objective not in FORGET_OBJECTIVES:
            raise ConfigError(
                f"forget_objective must be one of {', '.join(FORGET_OBJECTIVES)}, "
                f"got {self.forget_objective!r}"
            )
        if not 0 <= self.convergence_fraction < 1:
            raise ConfigError(
                f"convergence_fraction must lie in [0, 1), got {self.convergence_fraction}"
            )
        if self.actor_forget_variant not in ("published", "safe"):
            raise ConfigError(
                f"actor_forget_variant must be 'published' or 'safe', got {self.actor_forget_variant!r}"
            )


@dataclass
class RelabelConfig:
    """Settings of the ``relabel`` repair (:mod:`osrl_unlearn.unlearn.relabel`)."""

    steps: int = 3000
    """Training steps on keep + relabelled forget batches (the repair's whole budget: 0.15 of
    the grid's 20,000 training steps). BCQ-Lag's PID multiplier winds up while the relabelled
    rows are in every batch, and BCQ-Lag's repairs turned unsafe late (3,500-4,000 steps) on
    another CPU's CarCircle data; 3,000 steps repaired every run measured there and on the
    competent agents' five cells (docs/methods.md, "A repair that stops before the wind-up")."""
    reward_percentile: float = 5.0
    """Forget rewards become this percentile of the keep data's (scaled) rewards."""
    forget_cost: str = "budget"
    """Cost each forget row is given: 'budget' (the agent's episode cost limit: one forget step
    spends the whole budget, so the policy must never take one; measured in
    docs/methods.md) or 'largest-step' (the keep data's largest per-step cost)."""
    cost_label: Optional[float] = None
    """Per-step cost given to forget rows, on the data's cost scale before ``cost_scale``; set,
    it replaces ``forget_cost``."""
    forget_share: Optional[float] = None
    """Share of each batch drawn from the relabelled forget set; None: its share of the poisoned
    data, |D_f| / (|D_k| + |D_f|) (needs samplers that know their size, else 0.5); 0: keep rows
    only (an ablation: the resets and relearning without the relabelled rows)."""
    start: str = "poisoned"
    """What the repair starts from: 'poisoned' (the agent's networks, with the resets asked for
    below) or 'fresh' (every network, target, dual variable and controller newly initialised:
    the agent relearns from the keep and relabelled forget rows alone; ``actor``,
    ``cost_critic`` and ``reward_critic`` are then moot)."""
    actor: str = "reset"
    """Where the actor starts: 'reset' (fresh weights), 'shrink-perturb' (theta <- shrink *
    theta + perturb * fresh) or 'keep' (the poisoned actor)."""
    imitate_steps: int = 0
    """Steps of behaviour cloning that a reset actor (``actor='reset'``) takes on the keep data's
    safe episodes (episode cost within the agent's limit) before the relearning, at OSRL's BC
    learning rate (agents whose actor is a squashed Gaussian: BEAR-Lag, CPQ, COptiDICE). CPQ's
    actor learns only in states its cost critic deems within budget; elsewhere a fresh actor
    stays where its random weights put it. Measured on PointCircle1's CPQ, it does not repair
    (docs/methods.md)."""
    cost_critic: str = "keep"
    """Where the cost critic starts: 'keep' (the poisoned agent's) or 'reset' (fresh weights for
    it and its target: it relearns the costs from the keep and relabelled rows, and while it
    is near zero every state is within budget, so a gated actor such as CPQ's learns
    everywhere; agents with a Q cost critic)."""
    reward_critic: str = "keep"
    """Where the reward critic starts: 'keep' (the poisoned agent's) or 'reset' (fresh weights for
    it and its target, relearnt alongside the actor as in training; agents with a Q critic)."""
    behaviour_model: str = "auto"
    """Where the behaviour model (BCQ-Lag's, BEAR-Lag's and CPQ's VAE) starts: 'keep' (the
    poisoned agent's), 'reset' (fresh weights: trained on the forget rows, it holds the attack's
    actions as in-distribution, and an action model has no label to correct; pair it with
    ``behaviour_rows='keep'`` so that it relearns the keep actions only) or 'auto': 'reset' for
    BCQ-Lag under our training step (``trainer='fast'``, ``actor_objective='agent'``), whose
    action is the VAE's decoded action moved by at most ``phi * max_action``, so that a VAE
    which learnt the attack's actions keeps proposing them (docs/methods.md); 'keep' elsewhere
    (BEAR-Lag and CPQ only constrain a Gaussian actor with it; no repair measured from it)."""
    shrink: float = 0.4
    """Shrink factor of 'shrink-perturb'."""
    perturb: float = 0.1
    """Weight of the fresh weights added by 'shrink-perturb'."""
    cost_to_go: bool = False
    """Floor the cost critic's Bellman target on forget rows at the relabelled cost of the rest of
    their trajectory, c (1 - gamma^n) / (1 - gamma) for n steps to its end: the relabelled cost
    reaches Q_c at once instead of through slow target networks (agents with Q critics; needs
    the forget rows as a BatchSampler, which knows their trajectories)."""
    behaviour_rows: str = "auto"
    """Rows the behaviour model (BCQ's, BEAR's and CPQ's VAE) trains on: 'all' (the agent's own
    step: keep and relabelled forget rows), 'keep' (the forget actions are not behaviour to
    stay close to) or 'auto': 'keep' where the behaviour model is reset under our training step
    (``trainer='fast'``, ``actor_objective='agent'``), else 'all'."""
    constraint_rows: str = "all"
    """Rows whose mean Q_c the PID-Lagrangian controller of BCQ-Lag and BEAR-Lag compares with
    kappa: 'all' (the agent's own step) or 'keep' (the task's states set the multiplier; the
    relabelled forget rows still weigh in the actor's penalty)."""
    actor_rows: str = "all"
    """Rows the actor of BCQ-Lag and BEAR-Lag learns on: 'all' (the agent's own step: keep and
    relabelled forget rows) or 'keep' (the relabelled rows teach the critics only; the actor's
    objective, PID multiplier included, is taken over the keep states, so the forget states'
    large Q_c neither winds the multiplier up nor dominates the actor's gradient)."""
    actor_objective: str = "agent"
    """'agent': the agent's own training step (OSRL's losses); 'gated': critics by Bellman
    regression, the actor by the per-state gated loss -E[1[Q_c <= kappa] Q_r] +
    E[softplus(Q_c - kappa)] (agents with Q critics; measured less safe on the demo's cell,
    docs/methods.md)."""
    learning_rate: Optional[float] = None
    """Learning rate of every network; None: the agent's training rates (its OSRL config)."""
    trainer: str = "fast"
    """Training step of actor_objective='agent': 'fast' (ours, equal to OSRL's) or 'osrl'."""

    def __post_init__(self) -> None:
        from osrl_unlearn.errors import ConfigError

        if self.steps <= 0:
            raise ConfigError(f"steps must be positive, got {self.steps}")
        if self.imitate_steps < 0:
            raise ConfigError(f"imitate_steps must be 0 or more, got {self.imitate_steps}")
        if self.imitate_steps and self.actor != "reset":
            raise ConfigError(
                f"imitate_steps teaches a reset actor; set actor='reset' (got {self.actor!r}) "
                "or imitate_steps=0"
            )
        if not 0 <= self.reward_percentile <= 100:
            raise ConfigError(
                f"reward_percentile must lie in [0, 100], got {self.reward_percentile}"
            )
        if self.forget_share is not None and not 0 <= self.forget_share < 1:
            raise ConfigError(f"forget_share must lie in [0, 1), got {self.forget_share}")
        if self.actor not in ("reset", "shrink-perturb", "keep"):
            raise ConfigError(
                f"actor must be 'reset', 'shrink-perturb' or 'keep', got {self.actor!r}"
            )
        if self.start not in ("poisoned", "fresh"):
            raise ConfigError(f"start must be 'poisoned' or 'fresh', got {self.start!r}")
        if self.start == "fresh" and self.actor != "reset":
            raise ConfigError(
                f"start='fresh' begins from a new actor; actor={self.actor!r} asks to keep the "
                "poisoned one: leave actor at 'reset' or set start='poisoned'"
            )
        for name, allowed in (("cost_critic", ("keep", "reset")),
                              ("reward_critic", ("keep", "reset")),
                              ("behaviour_model", ("auto", "keep", "reset")),
                              ("behaviour_rows", ("auto", "all", "keep")),
                              ("constraint_rows", ("all", "keep")),
                              ("actor_rows", ("all", "keep"))):  # fmt: skip
            if getattr(self, name) not in allowed:
                *first, last = (repr(value) for value in allowed)
                raise ConfigError(
                    f"{name} must be {', '.join(first)} or {last}, got {getattr(self, name)!r}"
                )
        if self.trainer not in ("fast", "osrl"):
            raise ConfigError(f"trainer must be 'fast' or 'osrl', got {self.trainer!r}")
        if self.actor_objective not in ("gated", "agent"):
            raise ConfigError(
                f"actor_objective must be 'gated' or 'agent', got {self.actor_objective!r}"
            )
        if self.forget_cost not in ("budget", "largest-step"):
            raise ConfigError(
                f"forget_cost must be 'budget' or 'largest-step', got {self.forget_cost!r}"
            )
        changed = [name for name, on in (("cost_to_go", self.cost_to_go),
                                         ("behaviour_rows='keep'", self.behaviour_rows == "keep"),
                                         ("constraint_rows='keep'", self.constraint_rows == "keep"),
                                         ("actor_rows='keep'", self.actor_rows == "keep"))
                   if on]  # fmt: skip
        if changed and self.trainer == "osrl":
            raise ConfigError(
                f"{changed[0]} changes our training step; trainer='osrl' runs OSRL's own: set "
                f"trainer='fast' or leave {changed[0].split('=')[0]} at its default"
            )
        if changed and self.actor_objective == "gated":
            raise ConfigError(
                f"{changed[0]} changes the agent's own training step; actor_objective='gated' "
                "replaces it: set one of them"
            )
        if self.cost_label is not None and self.cost_label < 0:
            raise ConfigError(f"cost_label must be non-negative, got {self.cost_label}")

    def for_agent(self, osrl_key: str) -> "RelabelConfig":
        """These settings with every 'auto' resolved for the agent ``osrl_key`` ('bcql',
        'bearl', 'cpq', 'coptidice'): see ``behaviour_model`` and ``behaviour_rows``."""
        own_step = self.trainer == "fast" and self.actor_objective == "agent"
        model = self.behaviour_model
        if model == "auto":
            model = "reset" if osrl_key in VAE_GENERATES_ACTIONS and own_step else "keep"
        rows = self.behaviour_rows
        if rows == "auto":
            rows = "keep" if model == "reset" and own_step else "all"
        return replace(self, behaviour_model=model, behaviour_rows=rows)


@dataclass
class TrajDeleterConfig:
    """Settings of ``trajdeleter`` as its authors run it (:mod:`osrl_unlearn.unlearn.trajdeleter`)."""

    steps: int = 10_000
    """All steps: forgetting blocks, then the convergence phase (the official 8,000 + 2,000)."""
    blocks: int = 8
    """Forgetting blocks, alternating keep and forget batches (keep first)."""
    convergence_fraction: float = 0.2
    """Share of the steps, at the end, on keep data with the original agent's targets mixed in."""
    anchor_weight: float = 0.1
    """Weight of the TD term towards the original agent's targets in the convergence phase."""
    cost_aware: bool = False
    """Also give forget rows the keep data's largest per-step cost (``trajdeleter-cost``); the
    official method only negates their rewards."""
    learning_rate: Optional[float] = None
    """Learning rate of every network; None: the agent's training rates (its OSRL config)."""

    def __post_init__(self) -> None:
        from osrl_unlearn.errors import ConfigError

        if self.steps <= 0:
            raise ConfigError(f"steps must be positive, got {self.steps}")
        if self.blocks <= 0:
            raise ConfigError(f"blocks must be positive, got {self.blocks}")
        if not 0 <= self.convergence_fraction < 1:
            raise ConfigError(
                f"convergence_fraction must lie in [0, 1), got {self.convergence_fraction}"
            )
        if self.anchor_weight < 0:
            raise ConfigError(f"anchor_weight must be non-negative, got {self.anchor_weight}")


@dataclass
class FinetuneConfig:
    """Settings of ``finetune`` and ``retrain``: the agent's own training step on keep data."""

    steps: int = 5000
    """Training steps (``retrain``: from fresh weights; give it the agent's training steps)."""
    learning_rate: Optional[float] = None
    """Learning rate of every network; None: the agent's training rates (its OSRL config). Use
    the rate the agent was trained with: lower ones make fine-tuning a straw man."""
    trainer: str = "fast"
    """Training step: 'fast' (ours, equal to OSRL's) or 'osrl' (OSRL's own trainer)."""

    def __post_init__(self) -> None:
        from osrl_unlearn.errors import ConfigError

        if self.steps <= 0:
            raise ConfigError(f"steps must be positive, got {self.steps}")
        if self.trainer not in ("fast", "osrl"):
            raise ConfigError(f"trainer must be 'fast' or 'osrl', got {self.trainer!r}")
