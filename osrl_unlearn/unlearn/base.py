"""What every unlearning method shares, the gradient methods of :mod:`.loop` and the training
methods of :mod:`.retraining` alike: the error for unusable input, the history a run returns, the
logger protocol, bounded batch drawing and the once-per-run check of a sampler's data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from osrl_unlearn.errors import UserError

Batch = tuple[torch.Tensor, ...]


class UnlearningError(UserError):
    """Unusable unlearning input (empty forget set, mismatched dimensions, non-finite batch)."""


class Logger(Protocol):
    def store(self, **metrics: float) -> None: ...


@dataclass
class UnlearningHistory:
    """Per-step metrics of one ``unlearn`` call (namespaced keys such as ``unlearn/beta_f``)."""

    metrics: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    """This process's CPU time over the run (all its threads): what the repair cost, whatever
    else shared the machine (wall time on a shared machine measures the contention as much as
    the work)."""
    kappa: float = 0.0
    sigma: float = 0.0
    stopped_early: bool = False
    method: str = "safe-rule"

    def series(self, key: str) -> list[float]:
        """One metric over the steps, e.g. ``history.series("unlearn/forget_qc")``."""
        return [m[key] for m in self.metrics if key in m]

    def last(self) -> dict[str, float]:
        return self.metrics[-1] if self.metrics else {}


def draw_batches(loader: Any, count: int, name: str) -> Iterator[Batch]:
    """Exactly ``count`` batches from a :class:`BatchSampler` (``.batches``) or any iterable.

    Raises:
        UnlearningError: the loader is empty or runs out before ``count`` batches.
    """
    if hasattr(loader, "__len__") and len(loader) == 0:
        raise UnlearningError(
            f"the {name} set is empty (its loader holds no data): nothing to {name}."
        )
    source: Iterable[Batch] = loader.batches(count) if hasattr(loader, "batches") else loader
    drawn = 0
    for batch in source:
        if drawn == count:
            return
        drawn += 1
        yield batch
    if drawn == 0:
        raise UnlearningError(f"the {name} loader yielded no batch: the {name} set is empty.")
    if drawn < count:
        raise UnlearningError(f"the {name} loader ran out after {drawn} of {count} batches.")


def all_finite(loader: Any, name: str) -> bool:
    """True once every value a :class:`BatchSampler` can draw is checked finite; False for other
    loaders (their batches are checked one by one).

    Raises:
        UnlearningError: the sampler holds NaN or infinite values.
    """
    fields = getattr(loader, "fields", None)
    if fields is None:
        return False
    for position, tensor in enumerate(fields):
        if not torch.isfinite(tensor).all():
            raise UnlearningError(
                f"the {name} data has NaN or infinite values (tuple position {position}); "
                "validate the dataset with osrl_unlearn.data before unlearning."
            )
    return True


def reinitialise(network: torch.nn.Module) -> None:
    """Fresh weights for every layer of ``network``, drawn from torch's global generator as at
    construction."""
    for layer in network.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
