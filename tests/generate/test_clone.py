"""Behaviour policies distilled from the scripted controllers by DAgger (``behaviour_source:
clone``)."""

import numpy as np
import pytest

from osrl_unlearn.data import read_hdf5
from osrl_unlearn.data.hdf5 import check_with_dsrl
from osrl_unlearn.errors import ConfigError
from osrl_unlearn.generate.clone import CloneConfig, actor_policy, fit_clone, load_clone
from osrl_unlearn.generate.make_dataset import MakeDatasetConfig, make_dataset
from osrl_unlearn.tasks import get_task

TINY = CloneConfig(iterations=2, first_episodes=1, episodes_per_iteration=1, steps=300,
                   hidden_sizes=[32], batch_size=128)  # fmt: skip


def test_a_clone_fits_its_labels_and_acts_on_raw_observations():
    """Fitted on standardised states, the folded clone maps raw states to the labels."""
    rng = np.random.default_rng(0)
    task = get_task("OfflineCarCircle-v0")
    states = (rng.normal(size=(2000, 8)) * [5, 0.05, 1, 1, 2, 2, 0.02, 1]).astype(np.float32)
    labels = np.tanh(states[:, :2] / [5, 0.05]).astype(np.float32) * 0.8  # two scales apart
    cfg = CloneConfig(steps=1500, hidden_sizes=[64, 64], batch_size=256)
    act = actor_policy(fit_clone(states, labels, cfg, task, seed=0))
    error = np.abs(np.stack([act(s) for s in states[:200]]) - labels[:200]).mean()
    assert error < 0.08  # a constant action would be off by ~0.5


def test_clone_dataset_is_a_dsrl_file_of_the_clones_episodes(tmp_path):
    cfg = MakeDatasetConfig(behaviour_source="clone", episodes=2, workers=1, clone=TINY,
                            action_noise=[0.0], show_progress=False, cache=str(tmp_path))  # fmt: skip
    cfg.controller.radii, cfg.controller.speeds = [5.0], [0.5]
    result = make_dataset(cfg)
    assert check_with_dsrl(result.path, "OfflineCarCircle-v0") == 2 * 300
    data = read_hdf5(result.path)
    assert "DAgger clones" in data.attrs["generator"]
    assert data.attrs["generator_config"]["clone"]["iterations"] == 2
    assert result.summary["episode_sources"][0]["label"].startswith("DAgger clone of controller")
    # the recorded actions are the saved clone's (noise 0): reload it, replay the observations
    (clone_file,) = (tmp_path / "behaviour").rglob("clone.pt")
    act = actor_policy(load_clone(str(clone_file), 8, 2, 1.0, TINY.hidden_sizes))
    replayed = np.stack([act(obs) for obs in data.observations[:50]])
    np.testing.assert_allclose(replayed, data.actions[:50], atol=1e-6)
    # and it is not the controller: the controller's own data differs
    controller = make_dataset(
        MakeDatasetConfig(**{**cfg.__dict__, "behaviour_source": "controller"})
    )
    assert controller.path != result.path
    assert not np.allclose(read_hdf5(controller.path).actions[:50], data.actions[:50])


def test_clone_settings_are_checked_and_other_sources_keep_their_keys():
    with pytest.raises(ConfigError, match="clone.steps = 0: the DAgger settings must be 1 or more"):
        make_dataset(MakeDatasetConfig(behaviour_source="clone", clone=CloneConfig(steps=0)))
    with pytest.raises(ConfigError, match="clone.first_episodes = 0"):
        make_dataset(MakeDatasetConfig(behaviour_source="clone",
                                       clone=CloneConfig(first_episodes=0)))  # fmt: skip
    with pytest.raises(ConfigError, match="clone.learning_rate = -0.1"):
        make_dataset(MakeDatasetConfig(behaviour_source="clone",
                                       clone=CloneConfig(learning_rate=-0.1)))  # fmt: skip
    assert "clone" not in MakeDatasetConfig(behaviour_source="controller").cache_settings()
    assert "clone" in MakeDatasetConfig(behaviour_source="clone").cache_settings()
