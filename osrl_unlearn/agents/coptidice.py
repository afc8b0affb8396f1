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

import torch
import torch.nn.functional as F

from osrl_unlearn.fast.coptidice import COptiDICEStep, normal_log_prob
from osrl_unlearn.fast.networks import squashed_gaussian
from osrl_unlearn.fast.updates import Update, Updates, as_floats
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
        # the fast training step's batched nu/chi heads and fused optimizers, at unlearning rates
        self._fast = COptiDICEStep(self, config.actor_lr, config.critic_lr, config.critic_lr)
        return float(self.qc_thres)

    def _sync_targets(self) -> None:
        """COptiDICE has no target networks."""

    def _critic_unlearning_step(
        self, keep: Batch, forget: Batch, ctx: UnlearningContext
    ) -> Updates[dict[str, float]]:
        obs, next_obs, _, rewards, costs, done, is_init = keep
        metrics = yield from self._fast.dual_update(obs, next_obs, rewards, costs, done, is_init)
        names = {"loss/nu_loss": "unlearn/nu_loss", "loss/chi_loss": "unlearn/chi_loss",
                 "loss/lmbda": "unlearn/lmbda"}  # fmt: skip
        return as_floats({name: metrics[key] for key, name in names.items()})

    def _actor_unlearning_step(
        self, keep: Batch, forget: Batch, ctx: UnlearningContext
    ) -> Updates[tuple[dict[str, float], torch.Tensor]]:
        cfg = ctx.config
        obs_k, next_k, act_k, rew_k, cost_k, done_k = keep[:6]
        obs_f, next_f, act_f, rew_f, cost_f, done_f = forget[:6]
        n = obs_k.shape[0]
        with torch.no_grad():
            self._lmbda = F.softplus(self.lmbda)
            # nu on keep and forget states and successors, chi on forget states: one pass
            values = self._fast.values(torch.cat([obs_k, next_k, obs_f, next_f]))
            nu = torch.amin(values[: self._fast.nu_heads], 0)
            _, w_keep = self._fast.optimal_w(nu[:n], nu[n : 2 * n], rew_k, cost_k, done_k)
            m = obs_f.shape[0]
            _, w_forget = self._fast.optimal_w(
                nu[2 * n : 2 * n + m], nu[2 * n + m :], rew_f, cost_f, done_f
            )
            chi_forget = torch.amin(values[self._fast.nu_heads :, 2 * n : 2 * n + m], 0)
            reward_side = (w_forget / (w_keep.mean() + 1e-6)).clamp(max=10.0)
            cost_side = ((ctx.kappa + ctx.sigma - chi_forget) / (ctx.kappa + ctx.sigma)).clamp(0, 1)
            forget_weight = reward_side + self._cost_side_weight(cfg) * cost_side
        obs_noise = torch.randn_like(obs_k) * self.observations_std * 0.1
        act_noise = torch.randn_like(act_k) * self.actions_std * 0.1
        # keep states (with OSRL's noise) and forget states through the actor in one pass
        mu, std, _ = squashed_gaussian(self.actor, torch.cat([obs_k + obs_noise, obs_f]), None)
        log_prob = normal_log_prob(torch.cat([act_k + act_noise, act_f]), mu, std).sum(-1)
        keep_loss = -(w_keep * log_prob[:n]).mean()
        logp_forget = log_prob[n:]  # as OSRL scores keep actions
        floor = FORGET_LOGP_FLOOR_PER_DIM * self.action_dim
        forget_loss = (forget_weight * F.softplus(logp_forget - floor)).mean()
        loss = keep_loss if ctx.converging else keep_loss + ctx.beta * forget_loss
        yield Update(loss, (self._fast.actor_optim,))
        metrics = {"unlearn/actor_keep_loss": keep_loss, "unlearn/actor_forget_loss": forget_loss,
                   "unlearn/forget_logp": logp_forget.mean(), "unlearn/forget_qc": chi_forget.mean()}  # fmt: skip
        return as_floats(metrics), chi_forget

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
