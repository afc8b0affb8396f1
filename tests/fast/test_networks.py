"""The fused no-grad layer computes what ``F.linear`` (and ReLU) compute."""

import pytest
import torch
import torch.nn.functional as F

from osrl_unlearn.fast import networks
from osrl_unlearn.fast.networks import FUSED_ELEMENTS, dense


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("leading", [(), (4,)])
def test_a_large_no_grad_layer_matches_linear_and_relu(relu, leading, monkeypatch):
    if not networks._FUSED:
        pytest.skip("this torch build has no oneDNN linear_pointwise")
    fused, called = torch.ops.mkldnn._linear_pointwise, []

    def spy(*args):
        called.append(args[3])
        return fused(*args)

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", spy, raising=False)
    torch.manual_seed(0)
    rows = FUSED_ELEMENTS // 64 + 1  # above the fusion threshold at 64 outputs
    x, weight, bias = torch.randn(*leading, rows, 20), torch.randn(64, 20), torch.randn(64)
    expected = F.linear(x, weight, bias)
    expected = F.relu(expected) if relu else expected
    with torch.no_grad():
        got = dense(x, weight, bias, relu=relu)
    assert called == ["relu" if relu else "none"]  # the fused path, with the right epilogue
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    if relu:
        assert bool((got >= 0).all())


def test_with_autograd_the_layer_is_plain_linear_and_passes_gradients(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(FUSED_ELEMENTS // 8, 8, requires_grad=True)
    weight, bias = torch.randn(8, 8, requires_grad=True), torch.randn(8, requires_grad=True)
    called = []
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise",
                        lambda *a: called.append(a), raising=False)  # fmt: skip
    y = dense(x, weight, bias, relu=True)
    assert torch.equal(y, F.relu(F.linear(x, weight, bias)))
    y.sum().backward()
    assert weight.grad is not None and x.grad is not None
    assert not called  # the fused call has no backward: never used under autograd


def test_small_layers_are_not_fused(monkeypatch):
    called = []
    monkeypatch.setattr(networks, "_FUSED", True)
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise",
                        lambda *a: called.append(a), raising=False)  # fmt: skip
    with torch.no_grad():
        y = dense(torch.ones(4, 3), torch.ones(2, 3), torch.zeros(2), relu=True)
    assert torch.equal(y, torch.full((4, 2), 3.0)) and not called
