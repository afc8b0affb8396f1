"""Observation standardisation that OSRL's checkpoints keep without knowing of it.

OSRL's agents read raw observations, and Safety-Gymnasium's differ in scale by 100× (the
accelerometer's std is ~6, a lidar bin's ~0.1). An agent can instead be trained on standardised
observations x' = (x - μ) / σ. Every network of an OSRL agent reads the observation only through
its first linear layer, as the leading columns of its input ([obs], [obs, action] or [obs, z]), so

    W_obs x' + W_rest r + b = (W_obs / σ) x + W_rest r + (b - (W_obs / σ) μ)

and the standardisation folds into that layer exactly. :func:`fold` turns an agent trained on
standardised observations into a plain OSRL agent acting on raw ones (its checkpoint loads and
evaluates in OSRL's own code); :func:`unfold` is its inverse, so a raw checkpoint can be trained
on further in standardised coordinates.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from osrl_unlearn.copying import copy_agent
from osrl_unlearn.data import OfflineDataset
from osrl_unlearn.errors import UserError

_FIRST_LAYER = re.compile(r"(^|\.)(pi|net)\.0$|(^|\.)q\d?_nets\.\d+\.0$|(^|\.)vae\.(e1|d1)$")
"""Names of the linear layers that read the observation: the first layer of OSRL's MLP actors
(``pi``, ``net``), of each ensemble member of its critics and of COptiDICE's ν / χ networks
(``q_nets``, ``q1_nets``, ``q2_nets``), and the VAE's encoder and decoder inputs (``e1``, ``d1``);
target copies (``actor_old``, ``critic_old``) included."""


@dataclass(frozen=True)
class Standardisation:
    """Per-feature mean and std of the observations an agent is trained on."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, observations: np.ndarray) -> Standardisation:
        """The data's per-feature mean and std; a constant feature keeps std 1 (it carries
        nothing to rescale, and 1 / σ would blow up any value the data never showed)."""
        mean = observations.mean(0, dtype=np.float64)
        std = observations.std(0, dtype=np.float64)
        std = np.where(std > 1e-6, std, 1.0)
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def apply(self, observations: np.ndarray) -> np.ndarray:
        return ((observations - self.mean) / self.std).astype(np.float32)

    def applied_to(self, data: OfflineDataset) -> OfflineDataset:
        """``data`` with its observations and next observations standardised."""
        return replace(data, observations=self.apply(data.observations),
                       next_observations=self.apply(data.next_observations))  # fmt: skip

    def config_entries(self) -> dict[str, list[float]]:
        """The ``config.yaml`` keys that record it (OSRL's code ignores them)."""
        return {"observation_mean": self.mean.tolist(), "observation_std": self.std.tolist()}

    @classmethod
    def from_config(cls, config: dict) -> Standardisation | None:
        """The standardisation a training config records; None if it records none."""
        if "observation_mean" not in config:
            return None
        return cls(np.asarray(config["observation_mean"], np.float32),
                   np.asarray(config["observation_std"], np.float32))  # fmt: skip


def acting_on_raw_observations(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` itself, or, while it trains on standardised observations (it carries an
    ``observation_standardisation``), a folded copy of it that acts on raw ones."""
    standardisation = getattr(model, "observation_standardisation", None)
    if standardisation is None:
        return model
    copied = copy_agent(model)
    del copied.observation_standardisation
    return fold(copied, standardisation)


def observation_layers(model: torch.nn.Module, obs_dim: int) -> dict[str, torch.nn.Linear]:
    """The agent's linear layers that read the observation (as their first ``obs_dim`` inputs).

    Raises:
        ValueError: no such layer, or one with fewer than ``obs_dim`` inputs (a network layout
            this module does not know).
    """
    layers = {name: module for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear) and _FIRST_LAYER.search(name)}  # fmt: skip
    narrow = [name for name, layer in layers.items() if layer.in_features < obs_dim]
    if not layers or narrow:
        raise ValueError(
            f"{type(model).__name__}: cannot find the layers that read the {obs_dim}-feature "
            f"observation (found {sorted(layers)}, too narrow: {narrow})"
        )
    return layers


@torch.no_grad()
def fold(model: torch.nn.Module, standardisation: Standardisation) -> torch.nn.Module:
    """Makes ``model``, trained on standardised observations, act on raw ones (in place)."""
    mean, std = _tensors(standardisation)
    for layer in observation_layers(model, len(mean)).values():
        columns = layer.weight[:, : len(mean)]
        columns.div_(std)
        layer.bias.sub_(columns @ mean)
    return model


@torch.no_grad()
def unfold(model: torch.nn.Module, standardisation: Standardisation) -> torch.nn.Module:
    """The inverse of :func:`fold` (in place): ``model`` then reads standardised observations."""
    mean, std = _tensors(standardisation)
    for layer in observation_layers(model, len(mean)).values():
        columns = layer.weight[:, : len(mean)]
        layer.bias.add_(columns @ mean)
        columns.mul_(std)
    return model


@contextlib.contextmanager
def standardised_coordinates(agent: torch.nn.Module, standardisation: Standardisation):
    """Within the block ``agent`` reads standardised observations (:func:`unfold`), and so do
    the loaders passed through the function it yields; on leaving it is folded back to raw
    observations, whatever happened inside. COptiDICE's observation noise scale (its data's
    std) is rescaled alike."""
    width = getattr(agent, "state_dim", len(standardisation.mean))
    sizes_fit = len(standardisation.mean) == len(standardisation.std) == width
    if not sizes_fit or not (
        np.isfinite(standardisation.mean).all() and (standardisation.std > 0).all()
    ):
        raise UserError(
            f"config.yaml's observation_mean / observation_std do not fit the {width}-feature "
            "agent (lengths, finite values, std > 0); restore them from the run folder the "
            "agent was trained into, or remove both keys if it was not trained standardised"
        )
    noise_scale = getattr(agent, "observations_std", None)
    unfold(agent, standardisation)
    if noise_scale is not None:
        agent.observations_std = noise_scale / torch.as_tensor(standardisation.std)
    try:
        yield lambda loader: standardised_loader(loader, standardisation)
    finally:
        fold(agent, standardisation)
        if noise_scale is not None:
            agent.observations_std = noise_scale


def standardised_loader(loader: Any, standardisation: Standardisation) -> Any:
    """``loader`` (a :class:`~osrl_unlearn.data.BatchSampler`, an iterable of batches or None)
    with observations and next observations (each batch's first two fields) standardised."""
    if loader is None:
        return None
    mean, std = _tensors(standardisation)

    def transform(observations: torch.Tensor) -> torch.Tensor:
        return (observations - mean.to(observations.device)) / std.to(observations.device)

    if hasattr(loader, "with_observations"):
        return loader.with_observations(transform)
    return ((transform(b[0]), transform(b[1]), *b[2:]) for b in loader)


def _tensors(standardisation: Standardisation) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.as_tensor(standardisation.mean, dtype=torch.float32),
            torch.as_tensor(standardisation.std, dtype=torch.float32))  # fmt: skip
