"""Losses whose backward is written by hand: one autograd node instead of a graph of dozens.

At CPU sizes a step is bound by per-operation overhead, and autograd's share of it is large: the
behaviour VAE's update cost ~4.6x its forward pass without autograd once autograd recorded,
walked and accumulated its graph (~110 backward calls; with the backward below the update is
~20 % faster, ``docs/training-speed.md``). Here the forward saves what the backward needs, and
the backward writes every parameter's gradient straight into its slice of the flat gradient
buffer (:class:`~osrl_unlearn.fast.networks.FlatParameters`), as ``StackedMLP.loss`` does for the
critics. The values are autograd's to float32 rounding (``tests/fast/test_by_hand.py``, and the
equivalence tests against OSRL's trainer).

The network losses (the VAE's, the weighted behaviour cloning) are ``torch.autograd.Function``s
taking an ``anchor`` (one trained parameter, so the result requires a gradient); their backward
returns no gradient for it (nor for the inputs: only the network's parameters are trained) and
writes the gradients itself, overwriting the parameters' ``.grad`` (the flat buffer's views; one
such loss per backward). The elementwise losses on network outputs (COptiDICE's dual losses,
BEAR's MMD) return their inputs' gradients to autograd as usual, which carries them on into the
networks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from osrl_unlearn.fast.networks import linear_layers

_relu_backward = torch.ops.aten.threshold_backward
LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))
"""log(sqrt(2 pi)), the Gaussian log-density's constant."""


def _linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    return torch.addmm(layer.bias, x, layer.weight.t())


def _write_linear_grads(layer: nn.Linear, grad_out: torch.Tensor, x: torch.Tensor) -> None:
    """The layer's weight and bias gradients for output gradient ``grad_out`` at input ``x``,
    written into their buffers (set where a parameter has none, as autograd would)."""
    if layer.weight.grad is None or layer.bias.grad is None:
        layer.weight.grad, layer.bias.grad = grad_out.t() @ x, grad_out.sum(0)
        return
    torch.mm(grad_out.t(), x, out=layer.weight.grad)
    torch.sum(grad_out, 0, out=layer.bias.grad)


def vae_loss(vae: nn.Module, obs: torch.Tensor, actions: torch.Tensor, noise: torch.Tensor,
             beta: float) -> torch.Tensor:  # fmt: skip
    """OSRL's behaviour-VAE loss (``losses.vae_loss`` of ``VAE.forward(obs, actions)`` with latent
    ``mean + std * noise``), with its backward by hand."""
    return _VaeLoss.apply(vae.e1.weight, vae, obs, actions, noise, beta)


class _VaeLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, anchor, vae, obs, actions, noise, beta):
        x = torch.cat([obs, actions], 1)
        h1 = _linear(x, vae.e1).relu_()
        h2 = _linear(h1, vae.e2).relu_()
        mean = _linear(h2, vae.mean)
        raw_log_std = _linear(h2, vae.log_std)
        std = raw_log_std.clamp(-4, 15).exp_()
        d = torch.cat([obs, mean + std * noise], 1)
        g1 = _linear(d, vae.d1).relu_()
        g2 = _linear(g1, vae.d2).relu_()
        squashed = _linear(g2, vae.d3).tanh_()
        error = vae.act_lim * squashed - actions
        kl = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
        ctx.vae, ctx.beta = vae, beta
        ctx.saved = (x, h1, h2, mean, raw_log_std, std, noise, d, g1, g2, squashed, error)
        return error.pow(2).mean() + beta * kl

    @staticmethod
    def backward(ctx, grad_loss):
        vae, beta = ctx.vae, ctx.beta
        x, h1, h2, mean, raw_log_std, std, noise, d, g1, g2, squashed, error = ctx.saved
        ctx.saved = None
        # decoder: d(MSE)/d(recon), through act_lim * tanh
        grad = error * (2.0 * grad_loss / error.numel())
        grad = grad * vae.act_lim * (1 - squashed * squashed)
        _write_linear_grads(vae.d3, grad, g2)
        grad = _relu_backward(grad @ vae.d3.weight, g2, 0)
        _write_linear_grads(vae.d2, grad, g1)
        grad = _relu_backward(grad @ vae.d2.weight, g1, 0)
        _write_linear_grads(vae.d1, grad, d)
        grad_z = grad @ vae.d1.weight[:, -mean.shape[1] :]  # d is (obs, z): z's columns only
        # latent mean + std * noise, and the KL: -0.5 mean(1 + log std^2 - mean^2 - std^2)
        kl_scale = beta * grad_loss / mean.numel()
        grad_mean = grad_z + kl_scale * mean
        grad_std = grad_z * noise + kl_scale * (std - 1 / std)
        inside = (raw_log_std >= -4) & (raw_log_std <= 15)  # clamp passes gradient inside
        grad_log_std = grad_std * std * inside
        _write_linear_grads(vae.mean, grad_mean, h2)
        _write_linear_grads(vae.log_std, grad_log_std, h2)
        grad = grad_mean @ vae.mean.weight
        grad = grad.addmm_(grad_log_std, vae.log_std.weight)
        grad = _relu_backward(grad, h2, 0)
        _write_linear_grads(vae.e2, grad, h1)
        grad = _relu_backward(grad @ vae.e2.weight, h1, 0)
        _write_linear_grads(vae.e1, grad, x)
        return None, None, None, None, None, None


def weighted_bc_loss(actor: nn.Module, obs: torch.Tensor, actions: torch.Tensor,
                     weights: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """COptiDICE's policy extraction (OSRL ``COptiDICE.actor_loss``): ``-(weights * log_prob).mean()``
    with ``log_prob`` the summed Gaussian log-density of ``actions`` under OSRL's
    ``SquashedGaussianMLPActor``'s (mu, std) at ``obs`` (before its tanh), with its backward by
    hand. ``weights`` (B,) get no gradient."""
    return _WeightedBCLoss.apply(actor.mu_layer.weight, actor, obs, actions, weights)


class _WeightedBCLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, anchor, actor, obs, actions, weights):
        body = linear_layers(actor.net)
        hidden = [obs]
        for layer in body:
            hidden.append(_linear(hidden[-1], layer).relu_())
        mu = _linear(hidden[-1], actor.mu_layer)
        raw_log_std = _linear(hidden[-1], actor.log_std_layer)
        log_std = raw_log_std.clamp(-20, 2)
        std = log_std.exp()
        error = actions - mu
        log_prob = -(error**2) / (2 * std**2) - log_std - LOG_SQRT_2PI
        ctx.actor, ctx.body = actor, body
        ctx.saved = (hidden, raw_log_std, std, error, weights)
        return -(weights * log_prob.sum(-1)).mean()

    @staticmethod
    def backward(ctx, grad_loss):
        actor, body = ctx.actor, ctx.body
        hidden, raw_log_std, std, error, weights = ctx.saved
        ctx.saved = None
        grad_log_prob = (weights * (-grad_loss / len(weights))).unsqueeze(1)
        grad_mu = grad_log_prob * error / std**2
        # d/d log_std of -(e^2) / (2 std^2) - log_std, where the clamp passes gradient
        inside = (raw_log_std >= -20) & (raw_log_std <= 2)
        grad_log_std = grad_log_prob * (error**2 / std**2 - 1) * inside
        _write_linear_grads(actor.mu_layer, grad_mu, hidden[-1])
        _write_linear_grads(actor.log_std_layer, grad_log_std, hidden[-1])
        grad = (grad_mu @ actor.mu_layer.weight).addmm_(grad_log_std, actor.log_std_layer.weight)
        for i in range(len(body) - 1, -1, -1):
            grad = _relu_backward(grad, hidden[i + 1], 0)
            _write_linear_grads(body[i], grad, hidden[i])
            if i > 0:
                grad = grad @ body[i].weight
        return None, None, None, None, None


def coptidice_dual_loss(values: torch.Tensor, model: nn.Module, nu_heads: int,
                        rewards: torch.Tensor, costs: torch.Tensor, done: torch.Tensor,
                        is_init: torch.Tensor, metrics: dict) -> torch.Tensor:  # fmt: skip
    """The summed nu, chi, tau and lambda losses of OSRL's ``COptiDICE.update``, from the nu and
    chi heads' values ``values`` (E, 2B: the heads on current then next states) and
    ``model._lmbda``, ``model._tau`` (softplus of the duals), with its backward by hand (the
    gradients for ``values`` and the two duals; the graph it replaces is ~160 backward calls).
    The logged values go into ``metrics``."""
    return _DualLoss.apply(values, model._lmbda, model._tau, model, nu_heads,
                           (rewards, costs, done, is_init), metrics)  # fmt: skip


def coptidice_optimal_w(model: nn.Module, lmbda: torch.Tensor, nu_s: torch.Tensor,
                        nu_next: torch.Tensor, rewards: torch.Tensor, costs: torch.Tensor,
                        done: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """OSRL's ``COptiDICE._optimal_w`` from the nu values and lambda (softplus of the dual, used
    without gradient): (e_nu_lambda, w(s, a))."""
    e = rewards - lmbda.detach() * costs
    e = e + model.gamma * (1.0 - done) * nu_next - nu_s
    return e, F.relu(model.f_prime_inv_fn(e / model.alpha))


def _amin_backward(values: torch.Tensor, least: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``torch.amin(values, 0)``'s backward: the gradient shared among the tied minima."""
    ties = values == least
    return ties * (grad / ties.sum(0))


class _DualLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, lmbda, tau, model, nu_heads, batch, metrics):
        rewards, costs, done, is_init = batch
        size, gamma, alpha = rewards.shape[0], model.gamma, model.alpha
        nu = torch.amin(values[:nu_heads], 0)
        nu_s, nu_next = nu[:size], nu[size:]
        e, w = coptidice_optimal_w(model, lmbda, nu_s, nu_next, rewards, costs, done)
        proportion = model.init_state_propotion
        f_w = model.f_fn(w)
        chi = softmax = ell = None
        if model.cost_ub_epsilon == 0:
            weighted_c = (w * costs).mean()
            chi_loss = tau_loss = d_kl = values.new_zeros(1)
        else:
            chi = torch.amin(values[nu_heads:], 0)
            chi_s, chi_next = chi[:size], chi[size:]
            ell = (1 - gamma) * (chi_s * is_init / proportion) + w * (
                costs + gamma * (1 - done) * chi_next - chi_s
            )
            logits = ell / tau
            softmax = torch.softmax(logits, dim=0)
            weights = softmax * size
            log_weights = torch.log_softmax(logits, dim=0) + math.log(size)
            d_kl = (weights * log_weights - weights + 1).mean()
            weighted_c = (weights * w * costs).mean()
            chi_loss = (weights * ell).mean()
            tau_loss = tau * (model.cost_ub_epsilon - d_kl)
        nu_loss = (1 - gamma) * (nu_s * is_init / proportion).mean() + (w * e - alpha * f_w).mean()
        lmbda_loss = lmbda * (model.qc_thres - weighted_c)
        metrics.update({"loss/Df": f_w.mean(), "loss/chi_loss": chi_loss, "loss/tau_loss": tau_loss,
                        "loss/D_kl": d_kl, "loss/td_error": e.pow(2).mean(), "loss/nu_loss": nu_loss,
                        "loss/lmbda_loss": lmbda_loss})  # fmt: skip
        ctx.model, ctx.nu_heads = model, nu_heads
        ctx.saved = (values, nu, chi, e, w, is_init / proportion, done, softmax, ell, tau,
                     weighted_c, d_kl)  # fmt: skip
        return (chi_loss + nu_loss + tau_loss.sum() + lmbda_loss.sum()).reshape(())

    @staticmethod
    def backward(ctx, grad_loss):
        model, heads = ctx.model, ctx.nu_heads
        values, nu, chi, e, w, init_scale, done, softmax, ell, tau, weighted_c, d_kl = ctx.saved
        ctx.saved = None
        size, gamma = e.shape[0], model.gamma
        scale = grad_loss / size
        # nu loss: d/de mean(w e - alpha f(w)) = (w + (e - alpha f'(w)) dw/de) / B, where
        # w = relu(f'^-1(e / alpha)): e = alpha f'(w) wherever w > 0 and dw/de = 0 where it is cut,
        # so only w remains (autograd's sum of the two terms differs by rounding, and by OSRL's
        # 1e-10 inside log(w), which moves f' by less than that wherever w > 1e-8)
        grad_e = w * scale
        grad_nu = torch.cat([(1 - gamma) * init_scale * scale - grad_e,
                             grad_e * (gamma * (1.0 - done))])  # fmt: skip
        grad_values = torch.zeros_like(values)
        grad_values[:heads] = _amin_backward(values[:heads], nu, grad_nu)
        grad_tau = None
        if chi is not None:
            # chi loss: sum(softmax(ell / tau) * ell), through both factors
            grad_ell = grad_loss * softmax * (1 + (ell - (softmax * ell).sum()) / tau)
            grad_chi = torch.cat([grad_ell * ((1 - gamma) * init_scale - w),
                                  grad_ell * w * (gamma * (1 - done))])  # fmt: skip
            grad_values[heads:] = _amin_backward(values[heads:], chi, grad_chi)
            grad_tau = (grad_loss * (model.cost_ub_epsilon - d_kl)).reshape(1)
        grad_lmbda = grad_loss * (model.qc_thres - weighted_c)
        return grad_values, grad_lmbda.reshape(1), grad_tau, None, None, None, None


def mmd_loss(data_actions: torch.Tensor, actor_actions: torch.Tensor, sigma: float,
             kernel: str) -> torch.Tensor:  # fmt: skip
    """BEAR's MMD (B,) between ``data_actions`` and ``actor_actions`` (B, N, d) as OSRL's
    ``BEARL.mmd_loss_gaussian`` / ``mmd_loss_laplacian`` computes it, with its backward by hand
    (the gradient goes to ``actor_actions`` only, as in OSRL, where the data actions are drawn
    without one). The three kernel means come from one pairwise pass over both sample sets. As
    OSRL's ``BEARL``, any ``kernel`` other than 'laplacian' is the Gaussian one."""
    return _Mmd.apply(actor_actions, data_actions, sigma, kernel != "laplacian")


class _Mmd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, actor_actions, data_actions, sigma, gaussian):
        batch, n = data_actions.shape[:2]
        # (B, d, 2N), data samples first: pairwise differences with the samples innermost (the
        # (B, 2N, 2N, d) layout's size-d inner loops are ~5x slower at d = 2; same values)
        both = torch.cat([data_actions, actor_actions], 1).transpose(1, 2).contiguous()
        diff = both.unsqueeze(3) - both.unsqueeze(2)  # (B, d, 2N, 2N)
        dist = (diff.pow(2) if gaussian else diff.abs()).sum(1)
        k = dist.div_(-2.0 * sigma).exp_()  # x / -c is -(x / c) to the bit: OSRL's -d / (2 sigma)
        means = k.view(batch, 2, n, 2, n).mean(dim=(2, 4))  # (B, 2, 2): xx, xy / yx, yy
        value = (means[:, 0, 0] + means[:, 1, 1] - 2.0 * means[:, 0, 1] + 1e-6).sqrt()
        ctx.sigma, ctx.gaussian, ctx.n = sigma, gaussian, n
        ctx.saved = (diff, k, value)
        return value

    @staticmethod
    def backward(ctx, grad_value):
        diff, k, value = ctx.saved
        ctx.saved = None
        n, sigma = ctx.n, ctx.sigma
        # d value / d k_yy = 1 / (2 value), each kernel mean over N^2 pairs; with phi the
        # per-dimension distance (square or abs) and phi' odd, k symmetric:
        # d/dy_j = -1/sigma (sum_b k(y_j, y_b) phi'(y_j - y_b) - sum_a k(y_j, x_a) phi'(y_j - x_a))
        scale = grad_value / (2.0 * value) / (n * n) / -sigma
        rows = diff[:, :, n:]  # (B, d, N, 2N): the actor samples' rows
        # phi' = 2 (y - z) for the square: the factor 2 goes on the scale (exact, a power of 2)
        slope = k[:, n:].unsqueeze(1) * (rows if ctx.gaussian else rows.sign())
        if ctx.gaussian:
            scale = 2.0 * scale
        grad = slope[..., n:].sum(-1) - slope[..., :n].sum(-1)  # (B, d, N)
        return (grad * scale.view(-1, 1, 1)).transpose(1, 2), None, None, None
