"""Fast, bounded batch sampling in the tuple layouts OSRL's trainers take.

OSRL feeds its trainers through a ``DataLoader`` over ``TransitionDataset``, which draws one index
at a time in Python (9-12 ms a step on a 2-core CPU). Here every field lives in one tensor on the
target device and a batch is a single ``index_select``: well under a millisecond.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from osrl_unlearn.agent_specs import SPECS
from osrl_unlearn.data.dataset import DatasetError, OfflineDataset

Layout = Literal["transition", "coptidice"]
LAYOUTS: dict[str, Layout] = {key: spec.layout for key, spec in SPECS.items()}  # type: ignore[misc]
"""Agent name -> batch layout (from :mod:`osrl_unlearn.agent_specs`).

``transition``: ``(observations, next_observations, actions, rewards, costs, done)``, the
positional arguments of ``BCQLTrainer`` / ``BEARLTrainer`` / ``CPQTrainer.train_one_step``.
``coptidice``: the same plus ``is_init``, the single ``batch`` of ``COptiDICETrainer.train_one_step``.
"""


def layout_for(agent: str) -> Layout:
    """The batch layout of an OSRL agent name (``bcql``, ``bearl``, ``cpq``, ``coptidice``)."""
    try:
        return LAYOUTS[agent.lower()]
    except KeyError:
        raise ValueError(f"unknown agent {agent!r}; expected one of {', '.join(LAYOUTS)}") from None


def is_init_flags(done: np.ndarray) -> np.ndarray:
    """OSRL's ``is_init``: 1 on the first row and on every row after an episode end."""
    is_init = np.empty(len(done), dtype=np.float32)
    is_init[0] = 1.0
    is_init[1:] = done[:-1]
    return is_init


@dataclass(frozen=True)
class DatasetStats:
    """What OSRL's ``TransitionDataset.get_dataset_states`` gives COptiDICE's constructor."""

    init_state_proportion: float
    observations_std: np.ndarray
    """(1, obs_dim) standard deviation of the observations."""
    actions_std: np.ndarray
    """(1, act_dim) standard deviation of the actions."""


def dataset_stats(dataset: OfflineDataset) -> DatasetStats:
    return DatasetStats(
        init_state_proportion=float(is_init_flags(dataset.done).mean()),
        observations_std=dataset.observations.std(0, keepdims=True),
        actions_std=dataset.actions.std(0, keepdims=True),
    )


class BatchSampler:
    """Uniform batches with replacement, as OSRL's ``TransitionDataset`` draws them.

    Args:
        dataset: the transitions to draw from.
        batch_size: transitions per batch.
        layout: ``transition`` or ``coptidice`` (see :data:`LAYOUTS`).
        reward_scale: multiplies rewards, as OSRL's ``reward_scale``.
        cost_scale: multiplies costs, as OSRL's ``cost_scale``.
        device: where the tensors live (and batches are made).
        seed: seeds the sampler's own generator: same seed, same batches.
    """

    def __init__(
        self,
        dataset: OfflineDataset,
        batch_size: int,
        *,
        layout: Layout = "transition",
        reward_scale: float = 1.0,
        cost_scale: float = 1.0,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        if len(dataset) == 0:
            raise DatasetError(f"{dataset.source}: cannot sample from an empty dataset.")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if layout not in ("transition", "coptidice"):
            raise ValueError(f"unknown layout {layout!r}; expected 'transition' or 'coptidice'")
        self.dataset_size = len(dataset)
        self.batch_size = batch_size
        self.reward_scale, self.cost_scale = float(reward_scale), float(cost_scale)
        self.layout = layout
        self.device = torch.device(device)
        done = dataset.done.astype(np.float32)
        columns = [
            dataset.observations,
            dataset.next_observations,
            dataset.actions,
            dataset.rewards * np.float32(reward_scale),
            dataset.costs * np.float32(cost_scale),
            done,
        ]
        if layout == "coptidice":
            columns.append(is_init_flags(dataset.done))
        # One tensor per field: a batch is one index_select per field, and each field stays
        # contiguous for the networks' matmuls.
        self._fields = tuple(
            torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32)).to(self.device)
            for c in columns
        )
        self._generator = torch.Generator(device=self.device).manual_seed(seed)
        self.batches_drawn = 0

    def __len__(self) -> int:
        return self.dataset_size

    @property
    def fields(self) -> tuple[torch.Tensor, ...]:
        """Every row of every field, in this sampler's layout (what batches are drawn from)."""
        return self._fields

    def sample(self) -> tuple[torch.Tensor, ...]:
        """One batch in this sampler's layout."""
        return self.sample_indexed()[1]

    def sample_indexed(self) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """(row indices, batch): one batch as :meth:`sample` draws it, with the rows it took (for
        per-row values kept outside the batch layout)."""
        index = self.draw_rows()
        return index, tuple(field.index_select(0, index) for field in self._fields)

    def draw_rows(self) -> torch.Tensor:
        """The row indices of the next batch, without gathering them: the same draw, from the
        same stream, as :meth:`sample` makes (for a caller that gathers the rows itself)."""
        index = torch.randint(
            self.dataset_size,
            (self.batch_size,),
            generator=self._generator,
            device=self.device,
        )
        self.batches_drawn += 1
        return index

    def with_observations(self, transform: Callable[[torch.Tensor], torch.Tensor]) -> BatchSampler:
        """A sampler of the same rows with ``transform`` applied to the observations and next
        observations. It shares this sampler's generator, so drawing from either continues one
        stream of rows."""
        changed = copy.copy(self)
        first, second, *rest = self._fields
        changed._fields = (transform(first), transform(second), *rest)
        return changed

    def batches(self, count: int) -> Iterator[tuple[torch.Tensor, ...]]:
        """Exactly ``count`` batches (OSRL's loaders iterate forever; this one is bounded)."""
        if count < 0:
            raise ValueError(f"count must be non-negative, got {count}")
        for _ in range(count):
            yield self.sample()


def training_scales(agent) -> tuple[float, float]:
    """(reward_scale, cost_scale) the agent was trained with (its OSRL config; 1 and 1 when it
    carries none, as for an agent built outside this package)."""
    config = getattr(agent, "osrl_config", None) or {}
    return float(config.get("reward_scale", 1.0)), float(config.get("cost_scale", 1.0))


def unlearning_samplers(
    data: OfflineDataset,
    agent,
    batch_size: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[BatchSampler, BatchSampler]:
    """Keep and forget samplers for repairing ``agent`` on the poisoned ``data``: split by its
    ``poison_mask``, in the agent's batch layout, at the reward and cost scales it was trained
    with; the forget sampler is seeded ``seed + 1``."""
    keep, forget = data.split()
    reward_scale, cost_scale = training_scales(agent)
    common = dict(layout=layout_for(agent.osrl_key), reward_scale=reward_scale,
                  cost_scale=cost_scale, device=device)  # fmt: skip
    return (
        BatchSampler(keep, batch_size, seed=seed, **common),
        BatchSampler(forget, batch_size, seed=seed + 1, **common),
    )
