"""CPQ's training step: OSRL's ``CPQTrainer.train_one_step`` with few operations.

OSRL's order of random draws is kept (the reward target's next actions, the cost target's next
actions, the unused sample of ``actor(obs)``, the out-of-distribution action samples, the VAE's
latent noise on them, the actor's action), so the same seed gives the same step. Everything the
two critic losses need comes from networks neither critic update touches (the actor, the target
critics, the VAE), so both targets are computed first and both critics take one fused Adam step.
"""

from __future__ import annotations

import torch

from osrl_unlearn.fast.actor_critic import ActorCriticStep, Metrics
from osrl_unlearn.fast.networks import squashed_gaussian, vae_encode
from osrl_unlearn.fast.updates import Update, Updates


class CPQStep(ActorCriticStep):
    """Constraints Penalized Q-learning (OSRL ``CPQ``): reward backups gated by the cost critic,
    a cost critic pushed up on out-of-distribution actions (weight exp(log_alpha))."""

    def __init__(
        self, model, actor_lr: float, critic_lr: float, alpha_lr: float, vae_lr: float
    ) -> None:
        super().__init__(
            model, [*model.critic.q_nets, *model.cost_critic.q_nets],
            [*model.critic_old.q_nets, *model.cost_critic_old.q_nets],
            model.num_q, actor_lr, critic_lr, vae_lr,
        )  # fmt: skip
        model.alpha_lr = alpha_lr

    def _sampled_action(self, mu, std) -> torch.Tensor:
        """``_actor_forward(obs, False, True)``: tanh(mu + std * eps) * max_action."""
        return torch.tanh(mu + std * self.gaussian(*mu.shape)) * self.model.max_action

    @torch.no_grad()
    def bellman_backups(self, next_obs, rewards, costs, done) -> torch.Tensor:
        """(2, B) reward and cost backups alone (what unlearning regresses keep data on), with
        OSRL's two next-action draws."""
        model, r = self.model, self.reward_heads
        mu, std, _ = squashed_gaussian(model.actor, next_obs, None)
        reward_next = self._sampled_action(mu, std)
        cost_next = self._sampled_action(mu, std)
        q_targ = torch.amin(
            self.targets(torch.cat([next_obs, reward_next], 1), heads=slice(0, r)), 0
        )
        cost_inputs = torch.cat(
            [torch.cat([next_obs, reward_next], 1), torch.cat([next_obs, cost_next], 1)]
        )
        qc = torch.amin(self.targets(cost_inputs, heads=slice(r, None)), 0)
        gate, qc_next = qc.chunk(2)
        reward_backup = rewards + model.gamma * (1 - done) * (gate <= model.q_thres) * q_targ
        return torch.stack([reward_backup, costs + model.gamma * qc_next])

    @torch.no_grad()
    def backups(self, obs, next_obs, rewards, costs, done):
        """(2, B) Bellman targets (reward, cost) and qc_ood, CPQ's out-of-distribution cost
        value, with OSRL's draws in OSRL's order (the backups' next actions first)."""
        model, samples = self.model, self.model.sample_action_num
        backups = self.bellman_backups(next_obs, rewards, costs, done)
        mu, std, _ = squashed_gaussian(model.actor, obs, None)
        self.gaussian(*mu.shape)  # the action of actor(obs) that OSRL draws and does not use
        ood_actions = (mu + std * self.gaussian(samples, *mu.shape)).reshape(-1, model.action_dim)
        ood_obs = obs.repeat(samples, 1)
        ood_mean, ood_std = vae_encode(model.vae, ood_obs, ood_actions)
        self.gaussian(*ood_std.shape)  # the VAE's latent noise on them (its decoding is unused)
        qc_sampled = torch.amin(
            self.targets(
                torch.cat([ood_obs, ood_actions], 1), heads=slice(self.reward_heads, None)
            ),
            0,
        )
        kl = -0.5 * (1 + torch.log(ood_std.pow(2)) - ood_mean.pow(2) - ood_std.pow(2)).mean(1)
        kl = kl.reshape(samples, obs.shape[0])
        qc_ood = ((kl >= torch.quantile(kl, 0.75)) * qc_sampled.reshape(kl.shape)).mean(0)
        return backups, qc_ood

    def updates(self, obs, next_obs, actions, rewards, costs, done) -> Updates[Metrics]:
        model = self.model
        metrics = yield from self.vae_update(obs, actions)
        backups, qc_ood = self.backups(obs, next_obs, rewards, costs, done)
        critic_loss, cost_fit = yield from self.fit_critics(obs, actions, backups)
        alpha = model.log_alpha.exp()
        ood_gap = qc_ood.mean() - model.qc_thres
        cost_critic_loss = cost_fit - alpha * ood_gap  # a constant in the gradient
        model.log_alpha -= model.alpha_lr * alpha * ood_gap
        model.log_alpha.clamp_(min=-5.0, max=5.0)

        mu, std, raw = squashed_gaussian(
            model.actor, obs, self.gaussian(len(obs), model.action_dim)
        )
        pi = torch.tanh(raw) * model.max_action
        q_pi, qc_pi = self.group_min(self.critics(torch.cat([obs, pi], 1), detached=True))
        actor_loss = -((qc_pi <= model.q_thres) * q_pi).mean()
        yield Update(actor_loss, (self.actor_optim,))
        self.sync_targets()
        return {**metrics, "loss/critic_loss": critic_loss, "loss/cost_critic_loss": cost_critic_loss,
                "loss/alpha_value": model.log_alpha.exp(), "loss/actor_loss": actor_loss.detach()}  # fmt: skip
