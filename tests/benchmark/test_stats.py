"""Two-level bootstrap: checked against distributions worked out by hand."""

import numpy as np
import pytest

from osrl_unlearn.benchmark.stats import (
    bootstrap_mean,
    bootstrap_replicates,
    paired_difference,
    two_level_mean,
)


def test_constant_data_gives_a_zero_width_interval():
    estimate = bootstrap_mean([[0.5] * 7, [0.5] * 3, [0.5] * 20])
    assert (estimate.mean, estimate.low, estimate.high) == (0.5, 0.5, 0.5)
    assert (estimate.seeds, estimate.episodes) == (3, 30)


def test_each_seed_weighs_the_same_whatever_its_episodes():
    # seed means 1 and 4: (1 + 4) / 2, not the pooled (1 + 1 + 1 + 4) / 4
    assert two_level_mean([[0.0, 1.0, 2.0], [4.0]]) == 2.5


def test_one_seed_of_two_episodes():
    # resampling [0, 1]: mean 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    replicates = bootstrap_replicates([[0.0, 1.0]], resamples=40_000)
    for value, p in [(0.0, 0.25), (0.5, 0.5), (1.0, 0.25)]:
        assert np.mean(replicates == value) == pytest.approx(p, abs=0.01)
    estimate = bootstrap_mean([[0.0, 1.0]])
    assert (estimate.mean, estimate.low, estimate.high) == (0.5, 0.0, 1.0)


def test_seeds_are_resampled_before_episodes():
    # seeds A = [0, 2], B = [4, 4]. A's episode resample has mean 0, 1, 2 w.p. 1/4, 1/2, 1/4
    # (variance 1/2); B's is always 4. Each of the two slots draws A or B (1/2 each), so it has
    # mean 2.5 and E[X^2] = 1/2 (1/2 + 1) + 1/2 * 16 = 8.75, variance 2.5; the replicate averages
    # two independent slots: variance 1.25. P(replicate = 4) = P(BB) = 1/4; P(replicate = 0) =
    # P(AA) P(A -> 0)^2 = 1/4 * 1/16. Reusing one episode resample for a seed drawn twice would
    # give variance 1.3125 and P(0) = 1/16 instead.
    replicates = bootstrap_replicates([[0.0, 2.0], [4.0, 4.0]], resamples=200_000)
    assert replicates.mean() == pytest.approx(2.5, abs=0.01)
    assert replicates.var() == pytest.approx(1.25, abs=0.015)
    assert np.mean(replicates == 4.0) == pytest.approx(0.25, abs=0.005)
    assert np.mean(replicates == 0.0) == pytest.approx(1 / 64, abs=0.002)


def test_seed_level_spread_dominates_when_seeds_disagree():
    # every episode of a seed equal: only the seed draw matters; 0, 1, 2 w.p. 1/4, 1/2, 1/4
    estimate = bootstrap_mean([[0.0] * 5, [2.0] * 5])
    assert (estimate.mean, estimate.low, estimate.high) == (1.0, 0.0, 2.0)


def test_one_seed_interval_matches_the_normal_approximation():
    values = np.random.default_rng(3).normal(10.0, 2.0, size=200)
    estimate = bootstrap_mean([values])
    half_width = 1.96 * values.std() / np.sqrt(values.size)
    assert (estimate.high - estimate.low) / 2 == pytest.approx(half_width, rel=0.1)
    assert estimate.low < values.mean() < estimate.high


def test_the_same_seed_gives_the_same_interval():
    samples = [[1.0, 5.0, 2.0], [0.0, 3.0]]
    assert bootstrap_mean(samples, seed=7) == bootstrap_mean(samples, seed=7)
    assert bootstrap_mean(samples, seed=7) != bootstrap_mean(samples, seed=8)


def test_paired_difference_cancels_the_shared_episode_variation():
    rng = np.random.default_rng(0)
    shared = [rng.normal(0.0, 5.0, size=50) for _ in range(3)]  # heavy episode-to-episode spread
    a = [x + 0.3 for x in shared]
    paired = paired_difference(a, shared)
    assert paired.mean == pytest.approx(0.3)
    assert paired.high - paired.low == pytest.approx(0.0, abs=1e-12)
    assert paired.excludes(0.0)
    unpaired_a, unpaired_b = bootstrap_mean(a), bootstrap_mean(shared)
    assert unpaired_a.high - unpaired_a.low > 1.0  # the unpaired intervals overlap widely
    assert unpaired_a.low < unpaired_b.high


def test_paired_difference_by_hand():
    # differences [1, -1] in one seed: as [0, 1] shifted and scaled, -1, 0, 1 w.p. 1/4, 1/2, 1/4
    estimate = paired_difference([[3.0, 1.0]], [[2.0, 2.0]])
    assert (estimate.mean, estimate.low, estimate.high) == (0.0, -1.0, 1.0)
    assert not estimate.excludes(0.0)


def test_bad_samples_are_refused():
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference([[1.0], [2.0]], [[1.0]])
    with pytest.raises(ValueError, match="seed 0: 2 episodes against 1"):
        paired_difference([[1.0, 2.0]], [[1.0]])
    with pytest.raises(ValueError, match="at least one episode"):
        bootstrap_mean([[1.0], []])
    with pytest.raises(ValueError, match="at least one seed"):
        bootstrap_mean([])
    with pytest.raises(ValueError, match="level"):
        bootstrap_mean([[1.0]], level=1.5)


def test_format_shows_mean_and_interval():
    estimate = bootstrap_mean([[1.0, 1.0]])
    assert estimate.format() == "1.00 [1.00, 1.00]"
