"""The losses with hand-written backward passes give autograd's value and gradients."""

import math

import pytest
import torch
import torch.nn.functional as F
from osrl.common.net import VAE, SquashedGaussianMLPActor
from torch import nn
from torch.distributions import Normal

from osrl_unlearn.fast import by_hand
from osrl_unlearn.fast.networks import flatten_modules
from osrl_unlearn.losses import vae_loss


def osrl_vae_loss(vae, obs, actions, beta, seed):
    """OSRL's own ``VAE.forward`` (its latent noise drawn from ``seed``), then ``vae_loss``."""
    torch.manual_seed(seed)
    recon, mean, std = vae(obs, actions)
    return vae_loss(recon, actions, mean, std, beta)


def make_vae(seed, clamped):
    torch.manual_seed(seed)
    vae = VAE(obs_dim=5, act_dim=2, hidden_size=16, latent_dim=3, act_lim=0.8)
    if clamped:  # some log-stds beyond the clamp at both ends: no gradient through them
        with torch.no_grad():
            vae.log_std.bias[0] = 40.0
            vae.log_std.bias[1] = -40.0
    return vae


@pytest.mark.parametrize("clamped", [False, True])
@pytest.mark.parametrize("flat", [False, True])
def test_the_vae_loss_and_every_gradient_match_autograd(clamped, flat):
    reference, ours = make_vae(0, clamped), make_vae(0, clamped)
    if flat:  # as the fast step holds them: views of one flat buffer with their gradients
        buffer = flatten_modules([ours])
        buffer.grad.fill_(123.0)  # stale values are overwritten, not added to
    obs, actions = torch.randn(32, 5), torch.rand(32, 2) * 1.6 - 0.8
    torch.manual_seed(7)
    noise = torch.randn(32, 3)  # the draw OSRL's forward makes under the same seed

    expected = osrl_vae_loss(reference, obs, actions, beta=0.5, seed=7)
    expected.backward()
    got = by_hand.vae_loss(ours, obs, actions, noise, beta=0.5)
    got.backward()

    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    for (name, p), q in zip(reference.named_parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6, msg=name)
    if clamped:  # the clamped units got no gradient from the KL or the reconstruction
        assert ours.log_std.bias.grad[:2].abs().max() == 0
        assert ours.log_std.bias.grad[2].abs() > 0


@pytest.mark.parametrize("clamped", [False, True])
@pytest.mark.parametrize("flat", [False, True])
def test_the_weighted_bc_loss_and_every_gradient_match_autograd(clamped, flat):
    def make_actor():
        torch.manual_seed(1)
        actor = SquashedGaussianMLPActor(6, 2, [16, 16], nn.ReLU)
        if clamped:  # one log-std above the clamp: no gradient through it
            with torch.no_grad():
                actor.log_std_layer.bias[0] = 50.0
        return actor

    reference, ours = make_actor(), make_actor()
    if flat:
        flatten_modules([ours]).grad.fill_(123.0)
    obs, actions, weights = torch.randn(32, 6), torch.randn(32, 2), torch.rand(32) * 3
    # OSRL's COptiDICE.actor_loss: the actor's (mu, std), Normal(mu, std).log_prob summed
    h = reference.net(obs)
    std = torch.exp(reference.log_std_layer(h).clamp(-20, 2))
    log_prob = Normal(reference.mu_layer(h), std).log_prob(actions).sum(-1)
    expected = -(weights * log_prob).mean()
    expected.backward()
    got = by_hand.weighted_bc_loss(ours, obs, actions, weights)
    got.backward()

    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    for (name, p), q in zip(reference.named_parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6, msg=name)
    if clamped:
        assert ours.log_std_layer.bias.grad[0] == 0 and ours.log_std_layer.bias.grad[1] != 0


def coptidice(f_type, cost_ub_epsilon):
    from osrl_unlearn.stack import import_osrl_algorithms

    torch.manual_seed(0)
    model = import_osrl_algorithms().COptiDICE(
        state_dim=3, action_dim=2, max_action=1.0, f_type=f_type, init_state_propotion=0.1,
        observations_std=torch.ones(3).numpy(), actions_std=torch.ones(2).numpy(),
        a_hidden_sizes=[8], c_hidden_sizes=[8], gamma=0.99, alpha=0.5,
        cost_ub_epsilon=cost_ub_epsilon, num_nu=2, num_chi=2, cost_limit=10, episode_len=300,
    )  # fmt: skip
    with torch.no_grad():
        model.lmbda.fill_(0.3)
        model.tau.fill_(-0.2)
    return model


def osrl_dual_losses(model, values, rewards, costs, done, is_init):
    """OSRL's ``COptiDICE.update`` up to its four losses, from the heads' values (2 nu heads,
    then 2 chi heads, on current then next states); their sum."""
    size = rewards.shape[0]
    model._lmbda, model._tau = F.softplus(model.lmbda), F.softplus(model.tau)
    nu, chi = values[:2].amin(0), values[2:].amin(0)
    e = rewards - model._lmbda.detach() * costs
    e = e + model.gamma * (1.0 - done) * nu[size:] - nu[:size]
    w = F.relu(model.f_prime_inv_fn(e / model.alpha))
    nu_init = nu[:size] * is_init / model.init_state_propotion
    if model.cost_ub_epsilon == 0:
        weighted_c, chi_loss, tau_loss = (w.detach() * costs).mean(), 0, torch.zeros(1)
    else:
        chi_init = chi[:size] * is_init / model.init_state_propotion
        ell = (1 - model.gamma) * chi_init + w.detach() * (
            costs + model.gamma * (1 - done) * chi[size:] - chi[:size]
        )
        logits = ell / model._tau.detach()
        weights = torch.softmax(logits, dim=0) * size
        log_weights = torch.log_softmax(logits, dim=0) + math.log(size)
        d_kl = (weights * log_weights - weights + 1).mean()
        weighted_c = (weights * w.detach() * costs).mean()
        chi_loss = (weights * ell).mean()
        tau_loss = model._tau * (model.cost_ub_epsilon - d_kl.detach())
    nu_loss = (1 - model.gamma) * nu_init.mean() + (w * e - model.alpha * model.f_fn(w)).mean()
    lmbda_loss = model._lmbda * (model.qc_thres - weighted_c.detach())
    return chi_loss + nu_loss + tau_loss.sum() + lmbda_loss.sum()


@pytest.mark.parametrize("f_type", ["chi2", "softchi", "kl"])
@pytest.mark.parametrize("cost_ub_epsilon", [0.0, 0.01])
def test_the_coptidice_dual_loss_and_its_gradients_match_autograd(f_type, cost_ub_epsilon):
    torch.manual_seed(3)
    size = 64
    values = torch.randn(4, 2 * size) * 2
    values[1, :8] = values[0, :8]  # tied nu heads: the gradient is shared, as amin's
    values[3, 5:9] = values[2, 5:9]
    rewards, costs = torch.randn(size), (torch.rand(size) < 0.3).float() * 2
    done, is_init = (torch.rand(size) < 0.1).float(), (torch.rand(size) < 0.1).float()
    batch = (rewards, costs, done, is_init)

    reference, ours = coptidice(f_type, cost_ub_epsilon), coptidice(f_type, cost_ub_epsilon)
    theirs = values.clone().requires_grad_()
    expected = osrl_dual_losses(reference, theirs, *batch)
    expected.sum().backward()
    mine = values.clone().requires_grad_()
    ours._lmbda, ours._tau = F.softplus(ours.lmbda), F.softplus(ours.tau)
    metrics = {}
    got = by_hand.coptidice_dual_loss(mine, ours, 2, *batch, metrics)
    got.backward()

    torch.testing.assert_close(got, expected.reshape(()), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(ours.lmbda.grad, reference.lmbda.grad, rtol=1e-5, atol=1e-7)
    if cost_ub_epsilon:
        torch.testing.assert_close(ours.tau.grad, reference.tau.grad, rtol=1e-5, atol=1e-7)
        assert mine.grad[2:].abs().sum() > 0
    else:  # no chi term: the chi heads and tau get nothing
        assert ours.tau.grad is None and mine.grad[2:].abs().sum() == 0
    assert mine.grad[:2, :8].eq(mine.grad[:2, :8].flip(0)).all()  # ties split evenly
    if f_type == "chi2":  # some w = relu(e / alpha + 1) cut at zero, so the mask is exercised
        e = rewards - F.softplus(ours.lmbda).detach() * costs
        e = e + ours.gamma * (1 - done) * values[:2, size:].amin(0) - values[:2, :size].amin(0)
        assert (e / ours.alpha + 1 < 0).any()
    assert set(metrics) == {"loss/Df", "loss/chi_loss", "loss/tau_loss", "loss/D_kl",
                            "loss/td_error", "loss/nu_loss", "loss/lmbda_loss"}  # fmt: skip


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian"])
def test_the_mmd_and_its_gradient_match_osrl_bearl_under_autograd(kernel):
    from osrl_unlearn.stack import import_osrl_algorithms

    bearl = import_osrl_algorithms().BEARL
    torch.manual_seed(4)
    data, actor = torch.randn(8, 5, 2), torch.randn(8, 5, 2)
    actor[:, 1] = actor[:, 0]  # equal samples: abs's gradient at 0 is 0, as autograd's
    actor[:, 2, 0] = data[:, 3, 0]
    theirs, mine = actor.clone().requires_grad_(), actor.clone().requires_grad_()
    osrl_mmd = bearl.mmd_loss_laplacian if kernel == "laplacian" else bearl.mmd_loss_gaussian
    expected = osrl_mmd(None, data, theirs, sigma=0.7)
    weights = torch.rand(8)  # a loss that weighs each state's MMD differently
    (expected * weights).sum().backward()
    got = by_hand.mmd_loss(data, mine, 0.7, kernel)
    (got * weights).sum().backward()

    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-5, atol=1e-6)
