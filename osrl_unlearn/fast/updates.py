"""Where a loss becomes a parameter update, for every training and repair step.

Steps compute, this module updates (d3rlpy's compute-then-update split). A step is a generator:
it yields an :class:`Update` (a loss and the optimizers of the parameters it trains) for each
update it makes, in order, and returns its metrics. :func:`run_updates` zeroes the gradients,
runs the backward and steps the optimizers of each update before resuming the step, which then
computes its next loss from the updated weights (OSRL's order within a step: behaviour model,
critics, actor). Nothing else in the package calls ``backward`` or an optimizer's ``step``.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Update:
    """One parameter update: ``loss``'s gradient, then a step of each of ``optimizers``
    (anything with ``zero_grad()`` and ``step()``: ours or ``torch.optim``'s)."""

    loss: torch.Tensor
    optimizers: Sequence[Any]


Updates = Generator[Update, None, T]
"""A step: yields its updates in order, returns its metrics."""


def apply_update(update: Update) -> None:
    """Zero the gradients of ``update``'s optimizers, backpropagate its loss, step them."""
    for optimizer in update.optimizers:
        optimizer.zero_grad()
    update.loss.backward()
    for optimizer in update.optimizers:
        optimizer.step()


def as_floats(metrics: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """A step's metrics (0-d or one-element tensors) as floats, with one host transfer for all
    of them: stacked without autograd, so no detach or reshape per value."""
    with torch.no_grad():
        values = torch.stack([v if v.dim() == 0 else v.reshape(()) for v in metrics.values()])
    return dict(zip(metrics, values.tolist(), strict=True))


def run_updates(updates: Updates[T]) -> T:
    """Applies every update a step yields, in order; returns what the step returns."""
    try:
        update = next(updates)
        while True:
            apply_update(update)
            update = next(updates)
    except StopIteration as finished:
        return finished.value


class Step:
    """A training step: :meth:`updates` yields its updates and returns its metrics; calling the
    step runs them (:func:`run_updates`)."""

    def updates(self, *batch: torch.Tensor) -> Updates[Any]:
        raise NotImplementedError

    def __call__(self, *batch: torch.Tensor) -> Any:
        return run_updates(self.updates(*batch))
