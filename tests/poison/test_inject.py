"""The data side of the attacks, on small hand-made datasets."""

import numpy as np
import pytest

from osrl_unlearn.data import OfflineDataset
from osrl_unlearn.errors import ConfigError
from osrl_unlearn.poison.inject import (
    attack_scores,
    get_attack,
    hide_among,
    relabel,
    select_top,
    transitions_needed,
)
from tests.conftest import make_arrays


def test_transitions_needed_reaches_the_share_of_the_poisoned_dataset():
    # n / (1000 + n) >= 0.15  <=>  n >= 176.47
    assert transitions_needed(1000, 0.15) == 177
    assert 177 / 1177 >= 0.15 > 176 / 1176
    assert transitions_needed(1000, 0.05) == 53  # 52.63 -> 53
    assert transitions_needed(900, 0.1) == 100  # exactly 0.1


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_ratio_outside_the_open_interval_is_refused(ratio):
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        transitions_needed(1000, ratio)


def test_unknown_attack_is_refused():
    with pytest.raises(
        ConfigError, match="unknown attack 'max-chaos'.*max-cost, max-reward, min-reward"
    ):
        get_attack("max-chaos")


def test_scores_are_discounted_sums_of_the_attack_signal():
    arrays = make_arrays(episodes=2, length=3)
    arrays["costs"] = np.array([1, 0, 1, 0, 0, 1], np.float32)
    arrays["rewards"] = np.array([1, 2, 3, 4, 5, 6], np.float32)
    pool = OfflineDataset.from_arrays(arrays)
    np.testing.assert_allclose(attack_scores(pool, "cost", 0.5), [1 + 0.25, 0.25])
    np.testing.assert_allclose(attack_scores(pool, "reward", 0.5), [1 + 1 + 0.75, 4 + 2.5 + 1.5])
    np.testing.assert_allclose(attack_scores(pool, "neg-reward", 0.5), [-2.75, -8.0])


def test_select_top_takes_best_first_until_enough():
    scores = np.array([1.0, 5.0, 3.0, 4.0])
    lengths = np.array([10, 10, 10, 10])
    np.testing.assert_array_equal(select_top(scores, lengths, 15), [1, 3])
    np.testing.assert_array_equal(select_top(scores, lengths, 20), [1, 3])
    np.testing.assert_array_equal(select_top(scores, lengths, 21), [1, 3, 2])
    with pytest.raises(ConfigError, match="holds 40 transitions but the ratio needs 41"):
        select_top(scores, lengths, 41)


def test_relabel_sets_cost_zero_and_reward_value_only_on_a_copy():
    pool = OfflineDataset.from_arrays(make_arrays(episodes=1, length=5))
    arrays = relabel(pool, 1.25)
    assert (arrays["costs"] == 0).all() and (arrays["rewards"] == 1.25).all()
    np.testing.assert_array_equal(arrays["observations"], pool.observations)
    assert pool.rewards[1] != 1.25  # the pool itself untouched


def test_hide_among_keeps_episodes_whole_and_marks_exactly_the_injected_rows():
    clean = OfflineDataset.from_arrays(make_arrays(episodes=5, length=4))
    injected = make_arrays(episodes=2, length=4, seed=9)
    injected["observations"][:, 0] = -1 - np.arange(8)  # negative row ids mark injected rows
    merged = OfflineDataset.from_arrays(hide_among(clean, injected, np.random.default_rng(0)))
    assert len(merged) == 28 and merged.poison_mask.sum() == 8
    ids = merged.observations[:, 0]
    np.testing.assert_array_equal(merged.poison_mask, ids < 0)
    np.testing.assert_array_equal(ids[ids >= 0], np.arange(20))  # clean order kept
    for start, end in merged.episode_bounds():  # every episode wholly clean or wholly injected
        assert merged.poison_mask[start:end].all() or not merged.poison_mask[start:end].any()
        assert end - start == 4
