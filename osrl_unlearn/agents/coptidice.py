"""OSRL's COptiDICE with ``unlearn`` (Safe-RULE section 5: no Q critics).

COptiDICE learns a value nu(s) of the Lagrangian reward r - lambda c and a cost-side value chi(s);
its policy is behaviour cloning weighted by w(s, a) = relu(f'^-1(e_nu / alpha)). Unlearning:

1. nu, chi, lambda and tau follow COptiDICE's own objective on keep data only;
2. the actor clones keep actions with COptiDICE's weights, and lowers the log-probability of
   forget actions, weighted by a reward-side term (the nu-weight the poisoned labels earned,
   relative to the keep batch's) plus a cost-side term (how far chi says forget states sit below
   kappa + sigma, in [0, 1]);
3. beta_f adapts from Delta = kappa + sigma - E_f[chi(s)].

TrajDeleter on COptiDICE: with no Q critic, the reward advantage of a forget action is COptiDICE's
own e_nu(s, a) through its weight w(s, a); so the forget weight is the reward-side term alone
(plus lambda_c times the cost-side term for the cost-aware variant), at a fixed beta_f.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from osrl_unlearn.stack import import_osrl_algorithms
from osrl_unlearn.unlearn.config import SafeRuleConfig
from osrl_unlearn.unlearn.loop import Batch, UnlearningContext, UnlearningMixin

_osrl = import_osrl_algorithms()

FORGET_LOGP_FLOOR_PER_DIM = -2.0
"""Forget actions stop being pushed once their log-density falls below this (nats per action
dimension): lowering an unbounded log-probability further would only wreck the actor."""


class COptiDICE(UnlearningMixin, _osrl.COptiDICE):
    """COptiDICE (OSRL's ``COptiDICE``) with Safe-RULE unlearning (see the module docstring)."""

    osrl_key = "coptidice"

    def _unlearning_setup(self, config: SafeRuleConfig) -> float:
        self.unlearn_actor_optim = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.unlearn_critic_optim = torch.optim.Adam(
            [*self.nu_network.parameters(), *self.chi_network.parameters()], lr=config.critic_lr
        )
        self.unlearn_scalar_optim = torch.optim.Adam([self.lmbda, self.tau], lr=config.critic_lr)
        self._lmbda = F.softplus(self.lmbda)
        return float(self.qc_thres)

    def _sync_targets(self) -> None:
        """COptiDICE has no target networks."""

    def _critic_unlearning_step(
        self, keep: Batch, forget: Batch, ctx: UnlearningContext
    ) -> dict[str, float]:
        obs, next_obs, _, rewards, costs, done, is_init = keep
        self._lmbda = F.softplus(self.lmbda)
        nu_s, _, e_nu_lambda, w_sa = self._optimal_w(obs, next_obs, rewards, costs, done)
        w_fixed = w_sa.detach()
        nu_init = nu_s * is_init / self.init_state_propotion
        nu_loss = (1 - self.gamma) * nu_init.mean() + (
            w_sa * e_nu_lambda - self.alpha * self.f_fn(w_sa)
        ).mean()
        self._tau = F.softplus(self.tau)
        chi_s, _ = self.chi_network.predict(obs, None)
        chi_next, _ = self.chi_network.predict(next_obs, None)
        chi_init = chi_s * is_init / self.init_state_propotion
        ell = (1 - self.gamma) * chi_init + w_fixed * (
            costs + self.gamma * (1 - done) * chi_next - chi_s
        )
        logits = ell / self._tau.detach()
        batch_size = obs.shape[0]
        weights = torch.softmax(logits, dim=0) * batch_size
        log_weights = torch.log_softmax(logits, dim=0) + np.log(batch_size)
        d_kl = (weights * log_weights - weights + 1).mean()
        weighted_c = (weights * w_fixed * costs).mean()
        chi_loss = (weights * ell).mean()
        tau_loss = self._tau * (self.cost_ub_epsilon - d_kl.detach())
        lmbda_loss = self._lmbda * (self.qc_thres - weighted_c.detach())
        # The four losses touch disjoint parameters, so one backward equals OSRL's four.
        self.unlearn_critic_optim.zero_grad()
        self.unlearn_scalar_optim.zero_grad()
        (nu_loss + chi_loss + tau_loss.sum() + lmbda_loss.sum()).backward()
        self.unlearn_critic_optim.step()
        self.unlearn_scalar_optim.step()
        return {
            "unlearn/nu_loss": nu_loss.item(),
            "unlearn/chi_loss": chi_loss.item(),
            "unlearn/lmbda": self._lmbda.item(),
            "unlearn/weighted_cost": weighted_c.item(),
        }

    def _actor_unlearning_step(
        self, keep: Batch, forget: Batch, ctx: UnlearningContext
    ) -> tuple[dict[str, float], torch.Tensor]:
        cfg = ctx.config
        obs_k, next_k, act_k, rew_k, cost_k, done_k = keep[:6]
        obs_f, next_f, act_f, rew_f, cost_f, done_f = forget[:6]
        with torch.no_grad():
            self._lmbda = F.softplus(self.lmbda)
            _, _, _, w_keep = self._optimal_w(obs_k, next_k, rew_k, cost_k, done_k)
            _, _, _, w_forget = self._optimal_w(obs_f, next_f, rew_f, cost_f, done_f)
            chi_forget, _ = self.chi_network.predict(obs_f, None)
            reward_side = (w_forget / (w_keep.mean() + 1e-6)).clamp(max=10.0)
            cost_side = ((ctx.kappa + ctx.sigma - chi_forget) / (ctx.kappa + ctx.sigma)).clamp(0, 1)
            forget_weight = reward_side + self._cost_side_weight(cfg) * cost_side
        obs_noise = torch.randn_like(obs_k) * self.observations_std * 0.1
        act_noise = torch.randn_like(act_k) * self.actions_std * 0.1
        _, _, keep_dist = self.actor(obs_k + obs_noise, False, True, True)
        keep_loss = -(w_keep * keep_dist.log_prob(act_k + act_noise).sum(-1)).mean()
        _, _, forget_dist = self.actor(obs_f, False, True, True)
        logp_forget = forget_dist.log_prob(act_f).sum(-1)  # as OSRL scores keep actions
        floor = FORGET_LOGP_FLOOR_PER_DIM * self.action_dim
        forget_loss = (forget_weight * F.softplus(logp_forget - floor)).mean()
        loss = keep_loss if ctx.converging else keep_loss + ctx.beta * forget_loss
        self.unlearn_actor_optim.zero_grad()
        loss.backward()
        self.unlearn_actor_optim.step()
        metrics = {
            "unlearn/actor_keep_loss": keep_loss.item(),
            "unlearn/actor_forget_loss": forget_loss.item(),
            "unlearn/forget_logp": logp_forget.mean().item(),
            "unlearn/forget_qc": chi_forget.mean().item(),
        }
        return metrics, chi_forget

    @staticmethod
    def _cost_side_weight(config: SafeRuleConfig) -> float:
        """Weight of the cost-side term of the forget weight, by method: Safe-RULE 1, reward-only
        and plain TrajDeleter 0 (the reward advantage alone: the nu-weight of the forget
        action), cost-aware TrajDeleter lambda_c."""
        if config.forget_objective == "trajdeleter-cost":
            return config.trajdeleter_cost_weight
        if config.forget_objective == "trajdeleter" or not config.use_cost:
            return 0.0
        return 1.0
