"""Independent copies of OSRL agents (to train on, or to evaluate, while the original stays)."""

from __future__ import annotations

import copy

import torch


def copy_agent(agent: torch.nn.Module) -> torch.nn.Module:
    """An independent copy of ``agent`` (weights, optimiser and dual state) to train or evaluate
    on."""
    return copy.deepcopy(agent, memo=_detached_intermediates(agent))


def _detached_intermediates(agent: torch.nn.Module) -> dict[int, torch.Tensor]:
    """A deepcopy memo giving detached copies of the tensors an agent keeps that are results of a
    computation (COptiDICE's ``_tau`` and ``_lmbda``): torch refuses to deepcopy those, and the
    agent recomputes them at its next step."""
    return {id(value): value.detach().clone() for value in vars(agent).values()
            if isinstance(value, torch.Tensor) and value.grad_fn is not None}  # fmt: skip
