"""OSRL's networks evaluated with few, large operations, on the agent's own parameters.

A training step at CPU sizes is bound by per-operation overhead (~3,700 ATen calls per BCQ-Lag
step in OSRL), not arithmetic. Two things cut the count:

- :class:`StackedMLP` evaluates every head of a Q ensemble (reward and cost critics together) with
  one batched matmul per layer. Its stacked weights are the training leaves, and the OSRL modules'
  parameters are re-pointed to views of them, so the agent's ``state_dict`` always holds the
  current weights (checkpoints, evaluation callbacks and OSRL's own code see the same numbers).
- :func:`mlp`, :func:`vae_encode` and :func:`vae_decode` run single networks as plain
  ``F.linear`` calls on the modules' parameters, without ``nn.Module`` dispatch.

At OSRL's sizes the step is arithmetic instead, and a no-grad layer over many rows (the Bellman
targets' 5,120-10,240 sampled next actions) runs as one oneDNN call with the bias and ReLU in its
epilogue (:func:`dense`): no bias copy and no second pass over the activations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Activation = Callable[[torch.Tensor], torch.Tensor]

FUSED_ELEMENTS = 1 << 18
"""Output elements from which a no-grad layer runs as one fused oneDNN call (:func:`dense`);
below it the call's set-up costs more than the pass over the activations it saves."""

_FUSED = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def dense(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
          relu: bool = False) -> torch.Tensor:  # fmt: skip
    """``F.linear(x, weight, bias)``, then ReLU when ``relu``. On the CPU, outside autograd and
    with at least ``FUSED_ELEMENTS`` outputs, one oneDNN matmul with bias and ReLU fused into it
    (the same values to float32 rounding; ``tests/fast/test_networks.py``)."""
    if (_FUSED and x.is_cpu and not torch.is_grad_enabled()
            and x.numel() // x.shape[-1] * weight.shape[0] >= FUSED_ELEMENTS):  # fmt: skip
        rows = x.reshape(-1, x.shape[-1])
        y = torch.ops.mkldnn._linear_pointwise(rows, weight, bias, "relu" if relu else "none",
                                               [], "")  # fmt: skip
        return y.view(*x.shape[:-1], weight.shape[0])
    y = F.linear(x, weight, bias)
    return F.relu(y) if relu else y


def linear_layers(network: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of an OSRL ``mlp`` (an ``nn.Sequential``), in order."""
    return [m for m in network.modules() if isinstance(m, nn.Linear)]


def mlp(
    layers: Sequence[nn.Linear],
    x: torch.Tensor,
    hidden: Activation,
    output: Activation | None = None,
) -> torch.Tensor:
    """OSRL's ``mlp`` forward: ``hidden`` after every layer but the last, ``output`` after it."""
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        activation = hidden if i < last else output
        x = dense(x, layer.weight, layer.bias, relu=activation is F.relu)
        if activation is not None and activation is not F.relu:
            x = activation(x)
    return x


def vae_encode(vae: nn.Module, obs: torch.Tensor, actions: torch.Tensor):
    """OSRL ``VAE.forward`` up to the latent: (mean, std), log-std clamped to [-4, 15]."""
    z = F.relu(F.linear(torch.cat([obs, actions], 1), vae.e1.weight, vae.e1.bias))
    z = F.relu(F.linear(z, vae.e2.weight, vae.e2.bias))
    mean = F.linear(z, vae.mean.weight, vae.mean.bias)
    log_std = F.linear(z, vae.log_std.weight, vae.log_std.bias).clamp(-4, 15)
    return mean, torch.exp(log_std)


def vae_decode_raw(vae: nn.Module, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The decoder's last layer before tanh (BEAR-Lag's MMD works on these raw actions)."""
    a = dense(torch.cat([obs, z], -1), vae.d1.weight, vae.d1.bias, relu=True)
    a = dense(a, vae.d2.weight, vae.d2.bias, relu=True)
    return dense(a, vae.d3.weight, vae.d3.bias)


def vae_decode(vae: nn.Module, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """OSRL ``VAE.decode(obs, z)``: ``act_lim * tanh(d3(...))``."""
    return vae.act_lim * torch.tanh(vae_decode_raw(vae, obs, z))


def latent_noise(rows: int, latent_dim: int) -> torch.Tensor:
    """The latent OSRL's ``VAE.decode(obs)`` draws when given none: N(0, 1) clamped to ±0.5, from
    torch's global generator (same draws, same order as OSRL)."""
    return torch.randn((rows, latent_dim)).clamp(-0.5, 0.5)


def squashed_gaussian(
    actor: nn.Module, obs: torch.Tensor, noise: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """OSRL ``SquashedGaussianMLPActor`` (ReLU body): (mu, std, pre-tanh action). The pre-tanh
    action is ``mu + std * noise`` (``rsample``), or ``mu`` when ``noise`` is None."""
    body = linear_layers(actor.net)
    h = mlp(body, obs, F.relu, F.relu)
    mu = F.linear(h, actor.mu_layer.weight, actor.mu_layer.bias)
    log_std = F.linear(h, actor.log_std_layer.weight, actor.log_std_layer.bias)
    std = torch.exp(torch.clamp(log_std, -20, 2))
    return mu, std, (mu if noise is None else mu + std * noise)


class FlatParameters:
    """Tensors stored in one flat buffer, their gradients in another: one fused Adam call, one
    ``zero_`` and one soft update then touch all of them, instead of a loop over tensors.

    ``views`` are autograd leaves (``nn.Parameter``) aliasing slices of ``data``; each one's
    ``.grad`` is the matching slice of ``grad``, so backward accumulates into ``grad`` in place.

    Args:
        tensors: the initial values (copied).
        trainable: leaves that take gradients (False for target networks: no gradient buffer).
        parameters: make the views ``nn.Parameter`` (to put back into modules); plain tensors
            otherwise (attributes a module must not register, such as COptiDICE's lambda).
    """

    def __init__(
        self, tensors: Sequence[torch.Tensor], trainable: bool = True, parameters: bool = True
    ) -> None:
        sizes = [t.numel() for t in tensors]
        with torch.no_grad():
            self.data = torch.cat([t.detach().reshape(-1) for t in tensors])
        self.grad = torch.zeros_like(self.data) if trainable else None
        self.views: list[torch.Tensor] = []
        for t, chunk, offset in zip(tensors, self.data.split(sizes), _offsets(sizes), strict=True):
            view = chunk.view(t.shape).requires_grad_(trainable)
            if parameters:
                view = nn.Parameter(view, requires_grad=trainable)
            if self.grad is not None:
                view.grad = self.grad[offset : offset + t.numel()].view(t.shape)
            self.views.append(view)

    def zero_grad(self) -> None:
        self.grad.zero_()


def _offsets(sizes: Sequence[int]) -> list[int]:
    offsets, total = [], 0
    for size in sizes:
        offsets.append(total)
        total += size
    return offsets


def flatten_modules(modules: Sequence[nn.Module], trainable: bool = True) -> FlatParameters:
    """Moves every parameter of ``modules`` into one :class:`FlatParameters`; the modules keep
    their parameter names and shapes (their ``state_dict`` is unchanged) but now hold views."""
    owners = [(m, name) for module in modules for m in module.modules()
              for name in list(m._parameters) if m._parameters[name] is not None]  # fmt: skip
    flat = FlatParameters([m._parameters[name] for m, name in owners], trainable)
    for (m, name), view in zip(owners, flat.views, strict=True):
        m._parameters[name] = view
    return flat


class StackedMLP:
    """Several OSRL MLPs of one shape (the heads of Q ensembles) as one batched network.

    Layer ``l`` is a weight of shape (E, out, in) and a bias of shape (E, 1, out); head ``e``
    computes ``relu(... relu(x W_0[e]^T + b_0[e]) ...) W_L[e]^T + b_L[e]``, exactly OSRL's
    ``mlp(..., nn.ReLU)`` with an identity output. The source modules' parameters become views of
    the stacked tensors (they keep their names and shapes, so ``state_dict`` is unchanged).

    Args:
        networks: the heads, each an ``nn.Sequential`` of Linear and ReLU layers.
        trainable: make the stacked tensors autograd leaves (False for target networks).
    """

    def __init__(self, networks: Sequence[nn.Module], trainable: bool = True) -> None:
        per_head = [linear_layers(n) for n in networks]
        depth = len(per_head[0])
        if any(len(layers) != depth for layers in per_head):
            raise ValueError("every head of a StackedMLP must have the same layers")
        self.heads = len(networks)
        stacked = []
        for i in range(depth):
            stacked.append(torch.stack([layers[i].weight for layers in per_head]))
            stacked.append(torch.stack([layers[i].bias for layers in per_head]).unsqueeze(1))
        self.flat = FlatParameters(stacked, trainable)
        self.weights = self.flat.views[0::2]
        self.biases = self.flat.views[1::2]
        # the weights as the actor step reads them: no gradient to them, transposed once (views
        # of the same storage, so they always hold the current values)
        self._frozen = [(b.detach(), w.detach().transpose(1, 2))
                        for w, b in zip(self.weights, self.biases, strict=True)]  # fmt: skip
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            for e, layers in enumerate(per_head):
                flag = layers[i].weight.requires_grad
                layers[i].weight = nn.Parameter(weight[e].detach(), requires_grad=flag)
                layers[i].bias = nn.Parameter(bias[e, 0].detach(), requires_grad=flag)

    def __call__(
        self,
        x: torch.Tensor,
        detached: bool = False,
        heads: slice | None = None,
        groups: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The ``heads`` (all by default) on ``x``. Returns (E, N).

        Args:
            x: (N, in) shared by the heads, or (G, N, in) with ``groups``.
            detached: use the weights without gradient to them (the actor step: gradients reach
                the actions, not the critics).
            heads: a slice of the heads to run.
            groups: (E,) index into ``x``'s first dimension: head ``e`` reads ``x[groups[e]]``.
        """
        if detached:
            layers = self._frozen
        else:
            layers = [
                (b, w.transpose(1, 2)) for w, b in zip(self.weights, self.biases, strict=True)
            ]
        if heads is not None:
            layers = [(b[heads], w[heads]) for b, w in layers]
        count, rows = len(layers[0][0]), x.shape[-2]
        widest = max(w.shape[-1] for _, w in layers)
        last = len(layers) - 1
        if x.is_cpu and count * rows * widest > BATCHED_ELEMENTS:
            # large activations: head by head, each in cache, 2-D matmuls on transposed views
            outputs = []
            for e in range(count):
                h = x if x.dim() == 2 else x[int(groups[e])]
                for i, (b, w) in enumerate(layers):
                    h = dense(h, w[e].t(), b[e, 0], relu=i < last)
                outputs.append(h.squeeze(-1))
            return torch.stack(outputs)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(count, -1, -1)
        elif groups is not None:
            x = x.index_select(0, groups)
        recorded = torch.is_grad_enabled()
        for i, (b, w) in enumerate(layers):
            # outside autograd, the bias and ReLU in place: baddbmm first broadcasts the bias
            # into its output, and the width-1 last layer is slow in it (Bellman targets ~9 %
            # faster at the small profile, the same values)
            x = torch.baddbmm(b, x, w) if recorded else torch.bmm(x, w).add_(b)
            if i < last:
                x = F.relu(x) if recorded else x.relu_()
        return x.squeeze(-1)

    def loss(
        self, x: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """``loss_of(q)``, where q (E, N) is every head on the shared input ``x`` (N, in), with a
        backward written by hand for the heads: it writes (not adds) every stacked weight's
        gradient into ``flat.grad``, instead of autograd's graph of the same operations (the
        gradients are the same; none flows to ``x``). ``loss_of`` may involve other leaves; they
        get their gradients as usual. One such loss per backward."""
        return loss_of(_HeadsByHand.apply(self.weights[0], self, x))

    def _forward_saving(self, x: torch.Tensor) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
        """(E, N) head values and, per head group, every layer's input (for the backward): the
        heads batched, or one by one (each in cache) where activations are large on the CPU."""
        count, rows = self.heads, x.shape[0]
        widest = max(w.shape[1] for w in self.weights)
        last = len(self.weights) - 1
        if x.is_cpu and count * rows * widest > BATCHED_ELEMENTS:
            saved, outputs = [], []
            for e in range(count):
                h, inputs = x, []
                for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
                    inputs.append(h)
                    h = torch.addmm(b[e], h, w[e].t())
                    if i < last:
                        h = h.relu_()
                saved.append(inputs)
                outputs.append(h.squeeze(-1))
            return torch.stack(outputs), saved
        inputs = [x.unsqueeze(0).expand(count, -1, -1)]
        h = inputs[0]
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w.transpose(1, 2))
            if i < last:
                h = F.relu(h)
                inputs.append(h)
        return h.squeeze(-1), [inputs]

    def _backward_by_hand(self, grad_q: torch.Tensor, saved: list[list[torch.Tensor]]) -> None:
        """The gradients of every stacked weight from the heads' output gradient (E, N), into
        ``flat.grad``: per layer a product for the weight, a sum for the bias, and a product and
        the ReLU's mask for the layer below."""
        last = len(self.weights) - 1
        if len(saved) == 1:  # the heads batched
            inputs, grad = saved[0], grad_q.unsqueeze(-1)
            for i in range(last, -1, -1):
                torch.bmm(grad.transpose(1, 2), inputs[i], out=self.weights[i].grad)
                torch.sum(grad, 1, keepdim=True, out=self.biases[i].grad)
                if i > 0:  # through layer i and the ReLU before it (its output is inputs[i])
                    grad = torch.ops.aten.threshold_backward(
                        torch.bmm(grad, self.weights[i]), inputs[i], 0
                    )
            return
        for e, inputs in enumerate(saved):  # head by head, each gradient into its own slice
            grad = grad_q[e].unsqueeze(-1)
            for i in range(last, -1, -1):
                torch.mm(grad.t(), inputs[i], out=self.weights[i].grad[e])
                torch.sum(grad, 0, keepdim=True, out=self.biases[i].grad[e])
                if i > 0:
                    weight = self.weights[i][e]
                    through = grad * weight if weight.shape[0] == 1 else grad @ weight
                    grad = torch.ops.aten.threshold_backward(through, inputs[i], 0)


class _HeadsByHand(torch.autograd.Function):
    """:meth:`StackedMLP.loss`'s heads: a forward that saves each layer's input, a backward by
    hand. ``anchor`` (a stacked weight) only makes the output require a gradient; the backward
    returns none for it and writes every weight's gradient itself (autograd would widen each
    head's gradient to the whole stack: a zero-filled copy per head and layer)."""

    @staticmethod
    def forward(ctx, anchor: torch.Tensor, mlp: StackedMLP, x: torch.Tensor) -> torch.Tensor:
        q, ctx.saved = mlp._forward_saving(x)
        ctx.mlp = mlp
        return q

    @staticmethod
    def backward(ctx, grad_q: torch.Tensor):
        ctx.mlp._backward_by_hand(grad_q, ctx.saved)
        ctx.saved = None
        return None, None, None


BATCHED_ELEMENTS = 1 << 19
"""Above this many activation elements per layer (2 MB) the heads run one by one on the CPU:
batching saves per-operation overhead at CPU sizes, but at OSRL's sizes (8 heads x 5,120 target
rows x 256) one batched activation falls out of cache and the per-head matmuls are faster. On a
GPU the heads always run batched (one launch per layer, no host sync)."""


def soft_update(target: FlatParameters, source: FlatParameters, tau: float) -> None:
    """OSRL's ``_soft_update`` for every tensor at once: target <- tau source + (1 - tau) target."""
    with torch.no_grad():
        target.data.mul_(1.0 - tau).add_(source.data, alpha=tau)


class FusedAdam:
    """``torch.optim.Adam`` with OSRL's settings (default betas and eps, no weight decay) over one
    :class:`FlatParameters`, as one fused kernel call: Adam is elementwise, so this equals Adam
    over the separate tensors, without a per-tensor loop or ``torch.optim``'s per-call
    bookkeeping (~0.2 ms a call at several calls a step).

    Args:
        flat: the parameters and their gradient buffer.
        lr: learning rate.
    """

    def __init__(self, flat: FlatParameters, lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:  # fmt: skip
        self.flat = flat
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avg = torch.zeros_like(flat.data)
        self.exp_avg_sq = torch.zeros_like(flat.data)
        self.step_count = torch.zeros((), dtype=torch.float32, device=flat.data.device)

    def zero_grad(self) -> None:
        self.flat.zero_grad()

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        torch._fused_adam_(
            [self.flat.data], [self.flat.grad], [self.exp_avg], [self.exp_avg_sq], [],
            [self.step_count], lr=self.lr, beta1=self.betas[0], beta2=self.betas[1],
            weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False,
        )  # fmt: skip
