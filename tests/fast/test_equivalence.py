"""Our training step computes what OSRL's ``train_one_step`` computes, for every agent.

From the same weights, the same batches and the same seed of torch's global generator, OSRL's own
trainer and ours run side by side; every logged loss must match step by step and every parameter
(networks, targets, duals) after the run, within float32 tolerance.
"""

import copy

import numpy as np
import pytest
import torch

from osrl_unlearn.agents.checkpoint import build_agent
from osrl_unlearn.data import BatchSampler, OfflineDataset, dataset_stats, layout_for
from osrl_unlearn.fast import FastTrainer, learning_rates
from osrl_unlearn.training import osrl_trainer
from tests.agents.conftest import TINY_CONFIG, poisoned_arrays

AGENTS = ["bcql", "bearl", "cpq", "coptidice"]
STEPS = 25


class Recorder:
    """The logger OSRL's trainer writes to: one dict of floats per step."""

    def __init__(self):
        self.steps = []

    def store(self, **metrics):
        if not self.steps or set(metrics) & set(self.steps[-1]):
            self.steps.append({})
        self.steps[-1].update({k: float(v) for k, v in metrics.items()})


def twin_agents(name, **config):
    data = OfflineDataset.from_arrays(poisoned_arrays())
    torch.manual_seed(0)
    osrl_model = build_agent(name, {**TINY_CONFIG, **config})
    if name == "coptidice":  # as training does: the dataset statistics
        stats = dataset_stats(data)
        osrl_model.init_state_propotion = stats.init_state_proportion
        osrl_model.observations_std = torch.from_numpy(stats.observations_std)
        osrl_model.actions_std = torch.from_numpy(stats.actions_std)
    batches = list(BatchSampler(data, 32, layout=layout_for(name), seed=3).batches(STEPS))
    return osrl_model, copy.deepcopy(osrl_model), batches


def extra_state(model):
    """What OSRL keeps outside the state dict and updates in a step (duals, counters)."""
    names = ("log_alpha", "lmbda", "tau", "n_train_steps")
    return {
        n: getattr(model, n)
        for n in names
        if isinstance(getattr(model, n, None), torch.Tensor | int)
    }


@pytest.mark.parametrize("name", AGENTS)
@pytest.mark.parametrize(
    ("learning_rate", "head_by_head"), [(None, False), (1e-3, False), (1e-3, True)]
)
def test_fast_step_matches_osrl_train_one_step(name, learning_rate, head_by_head, monkeypatch):
    if head_by_head:  # the path OSRL-sized activations take (heads one by one, in cache, their
        # gradients by hand; no-grad layers as fused oneDNN calls; the target pass in blocks of
        # states, here 3 states of 10 samples, so the last block is short)
        monkeypatch.setattr("osrl_unlearn.fast.networks.BATCHED_ELEMENTS", 0)
        monkeypatch.setattr("osrl_unlearn.fast.networks.FUSED_ELEMENTS", 0)
        monkeypatch.setattr("osrl_unlearn.fast.bcql.TARGET_PASS_ROWS", 30)
    # BEAR-Lag: start its Q-term within the run, so both phases of its actor loss are compared
    osrl_model, fast_model, batches = twin_agents(name, start_update_policy_step=10)
    recorder = Recorder()
    osrl = osrl_trainer(name, osrl_model, recorder, learning_rate)
    fast = FastTrainer(name, fast_model, **learning_rates(name, learning_rate))
    torch.manual_seed(7)
    for batch in batches:
        osrl.train_one_step(batch) if name == "coptidice" else osrl.train_one_step(*batch)
    torch.manual_seed(7)
    ours = [{k: v.item() for k, v in fast.train_one_step(*batch).items()} for batch in batches]

    assert len(recorder.steps) == STEPS
    for step, (theirs, mine) in enumerate(zip(recorder.steps, ours, strict=True)):
        assert set(theirs) == set(mine), step
        for key, value in theirs.items():
            assert mine[key] == pytest.approx(value, rel=1e-4, abs=1e-5), (step, key)
    expected, got = osrl_model.state_dict(), fast_model.state_dict()
    assert list(expected) == list(got)
    initial = build_agent(name, TINY_CONFIG).state_dict()
    changed = 0
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-4, atol=1e-5, msg=key)
        changed += not torch.equal(value, initial[key])
    assert changed > len(expected) // 2  # the run trained (and the comparison is not vacuous)
    for key, value in extra_state(osrl_model).items():
        mine = extra_state(fast_model)[key]
        if isinstance(value, int):
            assert mine == value
        else:
            torch.testing.assert_close(mine, value, rtol=1e-4, atol=1e-6, msg=key)


@pytest.mark.parametrize("name", AGENTS)
def test_fast_training_keeps_the_osrl_state_dict_current(name, tmp_path):
    """The agent's own parameters are what the fast step trains: a checkpoint written from
    ``state_dict`` mid-run reloads into a fresh OSRL agent with identical actions."""
    _, model, batches = twin_agents(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = FastTrainer(name, model)
    for batch in batches[:5]:
        trainer.train_one_step(*batch)
    state = model.state_dict()
    assert any(not torch.equal(before[k], state[k]) for k in ("actor.mu_layer.weight",
               "actor.pi.0.weight") if k in state)  # fmt: skip
    torch.save({"model_state": state}, tmp_path / "model.pt")
    reloaded = build_agent(name, TINY_CONFIG)
    reloaded.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True)["model_state"])
    obs = np.random.default_rng(0).normal(size=8).astype(np.float32)
    args = () if name == "bcql" else (True, True)  # BCQ-Lag's act samples the VAE: seed it
    torch.manual_seed(1)
    expected = model.act(obs, *args)[0]
    torch.manual_seed(1)
    got = reloaded.act(obs, *args)[0]
    np.testing.assert_array_equal(got, expected)


def test_fast_trainer_rejects_a_learning_rate_the_agent_does_not_have():
    _, model, _ = twin_agents("bcql")
    with pytest.raises(TypeError, match="scalar_lr"):
        FastTrainer("bcql", model, scalar_lr=1e-3)
