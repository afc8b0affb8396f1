"""OSRL's BCQ-Lag, BEAR-Lag and CPQ with ``unlearn``: each supplies only its own pieces.

Drop-in subclasses: built with the same arguments as OSRL's classes and loading the same state
dicts. The Bellman targets below restate what OSRL computes inside ``critic_loss`` /
``cost_critic_loss`` (those methods also step optimizers, so they cannot be reused as they are).
"""

from __future__ import annotations

import torch

from osrl_unlearn.stack import import_osrl_algorithms
from osrl_unlearn.unlearn.actor_critic import ActorCriticUnlearning

_osrl = import_osrl_algorithms()


class _TwinCriticTargets:
    """BCQ-Lag / BEAR-Lag targets: ``sample_action_num`` target actions per next state, a
    lambda-mix of the twin target heads, the best sample (OSRL's ``critic_loss``)."""

    def _target_actions(self, next_obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _mixed_target(self, target_critic, next_obs: torch.Tensor) -> torch.Tensor:
        batch_size = next_obs.shape[0]
        repeated = torch.repeat_interleave(next_obs, self.sample_action_num, 0)
        q1, q2, _, _ = target_critic.predict(repeated, self._target_actions(repeated))
        mixed = self.lmbda * torch.min(q1, q2) + (1.0 - self.lmbda) * torch.max(q1, q2)
        return mixed.reshape(batch_size, -1).max(1)[0]

    def _reward_backup(self, next_obs, rewards, done):
        return rewards + self.gamma * (1 - done) * self._mixed_target(self.critic_old, next_obs)

    def _cost_backup(self, next_obs, costs, done):
        # OSRL's cost backup does not cut at episode ends; kept as the agent trains.
        return costs + self.gamma * self._mixed_target(self.cost_critic_old, next_obs)

    def _reward_heads(self, obs, actions):
        _, _, q1_list, q2_list = self.critic.predict(obs, actions)
        return [*q1_list, *q2_list]

    def _cost_heads(self, obs, actions):
        _, _, q1_list, q2_list = self.cost_critic.predict(obs, actions)
        return [*q1_list, *q2_list]

    def _policy_values(self, obs, actions):
        q1, q2, _, _ = self.critic.predict(obs, actions)
        qc1, qc2, _, _ = self.cost_critic.predict(obs, actions)
        return torch.min(q1, q2), torch.min(qc1, qc2)


class BCQL(_TwinCriticTargets, ActorCriticUnlearning, _osrl.BCQL):
    """BCQ-Lag (OSRL's ``BCQL``) with Safe-RULE unlearning.

    Action rule: the perturbation actor applied to VAE-decoded actions, ``actor(s, vae.decode(s))``;
    the VAE is frozen during unlearning, which keeps the actor inside the data's support.
    """

    osrl_key = "bcql"

    def _target_actions(self, next_obs):
        return self.actor_old(next_obs, self.vae.decode(next_obs))

    def _policy_actions(self, obs, actor):
        return actor(obs, self.vae.decode(obs))

    def _frozen_during_actor_step(self):
        return (self.critic, self.cost_critic, self.vae)


class BEARL(_TwinCriticTargets, ActorCriticUnlearning, _osrl.BEARL):
    """BEAR-Lag (OSRL's ``BEARL``) with Safe-RULE unlearning.

    Keeps BEAR's MMD support constraint on keep states, with its current weight exp(log_alpha)
    held fixed (OSRL checkpoints do not store log_alpha; a fresh agent starts at 1).
    """

    osrl_key = "bearl"

    def _target_actions(self, next_obs):
        actions, _ = self.actor_old(next_obs, False, True, False)
        return actions

    def _policy_actions(self, obs, actor):
        actions, _ = actor(obs, False, False)
        return actions * self.max_action  # OSRL's _actor_forward, for any actor

    def _actor_regularizer(self, obs):
        with torch.no_grad():
            _, raw_data_actions = self.vae.decode_multiple(
                obs, num_decode=self.num_samples_mmd_match
            )
        stacked = torch.repeat_interleave(obs, self.num_samples_mmd_match, 0)
        _, raw_actor_actions = self.actor(stacked, return_pretanh_value=True)
        raw_actor_actions = raw_actor_actions.view(
            obs.shape[0], self.num_samples_mmd_match, self.action_dim
        )
        kernel = self.mmd_loss_laplacian if self.kernel == "laplacian" else self.mmd_loss_gaussian
        mmd = kernel(raw_data_actions, raw_actor_actions, sigma=self.mmd_sigma)
        penalty = (self.log_alpha.exp() * (mmd - self.target_mmd_thresh)).mean()
        return penalty, {"unlearn/mmd": mmd.mean().item()}

    def _frozen_during_actor_step(self):
        return (self.critic, self.cost_critic, self.vae)


class CPQ(ActorCriticUnlearning, _osrl.CPQ):
    """CPQ (OSRL's ``CPQ``) with Safe-RULE unlearning.

    Reward backups keep CPQ's gate (the next value counts only where the target cost critic
    deems the next action safe). CPQ's out-of-distribution cost term is computed under no_grad
    from the target cost critic in OSRL, so it adds no gradient and is left out.
    """

    osrl_key = "cpq"

    def _next_actions(self, next_obs):
        actions, _ = self._actor_forward(next_obs, False, True)
        return actions

    def _reward_backup(self, next_obs, rewards, done):
        next_actions = self._next_actions(next_obs)
        q_targ, _ = self.critic_old.predict(next_obs, next_actions)
        qc_targ, _ = self.cost_critic_old.predict(next_obs, next_actions)
        return rewards + self.gamma * (1 - done) * (qc_targ <= self.q_thres) * q_targ

    def _cost_backup(self, next_obs, costs, done):
        qc_targ, _ = self.cost_critic_old.predict(next_obs, self._next_actions(next_obs))
        return costs + self.gamma * qc_targ

    def _reward_heads(self, obs, actions):
        return list(self.critic.predict(obs, actions)[1])

    def _cost_heads(self, obs, actions):
        return list(self.cost_critic.predict(obs, actions)[1])

    def _policy_values(self, obs, actions):
        return self.critic.predict(obs, actions)[0], self.cost_critic.predict(obs, actions)[0]

    def _policy_actions(self, obs, actor):
        actions, _ = actor(obs, False, False)
        return actions * self.max_action  # OSRL's _actor_forward, for any actor
