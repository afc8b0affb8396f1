"""Steps yield their losses, the loop applies them; the critic heads' backward by hand."""

import pytest
import torch
from torch import nn

from osrl_unlearn.fast import networks
from osrl_unlearn.fast.networks import StackedMLP
from osrl_unlearn.fast.updates import Update, as_floats, run_updates


def test_each_update_is_applied_before_the_step_computes_its_next_loss():
    w = nn.Parameter(torch.tensor(1.0))
    w.grad = torch.tensor(5.0)  # a stale gradient: zeroed before the first backward
    optimizer = torch.optim.SGD([w], lr=0.1)
    seen = []

    def step():
        yield Update(w**2, (optimizer,))  # d/dw = 2: w <- 1 - 0.1 * 2
        seen.append(float(w))
        yield Update(3 * w, (optimizer,))  # d/dw = 3: w <- 0.8 - 0.3
        return {"loss": "done"}

    assert run_updates(step()) == {"loss": "done"}
    assert seen == [pytest.approx(0.8)]
    assert float(w) == pytest.approx(0.5)


def heads(count: int = 3, sizes=(5, 7, 6, 1), seed: int = 0) -> list[nn.Sequential]:
    torch.manual_seed(seed)
    return [
        nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.ReLU(), nn.Linear(sizes[1], sizes[2]),
                      nn.ReLU(), nn.Linear(sizes[2], sizes[3]))
        for _ in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize("head_by_head", [False, True])
def test_the_heads_backward_by_hand_equals_autograd(head_by_head, monkeypatch):
    if head_by_head:  # the path OSRL-sized activations take on the CPU
        monkeypatch.setattr(networks, "BATCHED_ELEMENTS", 0)
    reference = heads()
    stacked = StackedMLP(heads())
    x = torch.randn(11, 5)
    targets = torch.randn(3, 11)
    scale = nn.Parameter(torch.tensor(1.5))  # another leaf in the loss: autograd's as usual

    def loss_of(q):
        return (scale * (q - targets)).pow(2).mean(1).sum()

    stacked.flat.grad.fill_(7.0)  # written, not added to
    stacked.loss(x, loss_of).backward()
    expected_scale_grad = scale.grad.clone()
    scale.grad = None
    q = torch.stack([net(x).squeeze(-1) for net in reference])
    loss_of(q).backward()
    assert torch.allclose(scale.grad, expected_scale_grad, atol=1e-5)
    for layer in range(3):
        expected_w = torch.stack([net[2 * layer].weight.grad for net in reference])
        expected_b = torch.stack([net[2 * layer].bias.grad for net in reference]).unsqueeze(1)
        assert torch.allclose(stacked.weights[layer].grad, expected_w, atol=1e-5)
        assert torch.allclose(stacked.biases[layer].grad, expected_b, atol=1e-5)


def test_as_floats_gives_every_metric_as_a_float_in_order_without_touching_the_graph():
    weight = torch.tensor([2.0], requires_grad=True)
    loss = (weight * 3.0).sum()  # 0-d, in the graph
    metrics = {"loss": loss, "one_element": weight * 0.5, "plain": torch.tensor(-1.25)}
    floats = as_floats(metrics)
    assert list(floats) == ["loss", "one_element", "plain"]
    assert floats == {"loss": 6.0, "one_element": 1.0, "plain": -1.25}
    assert all(type(value) is float for value in floats.values())
    loss.backward()  # the graph is still whole after the conversion
    assert weight.grad.tolist() == [3.0]
