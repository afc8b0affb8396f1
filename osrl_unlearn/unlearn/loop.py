"""``agent.unlearn``: the entry point of every repair method, and Safe-RULE's step.

``UnlearningMixin.unlearn`` resolves the method and its config (:mod:`.methods`), builds keep and
forget samplers from a poisoned dataset when given one, and hands the run to the one loop every
method shares (:func:`~osrl_unlearn.unlearn.runner.run_training`) with the method's step:
:class:`SafeRuleStep` for Safe-RULE and the baselines built on it, the agent's own training step
for ``finetune`` / ``retrain`` (:mod:`.retraining`), ``relabel`` (:mod:`.relabel`) and
``trajdeleter`` (:mod:`.trajdeleter`). For :class:`SafeRuleStep` agents implement:

- ``_unlearning_setup(config)``: build fresh optimizers (OSRL checkpoints hold none) and return the
  Q-space cost threshold kappa;
- ``_critic_unlearning_step(keep, forget, ctx)``: yields its updates, returns metrics;
- ``_actor_unlearning_step(keep, forget, ctx)``: yields its updates, returns (metrics,
  forget-set cost values Q_c(s, pi(s)));
- ``_sync_targets()``.

Steps yield their losses as :class:`~osrl_unlearn.fast.updates.Update` objects; the loop applies
them (:mod:`osrl_unlearn.fast.updates`).

Every method returns the same history, with its wall time and step count.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from osrl_unlearn.fast.updates import Updates
from osrl_unlearn.losses import forgetting_gap, update_forget_weight
from osrl_unlearn.standardise import Standardisation, standardised_coordinates
from osrl_unlearn.unlearn.base import (  # noqa: F401  (re-exported: the loop's public names)
    Batch,
    Logger,
    UnlearningError,
    UnlearningHistory,
    all_finite,
    draw_batches,
    reinitialise,
)
from osrl_unlearn.unlearn.config import (
    FinetuneConfig,
    RelabelConfig,
    SafeRuleConfig,
    TrajDeleterConfig,
)
from osrl_unlearn.unlearn.methods import (
    OWN_CONFIGS,
    RELABEL,
    TRAINING_METHODS,
    method_config,
    method_of,
)
from osrl_unlearn.unlearn.relabel import relabel_repair
from osrl_unlearn.unlearn.retraining import train_on_keep
from osrl_unlearn.unlearn.runner import run_training
from osrl_unlearn.unlearn.trajdeleter import trajdeleter_repair


@dataclass
class UnlearningContext:
    """What one run's hooks share: the settings, kappa / sigma in Q-space and the forget weight."""

    config: SafeRuleConfig
    kappa: float
    sigma: float
    beta: float
    step: int = 0
    converging: bool = False
    """True in the convergence phase: keep data only, no forget terms."""
    reference_actor: Any = None
    """A frozen copy of the actor being repaired (TrajDeleter's advantage baseline pi_0)."""
    multiplier: float = 0.0
    """lambda of the Lagrangian keep objective (keep_objective='lagrangian')."""


def check_scales(agent: Any, loader: Any, name: str) -> None:
    """Refuses a :class:`BatchSampler` whose reward or cost scale differs from the agent's
    training scales: its Bellman targets would sit on another scale than the critics'.

    Raises:
        UnlearningError: the scales differ.
    """
    from osrl_unlearn.data.sampler import training_scales

    if not hasattr(loader, "reward_scale"):
        return
    expected = training_scales(agent)
    if (loader.reward_scale, loader.cost_scale) != expected:
        raise UnlearningError(
            f"the {name} sampler scales rewards by {loader.reward_scale:g} and costs by "
            f"{loader.cost_scale:g}, but the agent was trained with {expected[0]:g} and "
            f"{expected[1]:g}; build the samplers with osrl_unlearn.data.unlearning_samplers."
        )


class SafeRuleStep:
    """One step of Safe-RULE's loop (and of the baselines built on it) on a keep and a forget
    batch: the agent's critic step, its actor step, the target update, then beta_f from the
    forgetting gap. The loop around it is :func:`~osrl_unlearn.unlearn.retraining.run_training`,
    shared by every method."""

    progress_keys = {"gap": "unlearn/forgetting_gap", "beta": "unlearn/beta_f",
                     "qc_f": "unlearn/forget_qc"}  # fmt: skip
    """What the progress bar shows (name -> metric)."""

    def __init__(self, agent: Any, ctx: UnlearningContext, forgetting_steps: int,
                 logger: Logger) -> None:  # fmt: skip
        self.agent, self.ctx, self.logger = agent, ctx, logger
        self.forgetting_steps = forgetting_steps

    def updates(self, keep: Batch, forget: Batch) -> Updates[None]:
        agent, ctx = self.agent, self.ctx
        config = ctx.config
        ctx.converging = ctx.step >= self.forgetting_steps
        metrics: dict[str, float] = {}
        if config.critic_unlearning or ctx.converging:
            metrics.update((yield from agent._critic_unlearning_step(keep, forget, ctx)))
        actor_metrics, forget_qc = yield from agent._actor_unlearning_step(keep, forget, ctx)
        metrics.update(actor_metrics)
        agent._sync_targets()
        gap = forgetting_gap(forget_qc, ctx.kappa, ctx.sigma)
        metrics["unlearn/forgetting_gap"] = gap
        metrics["unlearn/beta_f"] = ctx.beta
        if config.adaptive_beta and not ctx.converging:
            ctx.beta = update_forget_weight(
                ctx.beta, gap, config.beta_rate, config.beta_min, config.beta_max
            )
        ctx.step += 1
        self.logger.store(**metrics)


class UnlearningMixin:
    """Adds ``unlearn(keep_loader, forget_loader, ...)`` to an OSRL agent (an ``nn.Module``)."""

    osrl_key: str = ""
    """The agent's name in OSRL's scripts and trainers (``bcql``, ...)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # kept so that ``retrain`` can build a fresh agent of the same architecture
        self._init_arguments = (args, dict(kwargs))

    def unlearn(
        self,
        keep_loader: Any,
        forget_loader: Any = None,
        *,
        method: str | None = None,
        config: SafeRuleConfig | FinetuneConfig | RelabelConfig | TrajDeleterConfig | None = None,
        steps: int | None = None,
        logger: Logger | None = None,
        callback: Callable[[int, dict[str, float]], bool | None] | None = None,
        show_progress: bool = True,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> UnlearningHistory:
        """Unlearns the forget set while retaining the keep set (``relabel`` by default).

        ``agent.unlearn(poisoned, steps=5000)`` is the short form: a dataset with a
        ``poison_mask`` is split into keep and forget samplers at the agent's training scales.

        Args:
            keep_loader: clean data: a :class:`~osrl_unlearn.data.BatchSampler` or an iterable of
                batches in the agent's OSRL layout; or the poisoned
                :class:`~osrl_unlearn.data.OfflineDataset` itself (then no forget loader).
            forget_loader: the injected (poisoned) data, same form (unused, and may be None, for
                ``finetune`` and ``retrain``).
            method: by default the one ``config``'s type names (:func:`.methods.method_of`:
                ``relabel`` without a config); or ``safe-rule``, ``reward-only``, ``trajdeleter``,
                ``trajdeleter-cost``, ``trajdeleter-adv``, ``trajdeleter-adv-cost``,
                ``finetune``, ``retrain`` or ``relabel`` (see :mod:`.methods`).
            config: hyper-parameters; defaults to the method's (a :class:`RelabelConfig` for
                ``relabel``, a :class:`TrajDeleterConfig` for ``trajdeleter`` and
                ``trajdeleter-cost``, a :class:`FinetuneConfig` for ``finetune`` and ``retrain``, else a
                :class:`SafeRuleConfig`). With a config, the method still
                sets what defines it (e.g. reward-only's ``use_cost=False``).
            steps: overrides ``config.steps``.
            logger: anything with ``store(**metrics)`` (fsrl's loggers qualify).
            callback: called as ``callback(step, metrics)`` after every step; returning True stops.
            show_progress: show a tqdm bar with the latest losses.
            batch_size: transitions per batch of the short form (default: the agent's training
                batch size, else 512).
            seed: seeds the short form's samplers (keep ``seed``, forget ``seed + 1``).

        Returns:
            The per-step history of losses, forget weight and forgetting gap, its wall time and
            step count.
        """
        method = method or method_of(config)
        config = method_config(method, config)
        if hasattr(keep_loader, "poison_mask"):  # the short form: one poisoned dataset
            keep_loader, forget_loader = self._samplers_of(
                keep_loader, forget_loader, batch_size, seed
            )
        for loader, name in ((keep_loader, "keep"), (forget_loader, "forget")):
            check_scales(self, loader, name)
        steps = config.steps if steps is None else steps
        if steps <= 0:
            raise UnlearningError(f"steps must be positive, got {steps}")
        run = (method, config, keep_loader, forget_loader, steps, logger, callback, show_progress)
        standardisation = Standardisation.from_config(getattr(self, "osrl_config", None) or {})
        if standardisation is None:
            return self._run_method(*run)
        # an agent trained on standardised observations is repaired in the same coordinates
        with standardised_coordinates(self, standardisation) as standardise:
            return self._run_method(*run[:2], standardise(keep_loader),
                                    standardise(forget_loader), *run[4:])  # fmt: skip

    def _run_method(self, method, config, keep_loader, forget_loader, steps, logger, callback,
                    show_progress) -> UnlearningHistory:  # fmt: skip
        if method in TRAINING_METHODS:
            return train_on_keep(
                self, keep_loader, steps, method=method, learning_rate=config.learning_rate,
                trainer=config.trainer, logger=logger, callback=callback, show_progress=show_progress,
            )  # fmt: skip
        if method in OWN_CONFIGS:
            if forget_loader is None:
                raise UnlearningError(
                    f"method {method!r} needs a forget loader (the poisoned data)."
                )
            repair = relabel_repair if method == RELABEL else trajdeleter_repair
            return repair(self, keep_loader, forget_loader, config, steps, logger=logger,
                          callback=callback, show_progress=show_progress)  # fmt: skip
        if forget_loader is None:
            raise UnlearningError(f"method {method!r} needs a forget loader (the poisoned data).")
        keep_batches = draw_batches(keep_loader, steps, "keep")
        forget_batches = draw_batches(forget_loader, steps, "forget")
        # a sampler's data is checked once here instead of every batch (a per-step host sync)
        keep_checked = all_finite(keep_loader, "keep")
        forget_checked = all_finite(forget_loader, "forget")
        if config.actor_reset:
            self._reset_actor()
        kappa = self._unlearning_setup(config)
        ctx = UnlearningContext(
            config=config, kappa=kappa, sigma=config.sigma_fraction * kappa, beta=config.beta_init
        )
        if config.forget_objective != "safe-rule":
            ctx.reference_actor = copy.deepcopy(self.actor).eval().requires_grad_(False)
        forgetting_steps = steps - round(config.convergence_fraction * steps)

        def check(keep: Batch, forget: Batch) -> None:
            self._check_batch(keep, "keep", keep_checked)
            self._check_batch(forget, "forget", forget_checked)

        history = run_training(
            self, self, zip(keep_batches, forget_batches, strict=True), steps, method=method,
            step_maker=lambda recorder: SafeRuleStep(self, ctx, forgetting_steps, recorder),
            check=check, logger=logger, callback=callback, show_progress=show_progress,
        )  # fmt: skip
        history.kappa, history.sigma = kappa, ctx.sigma
        return history

    def _samplers_of(self, data: Any, forget_loader: Any, batch_size: int | None, seed: int):
        """Keep and forget samplers of a poisoned dataset (split by its ``poison_mask``)."""
        from osrl_unlearn.data.sampler import unlearning_samplers

        if forget_loader is not None:
            raise UnlearningError(
                "pass either a poisoned dataset alone (split by its poison_mask) or keep and "
                "forget loaders, not a dataset and a forget loader."
            )
        if data.poison_mask is None or not data.poison_mask.any():
            raise UnlearningError(
                f"{data.source} has no poisoned rows (its poison_mask is missing or all False): "
                "nothing to unlearn; pass keep and forget loaders, or a file written by "
                "osrl-unlearn poison."
            )
        config = getattr(self, "osrl_config", None) or {}
        size = batch_size or int(config.get("batch_size", 512))
        return unlearning_samplers(data, self, size, seed)

    def _check_batch(self, batch: Batch, name: str, finite_checked: bool = False) -> None:
        """Refuses a batch of other observation/action widths, or (unless ``finite_checked``:
        its sampler's whole data was checked once) one with NaN or infinite values."""
        obs, _, actions = batch[0], batch[1], batch[2]
        if obs.shape[-1] != self.state_dim or actions.shape[-1] != self.action_dim:
            raise UnlearningError(
                f"the {name} batches have {obs.shape[-1]} observation and {actions.shape[-1]} "
                f"action features but the agent was built for {self.state_dim} and "
                f"{self.action_dim}: is the data from the task the checkpoint was trained on?"
            )
        if finite_checked:
            return
        for position, tensor in enumerate(batch):
            if not torch.isfinite(tensor).all():
                raise UnlearningError(
                    f"the {name} batch has NaN or infinite values (tuple position {position}); "
                    "validate the dataset with osrl_unlearn.data before unlearning."
                )

    def _reset_actor(self) -> None:
        """Fresh weights for the actor and its target copy, where the agent keeps one."""
        reinitialise(self.actor)
        if hasattr(self, "actor_old"):
            self.actor_old.load_state_dict(self.actor.state_dict())

    @staticmethod
    def _check_metrics(metrics: dict[str, float], step: int) -> None:
        bad = [
            key for key, value in metrics.items() if value != value or abs(value) == float("inf")
        ]
        if bad:
            raise FloatingPointError(
                f"unlearning diverged at step {step}: {', '.join(bad)} not finite. Lower the "
                "learning rates or check the data for extreme rewards / costs."
            )

    # Hooks -------------------------------------------------------------------------------------

    def _unlearning_setup(self, config: SafeRuleConfig) -> float:
        raise NotImplementedError

    def _critic_unlearning_step(
        self, keep: Batch, forget: Batch, ctx: UnlearningContext
    ) -> Updates[dict[str, float]]:
        raise NotImplementedError

    def _actor_unlearning_step(
        self, keep: Batch, forget: Batch, ctx: UnlearningContext
    ) -> Updates[tuple[dict[str, float], torch.Tensor]]:
        raise NotImplementedError

    def _sync_targets(self) -> None:
        raise NotImplementedError
