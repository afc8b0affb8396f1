"""Safe-RULE for agents with reward and cost Q critics: BCQ-Lag, BEAR-Lag and CPQ.

The critic and actor steps are written here once. An agent supplies its fast training step (its
Bellman targets, critic heads and target updates, :mod:`osrl_unlearn.fast`), its action rule and,
where it has one, its behaviour regulariser.
"""

from __future__ import annotations

import torch
from torch import nn

from osrl_unlearn.fast.updates import Update, Updates, as_floats
from osrl_unlearn.losses import (
    actor_forget_loss,
    actor_keep_loss,
    cost_forget_loss,
    lagrangian_keep_loss,
    reward_forget_loss,
    reward_reference,
    trajdeleter_forget_loss,
    update_multiplier,
)
from osrl_unlearn.unlearn.config import SafeRuleConfig
from osrl_unlearn.unlearn.loop import Batch, UnlearningContext, UnlearningMixin


class ActorCriticUnlearning(UnlearningMixin):
    """Safe-RULE's critic and actor steps (see :mod:`.config` for the maths), computed with the
    agent's fast training step (:mod:`osrl_unlearn.fast`): its batched critic heads, Bellman
    targets, fused optimizers and soft target updates."""

    # Hooks: the agent's own pieces ------------------------------------------------------------

    def _fast_step(self, config: SafeRuleConfig):
        """The agent's fast training step, its optimizers at the unlearning learning rates."""
        raise NotImplementedError

    def _policy_actions(self, obs, actor: nn.Module) -> torch.Tensor:
        """a = actor(s) by the agent's own action rule (gradient flows to ``actor``)."""
        raise NotImplementedError

    def _actor_regularizer(self, obs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The agent's behaviour regulariser on keep states (zero where it has none), and its
        metrics as 0-d tensors."""
        return torch.zeros((), device=obs.device), {}

    # What the fast step gives --------------------------------------------------------------------

    def _heads(self, obs, actions) -> tuple[torch.Tensor, torch.Tensor]:
        """(reward heads, cost heads), each (heads, N): every critic head the agent trains."""
        q = self._fast.critics(torch.cat([obs, actions], 1))
        r = self._fast.reward_heads
        return q[:r], q[r:]

    def _reward_heads(self, obs, actions) -> torch.Tensor:
        return self._heads(obs, actions)[0]

    def _cost_heads(self, obs, actions) -> torch.Tensor:
        return self._heads(obs, actions)[1]

    def _policy_values(self, obs, actions) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q_r, Q_c) as the agent's actor sees them (the minimum over each critic's heads),
        with gradient to the actions only."""
        q = self._fast.group_min(self._fast.critics(torch.cat([obs, actions], 1), detached=True))
        return q[0], q[1]

    # The steps ---------------------------------------------------------------------------------

    def _unlearning_setup(self, config: SafeRuleConfig) -> float:
        self._fast = self._fast_step(config)
        return float(self.qc_thres)

    def _behaviour_step(self, keep: Batch) -> Updates[dict[str, float]]:
        """One step of the behaviour VAE on keep data (behaviour_unlearning)."""
        metrics = yield from self._fast.vae_update(keep[0], keep[2])
        return {"unlearn/vae_loss": metrics["loss/loss_vae"].item()}

    def _sync_targets(self) -> None:
        self._fast.sync_targets()

    def _critic_unlearning_step(
        self, keep: Batch, forget: Batch, ctx: UnlearningContext
    ) -> Updates[dict[str, float]]:
        cfg = ctx.config
        obs_k, next_k, act_k, rew_k, cost_k, done_k = keep[:6]
        n = obs_k.shape[0]
        # keep and forget states through the critics in one pass (keep only when converging)
        obs, actions = obs_k, act_k
        if not ctx.converging:
            obs, actions = torch.cat([obs_k, forget[0]]), torch.cat([act_k, forget[2]])
        alpha_forget = 0.0 if ctx.converging else cfg.alpha_forget
        y_r, y_c = self._fast.bellman_backups(next_k, rew_k, cost_k, done_k)
        q_ref = reward_reference(y_r, cfg.q_ref_percentile)
        r = self._fast.reward_heads
        metrics: dict[str, torch.Tensor] = {"unlearn/q_ref": q_ref}

        def loss_of(q: torch.Tensor) -> torch.Tensor:
            reward_heads, cost_heads = q[:r], q[r:]
            # the agent's own Bellman regression: OSRL's MSE summed over heads
            keep_r = (reward_heads[:, :n] - y_r).pow(2).mean(1).sum()
            loss = cfg.alpha_keep * keep_r
            metrics["unlearn/critic_keep_loss"] = keep_r
            if alpha_forget:  # summed over heads, as the keep term
                forget_r = len(reward_heads) * reward_forget_loss(reward_heads[:, n:], q_ref)
                loss = loss + alpha_forget * forget_r
                metrics["unlearn/critic_forget_loss"] = forget_r
                metrics["unlearn/forget_q"] = reward_heads[:, n:].mean()
            if cfg.use_cost:
                keep_c = (cost_heads[:, :n] - y_c).pow(2).mean(1).sum()
                loss = loss + cfg.alpha_keep * keep_c
                metrics["unlearn/cost_critic_keep_loss"] = keep_c
                if alpha_forget:
                    forget_c = len(cost_heads) * cost_forget_loss(
                        cost_heads[:, n:], ctx.kappa, ctx.sigma
                    )
                    loss = loss + alpha_forget * forget_c
                    metrics["unlearn/cost_critic_forget_loss"] = forget_c
                    metrics["unlearn/forget_qc_data"] = cost_heads[:, n:].mean()
            return loss

        loss = self._fast.critics.loss(torch.cat([obs, actions], 1), loss_of)
        yield Update(loss, (self._fast.critic_optim,))
        return as_floats(metrics)

    def _actor_unlearning_step(
        self, keep: Batch, forget: Batch, ctx: UnlearningContext
    ) -> Updates[tuple[dict[str, float], torch.Tensor]]:
        cfg = ctx.config
        behaviour = {}
        if cfg.behaviour_unlearning:
            behaviour = yield from self._behaviour_step(keep)
        obs_k = keep[0]
        n = obs_k.shape[0]
        obs = torch.cat([obs_k, forget[0]])
        actions = self._policy_actions(obs, self.actor)
        q, qc = self._policy_values(obs, actions)
        if not cfg.use_cost:  # reward-only: maximise Q_r on keep states
            keep_loss = -q[:n].mean()
        elif cfg.keep_objective == "lagrangian":
            keep_loss = lagrangian_keep_loss(q[:n], qc[:n], ctx.kappa, ctx.multiplier)
            ctx.multiplier = update_multiplier(
                ctx.multiplier, qc[:n].mean().item(), ctx.kappa, cfg.multiplier_rate
            )
        else:
            keep_loss = actor_keep_loss(q[:n], qc[:n], ctx.kappa)
        forget_loss = self._actor_forget_term(obs[n:], q[n:], qc[n:], ctx)
        regularizer, reg_metrics = self._actor_regularizer(obs_k)
        loss = keep_loss + regularizer
        if not ctx.converging:
            loss = loss + ctx.beta * forget_loss
        yield Update(loss, (self._fast.actor_optim,))
        metrics = {
            **as_floats({"unlearn/actor_keep_loss": keep_loss, "unlearn/actor_forget_loss": forget_loss,
                          "unlearn/forget_qc": qc[n:].mean(), "unlearn/keep_qc": qc[:n].mean(),
                          **reg_metrics}),
            "unlearn/multiplier": ctx.multiplier,
            **behaviour,
        }  # fmt: skip
        return metrics, qc[n:].detach()

    def _actor_forget_term(
        self, obs_f: torch.Tensor, q: torch.Tensor, qc: torch.Tensor, ctx: UnlearningContext
    ) -> torch.Tensor:
        """The forget objective at a = pi(s) on forget states, by ``config.forget_objective``."""
        cfg = ctx.config
        if cfg.forget_objective == "safe-rule":
            if not cfg.use_cost:  # reward-only: suppress Q_r on forget states
                return q.mean()
            return actor_forget_loss(q, qc, ctx.kappa, ctx.sigma, cfg.actor_forget_variant)
        # TrajDeleter: advantages over the policy being repaired, pi_0 (a frozen copy)
        with torch.no_grad():
            v, vc = self._policy_values(obs_f, self._policy_actions(obs_f, ctx.reference_actor))
        cost_advantage = qc - vc if cfg.forget_objective == "trajdeleter-cost" else None
        return trajdeleter_forget_loss(
            q - v, cost_advantage, cfg.trajdeleter_cost_weight, ctx.sigma
        )

    def _gated_training_step(
        self, batch: Batch, keep_rows: int, kappa: float
    ) -> Updates[dict[str, float]]:
        """One step of ``relabel``'s gated objective on a batch of ``keep_rows`` keep rows followed
        by relabelled forget rows: both critics regress on the agent's own Bellman backups of
        every row; the behaviour model (where the agent has one) learns the keep rows' actions;
        the actor minimises the per-state gated loss of :func:`actor_keep_loss` on every state,
        plus the agent's behaviour regulariser. Needs ``self._fast`` (:meth:`_fast_step`)."""
        obs, next_obs, actions, rewards, costs, done = batch[:6]
        metrics: dict[str, torch.Tensor] = {}
        if getattr(self, "vae", None) is not None:
            metrics.update((yield from self._fast.vae_update(obs[:keep_rows], actions[:keep_rows])))
        backups = self._fast.bellman_backups(next_obs, rewards, costs, done)
        critic_losses = yield from self._fast.fit_critics(obs, actions, backups)
        metrics["loss/critic_loss"], metrics["loss/cost_critic_loss"] = critic_losses
        q, qc = self._policy_values(obs, self._policy_actions(obs, self.actor))
        gated = actor_keep_loss(q, qc, kappa)
        regularizer, reg_metrics = self._actor_regularizer(obs[:keep_rows])
        yield Update(gated + regularizer, (self._fast.actor_optim,))
        self._fast.sync_targets()
        metrics.update({"loss/actor_loss": gated, "relabel/keep_qc": qc[:keep_rows].mean(),
                        "relabel/forget_qc": qc[keep_rows:].mean(), **reg_metrics})  # fmt: skip
        return as_floats(metrics)
