"""OSRL's BCQ-Lag, BEAR-Lag and CPQ with ``unlearn``: each supplies only its own pieces.

Drop-in subclasses: built with the same arguments as OSRL's classes and loading the same state
dicts. Their Bellman targets, critic heads and target updates are those of the agent's fast
training step (:mod:`osrl_unlearn.fast`, tested equal to OSRL's ``train_one_step``); each class
adds its action rule and, where it has one, its behaviour regulariser.
"""

from __future__ import annotations

import torch

from osrl_unlearn.fast.bcql import BCQLStep, BEARLStep
from osrl_unlearn.fast.cpq import CPQStep
from osrl_unlearn.fast.networks import latent_noise, linear_layers, squashed_gaussian, vae_decode
from osrl_unlearn.stack import import_osrl_algorithms
from osrl_unlearn.unlearn.actor_critic import ActorCriticUnlearning

_osrl = import_osrl_algorithms()


class BCQL(ActorCriticUnlearning, _osrl.BCQL):
    """BCQ-Lag (OSRL's ``BCQL``) with Safe-RULE unlearning.

    Action rule: the perturbation actor applied to VAE-decoded actions, ``actor(s, vae.decode(s))``;
    the VAE is frozen during unlearning, which keeps the actor inside the data's support.
    """

    osrl_key = "bcql"

    def _fast_step(self, config):
        return BCQLStep(self, config.actor_lr, config.critic_lr, config.critic_lr)

    def _policy_actions(self, obs, actor):
        with torch.no_grad():
            decoded = vae_decode(self.vae, obs, latent_noise(len(obs), self.latent_dim))
        return self._fast.perturb(linear_layers(actor.pi), obs, decoded)


class _SquashedGaussianActor:
    """BEAR-Lag's and CPQ's action rule: a sample of the squashed Gaussian, times max_action
    (OSRL's ``_actor_forward``), for any actor of that shape."""

    def _policy_actions(self, obs, actor):
        _, _, raw = squashed_gaussian(actor, obs, torch.randn(len(obs), self.action_dim))
        return torch.tanh(raw) * self.max_action


class BEARL(_SquashedGaussianActor, ActorCriticUnlearning, _osrl.BEARL):
    """BEAR-Lag (OSRL's ``BEARL``) with Safe-RULE unlearning.

    Keeps BEAR's MMD support constraint on keep states, with its current weight exp(log_alpha)
    held fixed (OSRL checkpoints do not store log_alpha; a fresh agent starts at 1).
    """

    osrl_key = "bearl"

    def _fast_step(self, config):
        alpha_lr = getattr(self, "alpha_lr", 1e-3)  # the dual is not updated while unlearning
        return BEARLStep(self, config.actor_lr, config.critic_lr, config.critic_lr, alpha_lr)

    def _actor_regularizer(self, obs):
        mmd, _ = self._fast.mmd(obs)
        penalty = (self.log_alpha.exp() * (mmd - self.target_mmd_thresh)).mean()
        return penalty, {"unlearn/mmd": mmd.mean()}


class CPQ(_SquashedGaussianActor, ActorCriticUnlearning, _osrl.CPQ):
    """CPQ (OSRL's ``CPQ``) with Safe-RULE unlearning.

    Reward backups keep CPQ's gate (the next value counts only where the target cost critic
    deems the next action safe). CPQ's out-of-distribution cost term is computed under no_grad
    from the target cost critic in OSRL, so it adds no gradient and is left out.
    """

    osrl_key = "cpq"

    def _fast_step(self, config):
        alpha_lr = getattr(self, "alpha_lr", 1e-4)
        return CPQStep(self, config.actor_lr, config.critic_lr, alpha_lr, config.critic_lr)
