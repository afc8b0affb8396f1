"""Shared fixtures: small synthetic DSRL arrays shaped like OfflineCarCircle-v0 (8 obs, 2 act)."""

import numpy as np
import pytest

from osrl_unlearn.cache import CACHE_ENV

CAR_CIRCLE = "OfflineCarCircle-v0"


def make_arrays(
    episodes: int = 4, length: int = 250, obs_dim: int = 8, act_dim: int = 2, seed: int = 0
):
    """``episodes`` time-limited episodes; observation column 0 holds the row index."""
    rng = np.random.default_rng(seed)
    n = episodes * length
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    obs[:, 0] = np.arange(n)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[length - 1 :: length] = True
    return {
        "observations": obs,
        "next_observations": obs + 0.5,
        "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        "rewards": np.arange(n, dtype=np.float32) * 0.01,
        "costs": (rng.uniform(size=n) < 0.1).astype(np.float32),
        "terminals": np.zeros(n, dtype=bool),
        "timeouts": timeouts,
    }


@pytest.fixture
def arrays():
    return make_arrays()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache root (never the user's ~/.cache)."""
    root = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


@pytest.fixture(scope="session")
def quick_car_circle(tmp_path_factory):
    """A real CarCircle dataset from the quick generation profile, made once per test session."""
    from osrl_unlearn.demo import apply_quick_profile
    from osrl_unlearn.generate.make_dataset import MakeDatasetConfig, make_dataset

    cfg = MakeDatasetConfig(
        task=CAR_CIRCLE, workers=1, show_progress=False, cache=str(tmp_path_factory.mktemp("cache"))
    )
    apply_quick_profile(cfg)
    return cfg, make_dataset(cfg)


@pytest.fixture(scope="session")
def poisoned_file(quick_car_circle, tmp_path_factory):
    """The quick CarCircle file with its last episode flagged as injected."""
    import dataclasses

    import numpy as np

    from osrl_unlearn.data import read_hdf5, write_hdf5

    data = read_hdf5(quick_car_circle[1].path)
    mask = np.zeros(len(data), dtype=bool)
    mask[-300:] = True
    path = tmp_path_factory.mktemp("poisoned") / "poisoned.hdf5"
    return write_hdf5(path, dataclasses.replace(data, poison_mask=mask))
