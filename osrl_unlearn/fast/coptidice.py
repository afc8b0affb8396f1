"""COptiDICE's training step: OSRL's ``COptiDICE.update`` with few operations.

OSRL steps four optimizers one after the other (chi, tau, nu, lambda), but the four losses touch
disjoint parameters and none reads a parameter another has just updated, so one backward of
their sum and one fused Adam per learning rate compute the same update. The nu and chi ensembles
run as one batched network over current and next states. The policy extraction keeps OSRL's
draws (observation noise, action noise, the actor's unused sample) in OSRL's order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from osrl_unlearn.fast.actor_critic import Metrics
from osrl_unlearn.fast.by_hand import (
    LOG_SQRT_2PI,
    coptidice_dual_loss,
    coptidice_optimal_w,
    weighted_bc_loss,
)
from osrl_unlearn.fast.networks import (
    FlatParameters,
    FusedAdam,
    StackedMLP,
    flatten_modules,
)
from osrl_unlearn.fast.updates import Step, Update, Updates


def normal_log_prob(value: torch.Tensor, mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``torch.distributions.Normal(mu, std).log_prob(value)``, without the distribution object."""
    return -((value - mu) ** 2) / (2 * std**2) - std.log() - LOG_SQRT_2PI


class COptiDICEStep(Step):
    """COptiDICE (OSRL ``COptiDICE``): nu and chi values, the dual variables lambda and tau, and
    a policy cloned with the optimal stationary-distribution weights w(s, a)."""

    def __init__(self, model, actor_lr: float, critic_lr: float, scalar_lr: float) -> None:
        self.model = model
        self.nu_heads = model.num_nu
        self.values = StackedMLP([*model.nu_network.q_nets, *model.chi_network.q_nets])
        self.critic_optim = FusedAdam(self.values.flat, critic_lr)
        scalars = FlatParameters([model.lmbda, model.tau], parameters=False)
        model.lmbda, model.tau = scalars.views  # plain tensors, as OSRL keeps them
        self.scalar_optim = FusedAdam(scalars, scalar_lr)
        self.actor_optim = FusedAdam(flatten_modules([model.actor]), actor_lr)

    def optimal_w(self, nu_s, nu_next, rewards, costs, done):
        """OSRL's ``_optimal_w`` from the nu values: (e_nu_lambda, w(s, a))."""
        return coptidice_optimal_w(
            self.model, self.model._lmbda, nu_s, nu_next, rewards, costs, done
        )

    def nu_values(self, obs: torch.Tensor) -> torch.Tensor:
        """nu(s) as OSRL's ``nu_network.predict`` gives it (minimum over the heads), no gradient."""
        with torch.no_grad():
            return torch.amin(self.values(obs, heads=slice(0, self.nu_heads)), 0)

    def updates(self, obs, next_obs, actions, rewards, costs, done, is_init) -> Updates[Metrics]:
        """One OSRL ``update(batch)`` as the updates it makes; returns its logged values as 0-d
        tensors."""
        metrics = yield from self.dual_update(obs, next_obs, rewards, costs, done, is_init)
        metrics.update((yield from self.actor_update(obs, next_obs, actions, rewards, costs, done)))
        return metrics

    def dual_update(self, obs, next_obs, rewards, costs, done, is_init) -> Updates[Metrics]:
        """The nu, chi, lambda and tau updates of OSRL's ``update``."""
        model = self.model
        model._lmbda = F.softplus(model.lmbda)
        model._tau = F.softplus(model.tau)
        out: Metrics = {}
        loss = self.values.loss(
            torch.cat([obs, next_obs]),
            lambda values: coptidice_dual_loss(values, model, self.nu_heads,
                                               rewards, costs, done, is_init, out),
        )  # fmt: skip
        yield Update(loss, (self.critic_optim, self.scalar_optim))
        out.update({"loss/tau": model._tau, "loss/lmbda": model._lmbda})
        return {key: value.detach() for key, value in out.items()}

    def actor_update(self, obs, next_obs, actions, rewards, costs, done) -> Updates[Metrics]:
        """OSRL's policy extraction: behaviour cloning weighted by w(s, a) under the updated nu."""
        model = self.model
        batch = obs.shape[0]
        obs_eps = torch.randn_like(obs) * model.observations_std * 0.1
        act_eps = torch.randn_like(actions) * model.actions_std * 0.1
        torch.randn(len(obs), model.action_dim)  # the actor's sample OSRL draws and does not use
        with torch.no_grad():
            nu = self.nu_values(torch.cat([obs, next_obs]))
            _, w_new = self.optimal_w(nu[:batch], nu[batch:], rewards, costs, done)
        actor_loss = weighted_bc_loss(model.actor, obs + obs_eps, actions + act_eps, w_new)
        yield Update(actor_loss, (self.actor_optim,))
        return {"loss/actor_loss": actor_loss.detach()}
