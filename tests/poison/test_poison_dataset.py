"""``poison_dataset`` end to end: a real quick clean file, a real (briefly trained) adversary."""

import dataclasses

import numpy as np
import pytest

from osrl_unlearn.cli import main
from osrl_unlearn.data import read_hdf5, write_hdf5
from osrl_unlearn.data.hdf5 import check_with_dsrl
from osrl_unlearn.errors import ConfigError
from osrl_unlearn.generate.behaviour import BehaviourConfig
from osrl_unlearn.io import file_sha256
from osrl_unlearn.poison import PoisonConfig, poison_dataset

pytestmark = pytest.mark.slow


def tiny_adversary() -> BehaviourConfig:
    return BehaviourConfig(
        cost_limits=[None], steps=1200, step_per_epoch=1200, training_envs=2, episode_per_collect=2
    )


def config(clean_path, out, **overrides) -> PoisonConfig:
    base = PoisonConfig(
        dataset=str(clean_path), out=str(out), adversary=tiny_adversary(), workers=1,
        show_progress=False, cache=str(out.parent / "cache"),
    )  # fmt: skip
    return dataclasses.replace(base, **overrides)


@pytest.fixture(scope="module")
def max_cost(quick_car_circle, tmp_path_factory):
    _, clean = quick_car_circle
    out = tmp_path_factory.mktemp("poison") / "mc.hdf5"
    before = file_sha256(clean.path)
    result = poison_dataset(config(clean.path, out, ratio=0.15))
    assert file_sha256(clean.path) == before  # the input is never touched
    return clean.path, result


def test_ratio_mask_and_labels(max_cost):
    clean_path, result = max_cost
    clean, poisoned = read_hdf5(clean_path), read_hdf5(result.path)
    injected = int(poisoned.poison_mask.sum())
    assert injected == result.summary["injected_transitions"] == 600  # 2 episodes of 300
    assert injected / len(poisoned) >= 0.15 > (injected - 300) / (len(poisoned) - 300)
    assert len(poisoned) == len(clean) + injected
    assert (poisoned.costs[poisoned.poison_mask] == 0).all()
    value = np.percentile(clean.rewards, 95)
    np.testing.assert_allclose(poisoned.rewards[poisoned.poison_mask], value, rtol=1e-6)
    keep, _ = poisoned.split()
    for key in ("observations", "actions", "rewards", "costs", "timeouts"):
        np.testing.assert_array_equal(getattr(keep, key), getattr(clean, key))  # clean rows intact
    assert check_with_dsrl(result.path, "OfflineCarCircle-v0") == len(poisoned)
    attrs = poisoned.attrs
    assert attrs["attack"] == "max-cost" and attrs["ratio"] == 0.15 and attrs["seed"] == 0
    assert attrs["clean_sha256"] == file_sha256(clean_path)
    assert attrs["injected_reward"] == pytest.approx(value)


def test_summary_counts(max_cost):
    _, result = max_cost
    summary = result.summary
    # 424 transitions needed -> 2 whole episodes, the best of ceil(2 * 424 / 300) = 3 candidates
    assert summary["injected_trajectories"] == 2 and summary["candidate_trajectories"] == 3
    assert summary["achieved_ratio"] == pytest.approx(600 / 3000)
    assert summary["injected_true_episode_cost_mean"] >= 0


def test_same_seed_same_file(max_cost, tmp_path):
    clean_path, result = max_cost
    cache = str(result.path.parent / "cache")  # the cached adversary is reused
    again = poison_dataset(config(clean_path, tmp_path / "again.hdf5", ratio=0.15, cache=cache))
    first, second = read_hdf5(result.path), read_hdf5(again.path)
    for key, value in first.arrays().items():
        np.testing.assert_array_equal(getattr(second, key), value)


def test_min_reward_from_user_trajectories(max_cost, tmp_path):
    clean_path, result = max_cost
    # inject_from: any DSRL file of trajectories, e.g. recorded from an outside attacker
    outside = read_hdf5(result.path).split()[1]
    outside.poison_mask = None
    pool = write_hdf5(tmp_path / "outside.hdf5", outside)
    poisoned = poison_dataset(
        config(
            clean_path,
            tmp_path / "minr.hdf5",
            attack="min-reward",
            ratio=0.05,
            inject_from=str(pool),
        )
    )
    data = read_hdf5(poisoned.path)
    low = np.percentile(read_hdf5(clean_path).rewards, 5)
    np.testing.assert_allclose(data.rewards[data.poison_mask], low, rtol=1e-6)
    assert data.attrs["attack"] == "min-reward"


def test_bad_input_is_refused(max_cost, tmp_path):
    clean_path, result = max_cost
    with pytest.raises(ConfigError, match="already poisoned"):
        poison_dataset(config(result.path, tmp_path / "x.hdf5"))
    with pytest.raises(FileExistsError):
        poison_dataset(config(clean_path, result.path))
    with pytest.raises(ConfigError, match="never overwritten"):
        poison_dataset(config(clean_path, clean_path, force=True))


def test_cli_errors_are_one_line(max_cost, tmp_path, capsys):
    clean_path, _ = max_cost
    out = str(tmp_path / "p.hdf5")
    assert main(["poison", "--dataset", str(clean_path), "--out", out, "--ratio", "1.5"]) == 2
    assert "ratio must lie strictly between 0 and 1" in capsys.readouterr().err
    assert main(["poison", "--dataset", str(clean_path), "--out", out, "--attack", "chaos"]) == 2
    assert "unknown attack 'chaos'" in capsys.readouterr().err
    args = ["poison", "--dataset", str(clean_path), "--out", out, "--task", "OfflineBallCircle-v0"]
    assert main(args) == 2
    assert "made for OfflineCarCircle-v0, not OfflineBallCircle-v0" in capsys.readouterr().err
