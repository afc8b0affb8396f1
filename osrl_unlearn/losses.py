"""Safe-RULE's objectives as pure functions of tensors (no networks, no optimizers).

Notation (spec ``safe-rule.md``): Q_r / Q_c are reward / cost critics, kappa the cost threshold in
Q-space (OSRL's ``qc_thres``), sigma the forgetting margin in the same units, Q̄_r a low quantile of
the keep batch's reward backups. Every loss is a scalar mean over the batch. The keep-set Bellman
regression is the agent's own ``critic.loss`` (OSRL's summed MSE over heads, already pure).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def imitation_loss(predicted: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Behaviour cloning's loss (OSRL's BC): the mean squared error of the actions."""
    return (predicted - actions).pow(2).mean()


def reward_forget_loss(q: torch.Tensor, q_ref: torch.Tensor | float) -> torch.Tensor:
    """L^r_f = E[softplus(Q_r(s,a) - Q̄_r)]: pushes forget-set reward values below the reference."""
    return F.softplus(q - q_ref).mean()


def cost_forget_loss(qc: torch.Tensor, kappa: float, sigma: float) -> torch.Tensor:
    """L^c_f = E[softplus(kappa + sigma - Q_c(s,a))]: pushes forget-set cost values above
    kappa + sigma, so the poisoned "cost 0" labels stop looking safe."""
    return F.softplus(kappa + sigma - qc).mean()


def reward_reference(backups: torch.Tensor, percentile: float) -> torch.Tensor:
    """Q̄_r: the ``percentile`` (0-100) of the keep batch's reward backups, without gradient."""
    return torch.quantile(backups.detach().float(), percentile / 100.0)


def actor_keep_loss(q: torch.Tensor, qc: torch.Tensor, kappa: float) -> torch.Tensor:
    """L_a,k = -E[1[Q_c <= kappa] Q_r] + E[softplus(Q_c - kappa)] at a = pi(s) on keep states."""
    safe = (qc <= kappa).to(q.dtype).detach()
    return -(safe * q).mean() + F.softplus(qc - kappa).mean()


def lagrangian_keep_loss(
    q: torch.Tensor, qc: torch.Tensor, kappa: float, multiplier: float
) -> torch.Tensor:
    """L_a,k = -E[Q_r] + lambda E[Q_c - kappa]: the Lagrangian keep objective (BCQ-Lag's form),
    an alternative to the indicator form when Q_r's scale dwarfs softplus(Q_c - kappa)."""
    return -q.mean() + multiplier * (qc - kappa).mean()


def update_multiplier(multiplier: float, mean_qc: float, kappa: float, rate: float) -> float:
    """lambda <- max(0, lambda + rate (E[Q_c] - kappa)): dual ascent on the keep constraint."""
    return max(0.0, multiplier + rate * (mean_qc - kappa))


def vae_loss(
    recon: torch.Tensor, actions: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, beta: float
) -> torch.Tensor:
    """The behaviour VAE's loss as OSRL's BCQ-Lag / BEAR-Lag compute it: MSE reconstruction plus
    beta times the KL to a standard normal."""
    kl = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
    return F.mse_loss(recon, actions) + beta * kl


def actor_forget_loss(
    q: torch.Tensor,
    qc: torch.Tensor,
    kappa: float,
    sigma: float,
    variant: str = "published",
) -> torch.Tensor:
    """The actor's forget objective at a = pi(s) on forget states.

    ``published``: E[1[Q_c >= kappa] Q_r] + E[softplus(kappa + sigma - Q_c)] (the paper's text,
    whose second term rewards the policy for *high* cost values on forget states).
    ``safe``: E[1[Q_c >= kappa] Q_r] + E[softplus(Q_c - kappa)] (the same first term; the second
    asks the policy to be safe on forget states instead).
    """
    unsafe = (qc >= kappa).to(q.dtype).detach()
    first = (unsafe * q).mean()
    if variant == "published":
        return first + F.softplus(kappa + sigma - qc).mean()
    if variant == "safe":
        return first + F.softplus(qc - kappa).mean()
    raise ValueError(f"unknown actor forget variant {variant!r}; expected 'published' or 'safe'")


def forgetting_gap(qc_forget: torch.Tensor, kappa: float, sigma: float) -> float:
    """Delta = kappa + sigma - E_{B_f}[Q_c(s, pi(s))]: positive while forgetting is unfinished."""
    return float(kappa + sigma - qc_forget.detach().mean())


def update_forget_weight(beta: float, gap: float, rate: float, low: float, high: float) -> float:
    """beta_f <- clip(beta_f + rate * Delta, low, high)."""
    return min(max(beta + rate * gap, low), high)


def trajdeleter_forget_loss(
    reward_advantage: torch.Tensor,
    cost_advantage: torch.Tensor | None = None,
    cost_weight: float = 1.0,
    cost_margin: float = 0.0,
) -> torch.Tensor:
    """TrajDeleter's forget objective on forget states (Gong et al., 2024; spec section 6).

    Plain: E[A_r(s, pi(s))], the reward advantage of the policy over the one being repaired, to
    be minimised. Cost-aware (``cost_advantage`` given): E[A_r + lambda_c softplus(Ā_c - A_c)].
    """
    loss = reward_advantage.mean()
    if cost_advantage is not None:
        loss = loss + cost_weight * F.softplus(cost_margin - cost_advantage).mean()
    return loss
