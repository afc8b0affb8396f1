"""BCQ-Lag's and BEAR-Lag's training steps: OSRL's ``train_one_step``, with few operations.

Both agents share OSRL's step shape: VAE update, reward-critic and cost-critic updates against
``sample_action_num`` target actions per next state (a lambda-mix of the twin target heads, the
best sample), an actor update against the PID-Lagrangian penalty, then soft target updates. The
random draws are OSRL's, in OSRL's order, from torch's global generator, so the same seed gives
the same step (``tests/fast/test_equivalence.py``). What differs is only how it is computed: the
four critic ensembles (reward q1/q2, cost q1/q2) and their targets run as one batched network,
and the critic updates share one fused Adam (the two losses touch disjoint parameters, so this
equals OSRL's two optimizers).
"""

from __future__ import annotations

import torch

from osrl_unlearn.fast.actor_critic import ActorCriticStep, Metrics
from osrl_unlearn.fast.by_hand import mmd_loss
from osrl_unlearn.fast.networks import (
    linear_layers,
    mlp,
    squashed_gaussian,
    vae_decode,
    vae_decode_raw,
)
from osrl_unlearn.fast.updates import Update, Updates

TARGET_PASS_ROWS = 2560
"""Sampled next actions per critic that one pass of the target networks takes on the CPU. At
OSRL's sizes (512 states x 10 samples x 2 critics) one pass over all of them holds 16 MB
activations; blocks of 256 states keep each layer's input and output closer to the cache (the
target pass measured ~12 % faster). Each row's values are computed alone, so they are the same
to float32 rounding."""


def _blocks(total: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(total, start + size)) for start in range(0, total, size)]


class TwinCriticStep(ActorCriticStep):
    """The step BCQ-Lag and BEAR-Lag share; subclasses supply the actor."""

    def __init__(self, model, actor_lr: float, critic_lr: float, vae_lr: float) -> None:
        heads = lambda critic: [*critic.q1_nets, *critic.q2_nets]  # noqa: E731
        super().__init__(
            model, [*heads(model.critic), *heads(model.cost_critic)],
            [*heads(model.critic_old), *heads(model.cost_critic_old)],
            2 * model.num_q, actor_lr, critic_lr, vae_lr,
        )  # fmt: skip
        self.split = [model.num_q, model.num_q, model.num_qc, model.num_qc]
        self.constraint_rows: int | None = None
        """How many leading rows of each batch the PID controller sees (None: all, as OSRL)."""
        self.actor_rows: int | None = None
        """How many leading rows of each batch the actor learns on (None: all, as OSRL)."""

    def target_noise(self, rows: int, draws: int) -> torch.Tensor:
        """OSRL's random draws for the target actions of ``draws`` blocks of ``rows`` states,
        block after block, as (draws * rows, width)."""
        raise NotImplementedError

    def target_actions(self, next_obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Target actions for the rows of ``next_obs`` from their rows of :meth:`target_noise`."""
        raise NotImplementedError

    def actor_update(self, obs: torch.Tensor) -> Updates[Metrics]:
        raise NotImplementedError

    def twin_minima(self, q: torch.Tensor) -> torch.Tensor:
        """(E, N) head values -> (2, 2, N): the minima over each ensemble (reward q1, reward q2;
        cost q1, cost q2), as ``EnsembleDoubleQCritic.predict`` takes them."""
        if self.same_sizes:
            return torch.amin(q.view(2, 2, self.model.num_q, -1), 2)
        return torch.stack([torch.amin(part, 0) for part in q.split(self.split)]).view(2, 2, -1)

    @torch.no_grad()
    def bellman_backups(self, next_obs, rewards, costs, done) -> torch.Tensor:
        """(2, B) Bellman targets: reward and cost backups (OSRL draws the reward critic's
        target actions, then the cost critic's). All draws come first; on the CPU the networks
        then run on blocks of states (:data:`TARGET_PASS_ROWS`)."""
        model = self.model
        batch, samples = next_obs.shape[0], model.sample_action_num
        rows = batch * samples
        repeated = next_obs.unsqueeze(1).expand(-1, samples, -1).reshape(rows, -1)
        noise = self.target_noise(rows, 2).view(2, rows, -1)
        block = batch if not next_obs.is_cpu else max(1, TARGET_PASS_ROWS // samples)
        best = torch.cat([
            self.best_target_values(repeated[start * samples : stop * samples],
                                    noise[:, start * samples : stop * samples], samples)
            for start, stop in _blocks(batch, block)
        ], 1)  # fmt: skip
        # OSRL's cost backup does not cut at episode ends
        return torch.stack(
            [rewards + model.gamma * (1 - done) * best[0], costs + model.gamma * best[1]]
        )

    def best_target_values(self, repeated, noise, samples: int) -> torch.Tensor:
        """(2, b) the best sampled target value per state, reward and cost, for ``repeated``
        (b * samples, obs) next states and ``noise`` (2, b * samples, width), one block per
        critic: the lambda-mix of the twin target minima, the maximum over the samples."""
        model = self.model
        both = repeated.repeat(2, 1)
        actions = self.target_actions(both, noise.reshape(len(both), -1))
        inputs = torch.cat([both.view(2, len(repeated), -1), actions.view(2, len(repeated), -1)], 2)
        minima = self.twin_minima(self.targets(inputs, groups=self.head_group))  # (2, 2, N)
        low, high = torch.amin(minima, 1), torch.amax(minima, 1)
        mixed = model.lmbda * low + (1.0 - model.lmbda) * high
        return mixed.view(2, -1, samples).amax(2)

    def policy_values(self, obs, actions) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q_r, Q_c) at (obs, actions) as OSRL's actor loss takes them (the minimum over all
        heads of each critic), with gradient to the actions only."""
        q = self.group_min(self.critics(torch.cat([obs, actions], 1), True))
        return q[0], q[1]

    def lagrangian_penalty(self, qc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """OSRL's PID-Lagrangian term (the agent's own controller, so its state carries on)."""
        with torch.no_grad():
            seen = qc if self.constraint_rows is None else qc[: self.constraint_rows]
            multiplier = self.model.controller.control(seen).detach()
        return ((qc - self.model.qc_thres) * multiplier).mean(), multiplier

    def updates(self, obs, next_obs, actions, rewards, costs, done) -> Updates[Metrics]:
        metrics = yield from self.vae_update(obs, actions)
        backups = self.bellman_backups(next_obs, rewards, costs, done)
        reward_loss, cost_loss = yield from self.fit_critics(obs, actions, backups)
        metrics.update({"loss/critic_loss": reward_loss, "loss/cost_critic_loss": cost_loss})
        metrics.update((yield from self.actor_update(obs[: self.actor_rows])))
        self.sync_targets()
        return metrics


class BCQLStep(TwinCriticStep):
    """BCQ-Lag: a perturbation actor on VAE-decoded actions (OSRL ``BCQL``)."""

    def perturb(self, layers, obs, base_actions) -> torch.Tensor:
        model = self.model
        scale = model.phi * model.max_action
        a = scale * mlp(layers, torch.cat([obs, base_actions], 1), torch.tanh, torch.tanh)
        return (a + base_actions).clamp(-model.max_action, model.max_action)

    def target_noise(self, rows, draws):
        return torch.cat([self.latent_noise(rows) for _ in range(draws)])

    def target_actions(self, next_obs, noise):
        decoded = vae_decode(self.model.vae, next_obs, noise)
        return self.perturb(linear_layers(self.model.actor_old.pi), next_obs, decoded)

    def actor_update(self, obs):
        model = self.model
        with torch.no_grad():
            decoded = vae_decode(model.vae, obs, self.latent_noise(len(obs)))
        actions = self.perturb(linear_layers(model.actor.pi), obs, decoded)
        q, qc = self.policy_values(obs, actions)
        penalty, multiplier = self.lagrangian_penalty(qc)
        loss = -q.mean() + penalty
        yield Update(loss, (self.actor_optim,))
        return {"loss/actor_loss": loss.detach(), "loss/qc_penalty": penalty.detach(),
                "loss/lagrangian": multiplier}  # fmt: skip


class BEARLStep(TwinCriticStep):
    """BEAR-Lag: a squashed-Gaussian actor held near the VAE's actions by an MMD constraint with
    a dual weight exp(log_alpha) (OSRL ``BEARL``)."""

    def __init__(self, model, actor_lr: float, critic_lr: float, vae_lr: float,
                 alpha_lr: float) -> None:  # fmt: skip
        super().__init__(model, actor_lr, critic_lr, vae_lr)
        model.alpha_lr = alpha_lr

    def target_noise(self, rows, draws):
        return torch.cat([self.gaussian(rows, self.model.action_dim) for _ in range(draws)])

    def target_actions(self, next_obs, noise):
        _, _, raw = squashed_gaussian(self.model.actor_old, next_obs, noise)
        return torch.tanh(raw)  # OSRL's BEARL targets are not scaled by max_action

    def mmd(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """BEAR's support constraint on ``obs``: the MMD (B,) between ``num_samples_mmd_match``
        raw VAE actions and raw actor samples per state (gradient to the actor only), and the
        first actor sample per state, squashed (OSRL's draws: VAE latents, then actor noise)."""
        model = self.model
        batch, samples = obs.shape[0], model.num_samples_mmd_match
        with torch.no_grad():
            z = self.gaussian(batch, samples, model.latent_dim).clamp(-0.5, 0.5)
            repeated = obs.unsqueeze(1).expand(-1, samples, -1)
            raw_data_actions = vae_decode_raw(model.vae, repeated, z)
        stacked = torch.repeat_interleave(obs, samples, 0)
        noise = self.gaussian(len(stacked), model.action_dim)
        _, _, raw = squashed_gaussian(model.actor, stacked, noise)
        raw_actor_actions = raw.view(batch, samples, model.action_dim)
        mmd = mmd_loss(raw_data_actions, raw_actor_actions, model.mmd_sigma, model.kernel)
        return mmd, torch.tanh(raw_actor_actions[:, 0, :])

    def actor_update(self, obs):
        model = self.model
        mmd, first = self.mmd(obs)
        q, qc = self.policy_values(obs, first)
        penalty, multiplier = self.lagrangian_penalty(qc)
        alpha = model.log_alpha.exp()
        if model.n_train_steps >= model.start_update_policy_step:
            loss = (-q + alpha * (mmd - model.target_mmd_thresh)).mean()
        else:
            loss = (alpha * (mmd - model.target_mmd_thresh)).mean()
        loss = loss + penalty
        yield Update(loss, (self.actor_optim,))
        with torch.no_grad():
            model.log_alpha += model.alpha_lr * alpha * (mmd - model.target_mmd_thresh).mean()
            model.log_alpha.clamp_(min=-5.0, max=5.0)
        model.n_train_steps += 1
        return {"loss/actor_loss": loss.detach(), "loss/mmd_loss": mmd.mean().detach(),
                "loss/qc_penalty": penalty.detach(), "loss/lagrangian": multiplier,
                "loss/alpha_value": model.log_alpha.exp()}  # fmt: skip
