"""Safe-RULE for agents with reward and cost Q critics: BCQ-Lag, BEAR-Lag and CPQ.

The critic and actor steps are written here once. An agent supplies its Bellman targets (with its own
target networks and target-action rule), its critic heads, the values its actor maximises, its
action rule and, where it has one, its behaviour regulariser.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from osrl_unlearn.losses import (
    actor_forget_loss,
    actor_keep_loss,
    cost_forget_loss,
    lagrangian_keep_loss,
    reward_forget_loss,
    reward_reference,
    trajdeleter_forget_loss,
    update_multiplier,
    vae_loss,
)
from osrl_unlearn.unlearn.config import SafeRuleConfig
from osrl_unlearn.unlearn.loop import Batch, UnlearningContext, UnlearningMixin


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Turns off ``requires_grad`` of every parameter of ``modules`` for the block (as OSRL's
    actor losses do), restoring the previous flags afterwards."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


class ActorCriticUnlearning(UnlearningMixin):
    """Safe-RULE's critic and actor steps over the hooks below (see :mod:`.config` for the maths)."""

    # Hooks: the agent's own pieces ------------------------------------------------------------

    def _reward_backup(self, next_obs, rewards, done) -> torch.Tensor:
        """y_r of the agent's own reward Bellman regression (called under ``no_grad``)."""
        raise NotImplementedError

    def _cost_backup(self, next_obs, costs, done) -> torch.Tensor:
        """y_c of the agent's own cost Bellman regression (called under ``no_grad``)."""
        raise NotImplementedError

    def _reward_heads(self, obs, actions) -> list[torch.Tensor]:
        """Every reward-critic head the agent trains, each (B,)."""
        raise NotImplementedError

    def _cost_heads(self, obs, actions) -> list[torch.Tensor]:
        """Every cost-critic head the agent trains, each (B,)."""
        raise NotImplementedError

    def _policy_values(self, obs, actions) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q_r, Q_c) as the agent's actor sees them (e.g. the minimum over twin heads)."""
        raise NotImplementedError

    def _policy_actions(self, obs, actor: nn.Module) -> torch.Tensor:
        """a = actor(s) by the agent's own action rule (gradient flows to ``actor``)."""
        raise NotImplementedError

    def _actor_regularizer(self, obs) -> tuple[torch.Tensor, dict[str, float]]:
        """The agent's behaviour regulariser on keep states (zero where it has none)."""
        return torch.zeros((), device=obs.device), {}

    def _frozen_during_actor_step(self) -> tuple[nn.Module, ...]:
        return (self.critic, self.cost_critic)

    # The steps ---------------------------------------------------------------------------------

    def _unlearning_setup(self, config: SafeRuleConfig) -> float:
        self.unlearn_actor_optim = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.unlearn_critic_optim = torch.optim.Adam(
            [*self.critic.parameters(), *self.cost_critic.parameters()], lr=config.critic_lr
        )
        if config.behaviour_unlearning and hasattr(self, "vae"):
            self.unlearn_vae_optim = torch.optim.Adam(self.vae.parameters(), lr=config.critic_lr)
        return float(self.qc_thres)

    def _behaviour_step(self, keep: Batch) -> dict[str, float]:
        """One step of the behaviour VAE on keep data (behaviour_unlearning)."""
        recon, mean, std = self.vae(keep[0], keep[2])
        loss = vae_loss(recon, keep[2], mean, std, self.beta)
        self.unlearn_vae_optim.zero_grad()
        loss.backward()
        self.unlearn_vae_optim.step()
        return {"unlearn/vae_loss": loss.item()}

    def _sync_targets(self) -> None:
        self.sync_weight()

    def _critic_unlearning_step(
        self, keep: Batch, forget: Batch, ctx: UnlearningContext
    ) -> dict[str, float]:
        cfg = ctx.config
        obs_k, next_k, act_k, rew_k, cost_k, done_k = keep[:6]
        n = obs_k.shape[0]
        # keep and forget states through the critics in one pass (keep only when converging)
        obs, actions = obs_k, act_k
        if not ctx.converging:
            obs, actions = torch.cat([obs_k, forget[0]]), torch.cat([act_k, forget[2]])
        alpha_forget = 0.0 if ctx.converging else cfg.alpha_forget
        with torch.no_grad():
            y_r = self._reward_backup(next_k, rew_k, done_k)
        heads = self._reward_heads(obs, actions)
        keep_r = self.critic.loss(y_r, [h[:n] for h in heads])
        q_ref = reward_reference(y_r, cfg.q_ref_percentile)
        loss = cfg.alpha_keep * keep_r
        metrics = {"unlearn/critic_keep_loss": keep_r.item(), "unlearn/q_ref": q_ref.item()}
        if alpha_forget:
            forget_r = sum(reward_forget_loss(h[n:], q_ref) for h in heads)
            loss = loss + alpha_forget * forget_r
            metrics["unlearn/critic_forget_loss"] = forget_r.item()
            metrics["unlearn/forget_q"] = torch.stack([h[n:] for h in heads]).mean().item()
        if cfg.use_cost:
            with torch.no_grad():
                y_c = self._cost_backup(next_k, cost_k, done_k)
            cost_heads = self._cost_heads(obs, actions)
            keep_c = self.cost_critic.loss(y_c, [h[:n] for h in cost_heads])
            loss = loss + cfg.alpha_keep * keep_c
            metrics["unlearn/cost_critic_keep_loss"] = keep_c.item()
            if alpha_forget:
                forget_c = sum(cost_forget_loss(h[n:], ctx.kappa, ctx.sigma) for h in cost_heads)
                loss = loss + alpha_forget * forget_c
                metrics["unlearn/cost_critic_forget_loss"] = forget_c.item()
                metrics["unlearn/forget_qc_data"] = (
                    torch.stack([h[n:] for h in cost_heads]).mean().item()
                )
        self.unlearn_critic_optim.zero_grad()
        loss.backward()
        self.unlearn_critic_optim.step()
        return metrics

    def _actor_unlearning_step(
        self, keep: Batch, forget: Batch, ctx: UnlearningContext
    ) -> tuple[dict[str, float], torch.Tensor]:
        cfg = ctx.config
        behaviour = {}
        if cfg.behaviour_unlearning and hasattr(self, "vae"):
            behaviour = self._behaviour_step(keep)
        obs_k = keep[0]
        n = obs_k.shape[0]
        obs = torch.cat([obs_k, forget[0]])
        with frozen(*self._frozen_during_actor_step()):
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
            self.unlearn_actor_optim.zero_grad()
            loss.backward()
            self.unlearn_actor_optim.step()
        metrics = {
            "unlearn/actor_keep_loss": keep_loss.item(),
            "unlearn/actor_forget_loss": forget_loss.item(),
            "unlearn/forget_qc": qc[n:].mean().item(),
            "unlearn/keep_qc": qc[:n].mean().item(),
            "unlearn/multiplier": ctx.multiplier,
            **behaviour,
            **reg_metrics,
        }
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
