"""Every Safe-RULE loss against values worked out by hand (softplus(x) = ln(1 + e^x))."""

import pytest
import torch

from osrl_unlearn.losses import (
    actor_forget_loss,
    actor_keep_loss,
    cost_forget_loss,
    forgetting_gap,
    lagrangian_keep_loss,
    reward_forget_loss,
    reward_reference,
    trajdeleter_forget_loss,
    update_forget_weight,
    update_multiplier,
)

Q = torch.tensor([1.0, 2.0, 3.0, 4.0])
QC = torch.tensor([0.0, 1.0, 2.0, 3.0])


def test_reward_forget_loss():
    # softplus([-1, 0, 1]) = [0.31326, 0.69315, 1.31326]
    value = reward_forget_loss(torch.tensor([0.0, 1.0, 2.0]), 1.0)
    assert value.item() == pytest.approx(0.7732235, abs=1e-6)


def test_cost_forget_loss():
    # kappa + sigma - qc = [3, 1, -1] -> softplus = [3.04859, 1.31326, 0.31326]
    value = cost_forget_loss(torch.tensor([0.0, 2.0, 4.0]), kappa=2.0, sigma=1.0)
    assert value.item() == pytest.approx(1.5583702, abs=1e-6)


def test_cost_forget_loss_gradient_raises_low_cost_values():
    qc = torch.tensor([0.0, 10.0], requires_grad=True)
    cost_forget_loss(qc, kappa=2.0, sigma=1.0).backward()
    assert qc.grad[0] < qc.grad[1] < 0  # descent raises Q_c, most where it is lowest


def test_actor_keep_loss():
    # safe = [1, 1, 0, 0]: -(1 + 2) / 4 = -0.75; softplus(qc - 1.5) mean = 0.83775
    assert actor_keep_loss(Q, QC, kappa=1.5).item() == pytest.approx(0.0877451, abs=1e-6)


def test_actor_forget_loss_published_and_safe_variants():
    # unsafe = [0, 0, 1, 1]: (3 + 4) / 4 = 1.75
    published = actor_forget_loss(Q, QC, kappa=1.5, sigma=0.5)  # + mean softplus([2, 1, 0, -1])
    assert published.item() == pytest.approx(2.8616496, abs=1e-6)
    safe = actor_forget_loss(Q, QC, kappa=1.5, sigma=0.5, variant="safe")  # + 0.83775
    assert safe.item() == pytest.approx(2.5877451, abs=1e-6)
    with pytest.raises(ValueError, match="unknown actor forget variant"):
        actor_forget_loss(Q, QC, 1.5, 0.5, variant="other")


def test_indicators_carry_no_gradient():
    q = Q.clone().requires_grad_()
    qc = QC.clone().requires_grad_()
    actor_keep_loss(q, qc, kappa=1.5).backward()
    torch.testing.assert_close(q.grad, torch.tensor([-0.25, -0.25, 0.0, 0.0]))
    expected = torch.sigmoid(QC - 1.5) / 4  # d/dx softplus = sigmoid; the indicator is constant
    torch.testing.assert_close(qc.grad, expected)


def test_reward_reference_percentiles():
    backups = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0])
    assert reward_reference(backups, 50).item() == 3.0
    assert reward_reference(backups, 0).item() == 1.0
    assert reward_reference(backups, 100).item() == 5.0
    assert reward_reference(backups, 30).item() == pytest.approx(2.2)  # linear: index 1.2


def test_forgetting_gap():
    assert forgetting_gap(torch.tensor([1.0, 2.0, 3.0]), kappa=2.0, sigma=0.5) == pytest.approx(0.5)


def test_update_forget_weight_steps_and_clips():
    assert update_forget_weight(0.1, gap=2.0, rate=0.25, low=0.01, high=1.0) == pytest.approx(0.6)
    assert update_forget_weight(0.6, gap=2.0, rate=0.25, low=0.01, high=1.0) == 1.0
    assert update_forget_weight(0.1, gap=-1.0, rate=0.25, low=0.01, high=1.0) == 0.01


def test_trajdeleter_forget_loss_plain_and_cost_aware():
    adv_r = torch.tensor([1.0, -1.0, 2.0])
    adv_c = torch.tensor([0.5, 1.5, -1.0])
    # plain: mean A_r = 2 / 3
    assert trajdeleter_forget_loss(adv_r).item() == pytest.approx(2 / 3, abs=1e-6)
    # cost-aware, margin 1, weight 2: + 2 * mean softplus([0.5, -0.5, 2])
    #   = 2 * (0.974077 + 0.474077 + 2.126928) / 3 = 2.383388
    value = trajdeleter_forget_loss(adv_r, adv_c, cost_weight=2.0, cost_margin=1.0)
    assert value.item() == pytest.approx(3.0500547, abs=1e-6)


def test_trajdeleter_cost_term_pushes_cost_advantage_up():
    adv_c = torch.tensor([0.0, 3.0], requires_grad=True)
    trajdeleter_forget_loss(torch.zeros(2), adv_c, cost_margin=1.0).backward()
    assert adv_c.grad[0] < adv_c.grad[1] < 0  # descent raises A_c, most where it is lowest


def test_lagrangian_keep_loss_and_multiplier_update():
    # -mean(Q) = -2.5; mean(QC - 1) = 0.5, times lambda 2 -> -1.5
    assert lagrangian_keep_loss(Q, QC, kappa=1.0, multiplier=2.0).item() == pytest.approx(-1.5)
    assert update_multiplier(0.5, mean_qc=2.0, kappa=1.5, rate=0.1) == pytest.approx(0.55)
    assert update_multiplier(0.01, mean_qc=0.0, kappa=1.5, rate=0.1) == 0.0  # never negative
