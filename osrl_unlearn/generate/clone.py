"""Behaviour policies learnt from the scripted controllers by DAgger.

A scripted controller is a rule with sharp switches (steer round a hazard or not), and the agents
trained on its data imitate it badly: on PointGoal1 every clone of the lidar controller was unsafe
(docs/profiles.md). DSRL's data comes from neural policies, which a neural agent can represent.
This module makes such a policy from a controller: DAgger (Ross et al., 2011) with the controller
as the expert. The first data is the controller's own episodes; each iteration a fresh clone
(OSRL's ``BC`` actor, on standardised observations) is fitted to every state labelled so far, then
drives ``episodes_per_iteration`` episodes while the controller labels the states it visits. The
last clone is the behaviour policy: saved as tensors (``torch.load(weights_only=True)`` reads
it), with its standardisation folded into its first layer so it acts on raw observations.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import numpy as np
import torch
from tqdm.auto import tqdm, trange

from osrl_unlearn.io import atomic_path
from osrl_unlearn.standardise import Standardisation, fold
from osrl_unlearn.tasks import make_env, reset_env

Policy = Callable[[np.ndarray], np.ndarray]


@dataclass
class CloneConfig:
    """How a controller is distilled into a neural behaviour policy (``behaviour_source:
    clone``): DAgger with the controller as the expert."""

    iterations: int = 4
    """Clones fitted; every one but the last drives episodes the controller labels."""
    first_episodes: int = 40
    """Episodes of the controller itself: the first labelled states."""
    episodes_per_iteration: int = 20
    """Episodes each intermediate clone drives (its states labelled by the controller)."""
    steps: int = 5_000
    """Gradient steps per fit (each iteration fits a fresh clone, as DAgger does)."""
    hidden_sizes: List[int] = field(default_factory=lambda: [256, 256])
    """The clone's hidden layers (OSRL's BC default)."""
    batch_size: int = 512
    """Labelled states per gradient step."""
    learning_rate: float = 1e-3
    """Adam's learning rate of the clone."""


def rollout_labels(env, drive: Policy, expert: Policy, episodes: int, first_seed: int,
                   bar: tqdm | None = None):  # fmt: skip
    """The observations of ``episodes`` seeded episodes driven by ``drive``, and ``expert``'s
    action in each (what DAgger learns from); ``bar`` counts the episodes."""
    states, labels = [], []
    for episode in range(episodes):
        obs, _ = reset_env(env, first_seed + episode)
        done = False
        while not done:
            states.append(obs)
            labels.append(expert(obs))
            obs, _, terminated, truncated, _ = env.step(drive(obs).astype(np.float32))
            done = terminated or truncated
        if bar is not None:
            bar.update()
    return np.asarray(states, np.float32), np.asarray(labels, np.float32)


def fit_clone(states: np.ndarray, labels: np.ndarray, cfg: CloneConfig, task, seed: int,
              show_progress: bool = False) -> torch.nn.Module:  # fmt: skip
    """A fresh OSRL ``BC`` agent fitted to ``labels`` on standardised ``states`` (its own MSE
    ``actor_loss`` step); returns its actor, folded to act on raw observations."""
    from osrl.algorithms import BC

    torch.manual_seed(seed)
    standardisation = Standardisation.of(states)
    clone = BC(task.obs_dim, task.act_dim, task.max_action, list(cfg.hidden_sizes),
               task.episode_len)  # fmt: skip
    clone.setup_optimizers(cfg.learning_rate)
    obs = torch.as_tensor(standardisation.apply(states))
    actions = torch.as_tensor(labels)
    generator = torch.Generator().manual_seed(seed)
    for _ in trange(cfg.steps, desc="fitting the clone", mininterval=5, disable=not show_progress):
        rows = torch.randint(len(obs), (cfg.batch_size,), generator=generator)
        clone.actor_loss(obs[rows], actions[rows])
    return fold(clone.actor.eval(), standardisation)  # its first layer, pi[0], reads obs


def actor_policy(actor: torch.nn.Module) -> Policy:
    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        return actor(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy()

    return act


def train_clone(task, controller, cfg: CloneConfig, seed: int, out: Path,
                show_progress: bool = False) -> Path:  # fmt: skip
    """DAgger of ``controller`` on ``task``; the last clone's weights saved atomically to
    ``out`` (kept there: a cached file is reused)."""
    if out.is_file():
        return out
    env = make_env(task.name)
    episodes = cfg.first_episodes + (cfg.iterations - 1) * cfg.episodes_per_iteration
    bar = tqdm(total=episodes, desc="DAgger: labelled episodes", disable=not show_progress)
    try:
        expert = controller.policy_for(env)
        states, labels = rollout_labels(env, expert, expert, cfg.first_episodes, seed, bar)
        for iteration in range(cfg.iterations):
            actor = fit_clone(states, labels, cfg, task, seed + iteration, show_progress)
            if iteration + 1 < cfg.iterations:
                first = seed + 1_000 + 100 * iteration
                new = rollout_labels(env, actor_policy(actor), expert,
                                     cfg.episodes_per_iteration, first, bar)  # fmt: skip
                states = np.concatenate([states, new[0]])
                labels = np.concatenate([labels, new[1]])
    finally:
        bar.close()
        env.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save(actor.state_dict(), tmp)
    return out


def load_clone(path: str, obs_dim: int, act_dim: int, max_action: float,
               hidden_sizes: List[int]) -> torch.nn.Module:  # fmt: skip
    """A saved clone as OSRL's ``MLPActor`` (weights read with ``weights_only=True``)."""
    from osrl.common.net import MLPActor

    actor = MLPActor(obs_dim, act_dim, list(hidden_sizes), torch.nn.ReLU, max_action)
    actor.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return actor.eval()
