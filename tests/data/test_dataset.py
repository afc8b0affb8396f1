import numpy as np
import pytest

from osrl_unlearn.data import DatasetError, OfflineDataset
from osrl_unlearn.tasks import get_task
from tests.conftest import CAR_CIRCLE, make_arrays


def test_from_arrays_converts_dtypes_and_squeezes_columns(arrays):
    arrays["rewards"] = arrays["rewards"].astype(np.float64)[:, None]
    arrays["timeouts"] = arrays["timeouts"].astype(np.float32)
    data = OfflineDataset.from_arrays(arrays)
    assert data.rewards.shape == (1000,) and data.rewards.dtype == np.float32
    assert data.timeouts.dtype == bool and data.timeouts.sum() == 4
    assert data.observations.dtype == np.float32


@pytest.mark.parametrize("key", ["costs", "timeouts", "next_observations"])
def test_missing_key_is_named(arrays, key):
    del arrays[key]
    with pytest.raises(DatasetError, match=f"missing DSRL key.*{key}.*make-dataset"):
        OfflineDataset.from_arrays(arrays, source="f.hdf5")


def test_empty_dataset_is_rejected():
    with pytest.raises(DatasetError, match="empty"):
        OfflineDataset.from_arrays({k: v[:0] for k, v in make_arrays().items()})


def test_ragged_lengths_are_rejected(arrays):
    arrays["costs"] = arrays["costs"][:-1]
    with pytest.raises(DatasetError, match="costs has 999 rows but observations has 1000"):
        OfflineDataset.from_arrays(arrays)


def test_nan_reward_names_key_and_row(arrays):
    arrays["rewards"][17] = np.nan
    arrays["rewards"][40] = np.inf
    with pytest.raises(DatasetError, match="rewards has 2 row.*first at row 17"):
        OfflineDataset.from_arrays(arrays)


def test_nan_observation_is_rejected(arrays):
    arrays["next_observations"][3, 5] = np.nan
    with pytest.raises(DatasetError, match="next_observations.*row 3"):
        OfflineDataset.from_arrays(arrays)


def test_shapes_are_checked_against_the_task(arrays):
    task = get_task(CAR_CIRCLE)
    OfflineDataset.from_arrays(arrays, task=task)
    wide = make_arrays(obs_dim=60)
    with pytest.raises(
        DatasetError, match="observations have 60 features but OfflineCarCircle-v0 has 8"
    ):
        OfflineDataset.from_arrays(wide, task=task)
    arrays["actions"] = np.zeros((1000, 3), np.float32)
    with pytest.raises(DatasetError, match="actions have 3 features"):
        OfflineDataset.from_arrays(arrays, task=task)


def test_matrix_keys_need_two_dimensions(arrays):
    arrays["actions"] = arrays["actions"][:, 0]
    with pytest.raises(DatasetError, match=r"actions has shape \(1000,\); expected \(N, dim\)"):
        OfflineDataset.from_arrays(arrays)


def test_bad_poison_mask_is_rejected(arrays):
    arrays["poison_mask"] = np.zeros(999, dtype=bool)
    with pytest.raises(DatasetError, match="poison_mask has shape"):
        OfflineDataset.from_arrays(arrays)
    arrays["poison_mask"] = np.full(1000, 2)
    with pytest.raises(DatasetError, match="only 0/1"):
        OfflineDataset.from_arrays(arrays)


def test_episode_bounds_and_returns_by_hand():
    arrays = make_arrays(episodes=1, length=6)
    arrays["timeouts"][:] = False
    arrays["terminals"][1] = True  # episodes: rows 0-1, 2-4, 5 (unfinished tail)
    arrays["timeouts"][4] = True
    arrays["rewards"] = np.array([1, 2, 3, 4, 5, 6], np.float32)
    arrays["costs"] = np.array([0, 1, 1, 0, 1, 0], np.float32)
    data = OfflineDataset.from_arrays(arrays)
    np.testing.assert_array_equal(data.episode_bounds(), [[0, 2], [2, 5], [5, 6]])
    rewards, costs = data.episode_returns()
    np.testing.assert_array_equal(rewards, [3, 12, 6])
    np.testing.assert_array_equal(costs, [1, 2, 0])


def test_split_is_exact(arrays):
    mask = np.zeros(1000, dtype=bool)
    mask[250:500] = True  # the second episode was injected
    mask[999] = True
    arrays["poison_mask"] = mask
    data = OfflineDataset.from_arrays(arrays)
    keep, forget = data.split()
    assert len(keep) + len(forget) == 1000
    np.testing.assert_array_equal(forget.observations[:, 0], np.flatnonzero(mask))
    np.testing.assert_array_equal(keep.observations[:, 0], np.flatnonzero(~mask))
    np.testing.assert_array_equal(forget.rewards, data.rewards[mask])
    assert keep.poison_mask.sum() == 0 and forget.poison_mask.all()


def test_split_needs_a_mask_with_both_sides(arrays):
    with pytest.raises(DatasetError, match="no poison_mask"):
        OfflineDataset.from_arrays(arrays).split()
    arrays["poison_mask"] = np.zeros(1000, dtype=bool)
    with pytest.raises(DatasetError, match="forget set is empty"):
        OfflineDataset.from_arrays(arrays).split()
    arrays["poison_mask"] = np.ones(1000, dtype=bool)
    with pytest.raises(DatasetError, match="keep set is empty"):
        OfflineDataset.from_arrays(arrays).split()


def test_task_attribute_is_required_where_the_task_matters(arrays):
    assert OfflineDataset.from_arrays(arrays, attrs={"task": CAR_CIRCLE}).task == CAR_CIRCLE
    with pytest.raises(DatasetError, match="no 'task' attribute.*pass it with --task"):
        _ = OfflineDataset.from_arrays(arrays, source="user.hdf5").task
