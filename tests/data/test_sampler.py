import numpy as np
import pytest
import torch
from osrl.common.dataset import TransitionDataset

from osrl_unlearn.data import BatchSampler, DatasetError, OfflineDataset, dataset_stats, layout_for


@pytest.fixture
def data(arrays):
    arrays["terminals"][100] = True  # an early termination besides the time-outs
    return OfflineDataset.from_arrays(arrays)


def osrl_arrays(data):
    """What OSRL's own TransitionDataset derives (on a copy: it mutates its input)."""
    return TransitionDataset(dict(data.arrays()), state_init=True).dataset


@pytest.mark.parametrize("agent,width", [("bcql", 6), ("bearl", 6), ("cpq", 6), ("coptidice", 7)])
def test_layouts_match_osrl_trainers(data, agent, width):
    batch = BatchSampler(data, 32, layout=layout_for(agent)).sample()
    assert len(batch) == width
    obs, next_obs, act, rew, cost, done = batch[:6]
    assert obs.shape == next_obs.shape == (32, 8) and act.shape == (32, 2)
    assert rew.shape == cost.shape == done.shape == (32,)
    assert all(t.dtype == torch.float32 for t in batch)


def test_rows_stay_aligned_and_scales_apply(data):
    sampler = BatchSampler(data, 256, layout="coptidice", reward_scale=0.1, cost_scale=2.0)
    obs, next_obs, act, rew, cost, done, is_init = sampler.sample()
    rows = obs[:, 0].long().numpy()  # column 0 holds the row index
    reference = osrl_arrays(data)
    np.testing.assert_allclose(next_obs.numpy(), data.next_observations[rows])
    np.testing.assert_allclose(act.numpy(), data.actions[rows])
    np.testing.assert_allclose(rew.numpy(), data.rewards[rows] * 0.1, rtol=1e-6)
    np.testing.assert_allclose(cost.numpy(), data.costs[rows] * 2.0)
    np.testing.assert_array_equal(done.numpy(), reference["done"][rows])
    np.testing.assert_array_equal(is_init.numpy(), reference["is_init"][rows])


def test_done_and_is_init_match_osrl_everywhere(data):
    sampler = BatchSampler(data, 1, layout="coptidice")
    reference = osrl_arrays(data)
    np.testing.assert_array_equal(sampler._fields[5].numpy(), reference["done"])
    np.testing.assert_array_equal(sampler._fields[6].numpy(), reference["is_init"])
    assert reference["is_init"][101] == 1 and reference["is_init"][250] == 1


def test_dataset_stats_match_osrl(data):
    init, obs_std, act_std = TransitionDataset(
        dict(data.arrays()), state_init=True
    ).get_dataset_states()
    stats = dataset_stats(data)
    assert stats.init_state_proportion == pytest.approx(init)
    np.testing.assert_allclose(stats.observations_std, obs_std, rtol=1e-5)
    np.testing.assert_allclose(stats.actions_std, act_std, rtol=1e-5)


def test_batches_draws_exactly_count(data):
    sampler = BatchSampler(data, 8)
    assert sum(1 for _ in sampler.batches(7)) == 7
    assert sampler.batches_drawn == 7
    assert list(sampler.batches(0)) == []


def test_same_seed_same_batches_other_seed_other_batches(data):
    first = [b[0] for b in BatchSampler(data, 16, seed=5).batches(3)]
    again = [b[0] for b in BatchSampler(data, 16, seed=5).batches(3)]
    other = [b[0] for b in BatchSampler(data, 16, seed=6).batches(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=False))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=False))


def test_sampling_covers_the_dataset_uniformly(data):
    rows = torch.cat([b[0][:, 0] for b in BatchSampler(data, 1000, seed=0).batches(50)]).long()
    counts = np.bincount(rows.numpy(), minlength=1000)
    assert counts.min() > 20 and counts.max() < 90  # mean 50 per row


def test_bad_arguments(data):
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(data, 0)
    with pytest.raises(ValueError, match="unknown agent 'cdt'"):
        layout_for("cdt")
    with pytest.raises(ValueError, match="layout"):
        BatchSampler(data, 4, layout="sequence")
    empty = OfflineDataset(**{k: v[:0] for k, v in data.arrays().items()})
    with pytest.raises(DatasetError, match="empty"):
        BatchSampler(empty, 4)
