"""What the fast steps of BCQ-Lag, BEAR-Lag and CPQ share: one batched network for all critic
heads and one for their targets, flat parameter groups with one fused Adam each, the VAE update
and the soft target update."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from osrl_unlearn.fast.by_hand import vae_loss
from osrl_unlearn.fast.networks import (
    FusedAdam,
    StackedMLP,
    flatten_modules,
    soft_update,
)
from osrl_unlearn.fast.updates import Step, Update, Updates

Metrics = dict[str, torch.Tensor]


class ActorCriticStep(Step):
    """Optimizers and shared updates of an OSRL actor-critic agent with a behaviour VAE.

    A step is :meth:`updates` (a generator of :class:`~osrl_unlearn.fast.updates.Update`);
    calling the step object runs it.

    Args:
        model: the OSRL agent (its parameters become views of the flat groups built here).
        heads: the critic heads, reward heads first, then cost heads.
        target_heads: their target copies, in the same order.
        reward_heads: how many of ``heads`` belong to the reward critic.
        actor_lr, critic_lr, vae_lr: learning rates as OSRL's trainer takes them.
    """

    def __init__(self, model, heads: Sequence[nn.Module], target_heads: Sequence[nn.Module],
                 reward_heads: int, actor_lr: float, critic_lr: float, vae_lr: float) -> None:  # fmt: skip
        self.model = model
        self.reward_heads = reward_heads
        self.critics = StackedMLP(heads)
        self.targets = StackedMLP(target_heads, trainable=False)
        self.vae_optim = FusedAdam(flatten_modules([model.vae]), vae_lr)
        self.critic_optim = FusedAdam(self.critics.flat, critic_lr)
        self.actor_optim = FusedAdam(flatten_modules([model.actor]), actor_lr)
        self.actor_target = flatten_modules([model.actor_old], trainable=False)
        cost_heads = self.critics.heads - reward_heads
        self.same_sizes = cost_heads == reward_heads
        self.device = self.critics.flat.data.device
        self.head_group = torch.tensor([0] * reward_heads + [1] * cost_heads, device=self.device)
        """Per head: 0 for a reward head, 1 for a cost head (picks each head's input)."""
        self.generator: torch.Generator | None = None
        """Where the step's random draws come from: None for OSRL's own (torch's global
        generators, latents drawn on the CPU as OSRL draws them); a generator on the agent's
        device for a step captured in a CUDA graph (:mod:`osrl_unlearn.fast.cuda_graphs`)."""

    def updates(self, *batch: torch.Tensor) -> Updates[Metrics]:
        """One OSRL ``train_one_step`` as the updates it makes; returns its logged values as 0-d
        tensors (no host sync)."""
        raise NotImplementedError

    def group_min(self, q: torch.Tensor) -> torch.Tensor:
        """(E, N) head values -> (2, N): the minimum over the reward heads, over the cost heads."""
        if self.same_sizes:
            return torch.amin(q.view(2, self.reward_heads, -1), 1)
        r = self.reward_heads
        return torch.stack([torch.amin(q[:r], 0), torch.amin(q[r:], 0)])

    def vae_update(self, obs: torch.Tensor, actions: torch.Tensor) -> Updates[Metrics]:
        """OSRL's ``vae_loss`` step (one latent draw)."""
        vae = self.model.vae
        noise = self.gaussian_like(obs.new_empty(len(obs), vae.latent_dim))
        loss = vae_loss(vae, obs, actions, noise, self.model.beta)
        yield Update(loss, (self.vae_optim,))
        return {"loss/loss_vae": loss.detach()}

    def fit_critics(
        self, obs, actions, backups: torch.Tensor
    ) -> Updates[tuple[torch.Tensor, torch.Tensor]]:
        """One step of every critic head towards its group's backup, ``backups`` (2, B) holding
        the reward and the cost backup (OSRL's summed MSE per critic; the two critics touch
        disjoint parameters, so one backward serves both). Returns both losses."""
        targets = backups.index_select(0, self.head_group)
        losses = {}

        def loss_of(q):
            per_head = (q - targets).pow(2).mean(1)
            losses["reward"] = per_head[: self.reward_heads].sum()
            losses["cost"] = per_head[self.reward_heads :].sum()
            return losses["reward"] + losses["cost"]

        yield Update(self.critics.loss(torch.cat([obs, actions], 1), loss_of), (self.critic_optim,))
        return losses["reward"].detach(), losses["cost"].detach()

    def gaussian_like(self, x: torch.Tensor) -> torch.Tensor:
        """N(0, 1) noise shaped as ``x`` (``randn_like`` as OSRL, or from :attr:`generator`)."""
        if self.generator is None:
            return torch.randn_like(x)
        return torch.randn(x.shape, device=x.device, generator=self.generator)

    def gaussian(self, *shape: int) -> torch.Tensor:
        """N(0, 1) noise of ``shape`` on the agent's device: drawn on the CPU from torch's global
        generator (the draws the equivalence tests pin to OSRL's) and moved, or from
        :attr:`generator`."""
        if self.generator is None:
            return torch.randn(shape).to(self.device)
        return torch.randn(shape, device=self.device, generator=self.generator)

    def latent_noise(self, rows: int) -> torch.Tensor:
        """OSRL's VAE latent draw for ``rows`` states (``networks.latent_noise``), on the agent's
        device, drawn as :meth:`gaussian` draws."""
        return self.gaussian(rows, self.model.latent_dim).clamp(-0.5, 0.5)

    def sync_targets(self) -> None:
        """OSRL's ``sync_weight``: soft updates of the target critics and the target actor."""
        soft_update(self.targets.flat, self.critics.flat, self.model.tau)
        soft_update(self.actor_target, self.actor_optim.flat, self.model.tau)
