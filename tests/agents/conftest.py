"""A small poisoned dataset and tiny agents for the shared unlearning harness."""

import numpy as np
import pytest

from osrl_unlearn.agents import AGENTS
from osrl_unlearn.agents.checkpoint import build_agent
from osrl_unlearn.data import BatchSampler, OfflineDataset, layout_for

TINY_CONFIG = {
    "task": "OfflineCarCircle-v0",
    "a_hidden_sizes": [32, 32],
    "c_hidden_sizes": [32, 32],
    "vae_hidden_sizes": 32,
    "sample_action_num": 4,
    "episode_len": 300,
    "cost_limit": 10,
    "gamma": 0.99,
}


def poisoned_arrays(seed: int = 0, episodes: int = 8, length: int = 100):
    """Clean episodes (reward ~0.5, cost 1 on a third of the steps) and, in the last two,
    injected ones relabelled as a Max Cost attack would: cost 0, reward high."""
    rng = np.random.default_rng(seed)
    n = episodes * length
    obs = rng.normal(size=(n, 8)).astype(np.float32)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[length - 1 :: length] = True
    mask = np.zeros(n, dtype=bool)
    mask[(episodes - 2) * length :] = True
    rewards = rng.uniform(0, 1, n).astype(np.float32)
    costs = (rng.uniform(size=n) < 0.3).astype(np.float32)
    rewards[mask], costs[mask] = 2.0, 0.0
    obs[mask] += 2.0  # the attacker's trajectories visit states of their own
    return {
        "observations": obs,
        "next_observations": np.roll(obs, -1, axis=0),
        "actions": rng.uniform(-0.9, 0.9, size=(n, 2)).astype(np.float32),
        "rewards": rewards,
        "costs": costs,
        "terminals": np.zeros(n, dtype=bool),
        "timeouts": timeouts,
        "poison_mask": mask,
    }


@pytest.fixture(scope="session")
def split_data():
    return OfflineDataset.from_arrays(poisoned_arrays()).split()


@pytest.fixture(params=list(AGENTS))
def agent_name(request):
    return request.param


def make_agent(name: str, seed: int = 0):
    import torch

    torch.manual_seed(seed)
    return build_agent(name, TINY_CONFIG)


def samplers(name: str, split, batch_size: int = 32, seed: int = 0):
    keep, forget = split
    layout = layout_for(name)
    return (
        BatchSampler(keep, batch_size, layout=layout, seed=seed),
        BatchSampler(forget, batch_size, layout=layout, seed=seed + 1),
    )


@pytest.fixture
def trained_batches(monkeypatch):
    """Every batch our training step (``FastTrainer.updates``) is given, in order."""
    from osrl_unlearn.fast import FastTrainer

    seen = []
    step = FastTrainer.updates

    def spy(self, *batch):
        seen.append(batch if len(batch) > 1 else tuple(batch[0]))
        return step(self, *batch)

    monkeypatch.setattr(FastTrainer, "updates", spy)
    return seen
