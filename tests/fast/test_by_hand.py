"""The losses with hand-written backward passes give autograd's value and gradients."""

import pytest
import torch
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
