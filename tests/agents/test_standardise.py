"""Observation standardisation folded into the agents' first layers: exact, invertible, and
placed where every network reads the observation."""

import copy

import numpy as np
import pytest
import torch

from osrl_unlearn.evaluation import batched_policy
from osrl_unlearn.standardise import Standardisation, fold, observation_layers, unfold
from tests.agents.conftest import make_agent

SCALES = np.array([6.0, 0.1, 1.0, 2.0, 0.02, 1.0, 3.0, 0.5], np.float32)


def _observations(seed: int, rows: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(rows, 8)) * SCALES + 9.8 * (np.arange(8) == 2)).astype(np.float32)


def _outputs(model, obs: torch.Tensor, actions: torch.Tensor) -> list[torch.Tensor]:
    """What each network of the agent computes from these observations (fixed draws)."""
    torch.manual_seed(3)
    outputs = [batched_policy(model)(obs)]
    for name in ("critic", "cost_critic", "critic_old", "cost_critic_old"):
        if hasattr(model, name):
            outputs.extend(getattr(model, name).predict(obs, actions)[-2:])
    if hasattr(model, "vae"):
        outputs.append(model.vae(obs, actions)[0])
    for name in ("nu_network", "chi_network"):
        if hasattr(model, name):
            outputs.append(getattr(model, name)(obs)[0])
    return outputs


def test_standardisation_of_data_and_constant_features():
    obs = _observations(0, rows=1000)
    obs[:, 5] = 0.0
    st = Standardisation.of(obs)
    scaled = st.apply(obs)
    np.testing.assert_allclose(scaled.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(scaled[:, [0, 1, 2, 3, 4, 6, 7]].std(0), 1.0, rtol=1e-4)
    assert st.std[5] == 1.0 and st.mean[5] == 0.0  # constant: left as it is, not divided by 0


def test_fold_makes_the_agent_act_on_raw_observations(agent_name):
    """The agent trained on (x - mean) / std gives, once folded, the same outputs on raw x."""
    model = make_agent(agent_name).eval()
    raw = _observations(1)
    st = Standardisation.of(_observations(2, rows=500))
    actions = torch.rand(len(raw), 2) * 1.8 - 0.9
    before = _outputs(model, torch.as_tensor(st.apply(raw)), actions)
    folded = fold(copy.deepcopy(model), st)
    after = _outputs(folded, torch.as_tensor(raw), actions)
    assert len(before) >= 3
    for b, a in zip(before, after, strict=False):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # and it did change the weights: the raw observations are 100x apart in scale
    assert not torch.allclose(_outputs(model, torch.as_tensor(raw), actions)[0], after[0])


def test_unfold_inverts_fold(agent_name):
    model = make_agent(agent_name)
    st = Standardisation.of(_observations(4, rows=500))
    back = unfold(fold(copy.deepcopy(model), st), st)
    for (name, p), q in zip(model.state_dict().items(), back.state_dict().values(), strict=False):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=name)


def test_every_network_that_reads_the_observation_is_folded(agent_name):
    """Exactly the layers that do not read a hidden layer (all 32 wide here) are folded: one
    per actor, ensemble member, target copy and VAE half."""
    model = make_agent(agent_name)
    names = set(observation_layers(model, 8))
    reading_input = {name for name, m in model.named_modules()
                     if isinstance(m, torch.nn.Linear) and m.in_features != 32}  # fmt: skip
    assert names == reading_input
    assert {n.split(".")[0] for n in names} >= {"actor"}
    assert len(names) >= 3


def test_an_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="cannot find the layers"):
        observation_layers(torch.nn.Sequential(torch.nn.Linear(8, 4)), 8)


@pytest.mark.parametrize("method", ["relabel", "finetune"])
def test_a_standardised_agent_is_repaired_in_its_own_coordinates(agent_name, method):
    """An agent whose config records a standardisation is unlearnt exactly as the unfolded
    agent on standardised data would be, then folded back to act on raw observations."""
    from osrl_unlearn.data import OfflineDataset
    from tests.agents.conftest import poisoned_arrays

    arrays = poisoned_arrays()
    arrays["observations"] = arrays["observations"] * SCALES + 3.0
    arrays["next_observations"] = arrays["next_observations"] * SCALES + 3.0
    data = OfflineDataset.from_arrays(arrays)
    st = Standardisation.of(data.observations)
    ours = make_agent(agent_name)
    ours.osrl_config = {**ours.osrl_config, **st.config_entries()}
    by_hand = unfold(copy.deepcopy(make_agent(agent_name)), st)
    torch.manual_seed(5)
    ours.unlearn(data, method=method, steps=4, show_progress=False, batch_size=32)
    torch.manual_seed(5)
    by_hand.unlearn(st.applied_to(data), method=method, steps=4, show_progress=False,
                    batch_size=32)  # fmt: skip
    fold(by_hand, st)
    moved = False
    for (name, p), q in zip(ours.state_dict().items(), by_hand.state_dict().values(),
                            strict=True):  # fmt: skip
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
        moved |= not torch.equal(p, make_agent(agent_name).state_dict()[name])
    assert moved


def test_a_standardisation_that_does_not_fit_the_agent_is_refused():
    from osrl_unlearn.data import OfflineDataset
    from osrl_unlearn.errors import UserError
    from osrl_unlearn.standardise import standardised_coordinates
    from tests.agents.conftest import poisoned_arrays

    agent = make_agent("bcql")
    before = copy.deepcopy(agent.state_dict())
    for bad in (Standardisation(np.zeros(7, np.float32), np.ones(7, np.float32)),
                Standardisation(np.zeros(8, np.float32), np.zeros(8, np.float32))):  # fmt: skip
        with pytest.raises(UserError, match="do not fit the 8-feature agent"):
            with standardised_coordinates(agent, bad):
                pass
        agent.osrl_config = {**agent.osrl_config, **bad.config_entries()}
        with pytest.raises(UserError, match="observation_mean / observation_std"):
            agent.unlearn(OfflineDataset.from_arrays(poisoned_arrays()), steps=2,
                          show_progress=False)  # fmt: skip
    for key, value in agent.state_dict().items():
        torch.testing.assert_close(value, before[key])  # nothing was changed
