"""Our training step captured once in a CUDA graph and replayed: OSRL's sizes on a GPU.

On a GPU the step at OSRL's sizes is bound by launching its few hundred kernels one by one from
Python, not by arithmetic. Captured in a CUDA graph, a whole step (the batch draw included) is one
launch, and several runs (seeds, datasets) replay side by side, each on its own stream.

What capture changes, and why it is still OSRL's step:

- the random draws come from a generator of the run's own, registered with its graph, instead of
  torch's global ones: the same distributions, other numbers (``tests/fast/test_equivalence.py``
  pins the losses on the CPU, where the draws are OSRL's);
- OSRL's PID-Lagrangian controller rebinds its state as new Python attributes each call, which a
  replayed graph would not see: :class:`InPlacePID` does the same arithmetic on tensors updated
  in place;
- each batch is drawn inside the step, uniform with replacement from each :class:`Source`, as our
  sampler draws it.

On the CPU the same object runs the step eagerly (how the tests exercise it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from osrl_unlearn.fast import FastTrainer
from osrl_unlearn.fast.actor_critic import Metrics

CAPTURABLE = ("bcql", "bearl", "cpq")
"""Agents whose step :class:`GraphedTraining` captures."""


class InPlacePID:
    """OSRL's ``LagrangianPIDController`` with its state (last error, integral) kept in 0-d
    tensors on ``device`` and updated in place, so a captured graph carries it from step to step.

    Args:
        KP, KI, KD: the gains.
        thres: the setpoint (``qc_thres``).
        device: where the state lives.
    """

    def __init__(self, KP: float, KI: float, KD: float, thres: float,
                 device: torch.device | str = "cpu") -> None:  # fmt: skip
        self.KP, self.KI, self.KD, self.thres = KP, KI, KD, thres
        self.error_old = torch.zeros((), device=device)
        self.error_integral = torch.zeros((), device=device)

    @classmethod
    def like(cls, controller, device: torch.device | str) -> InPlacePID:
        """The in-place twin of OSRL's ``controller``, its state carried over."""
        pid = cls(controller.KP, controller.KI, controller.KD, controller.thres, device)
        pid.error_old += torch.as_tensor(controller.error_old, dtype=torch.float32).to(device)
        pid.error_integral += torch.as_tensor(controller.error_integral,
                                              dtype=torch.float32).to(device)  # fmt: skip
        return pid

    def control(self, qc: torch.Tensor) -> torch.Tensor:
        """OSRL's ``control(qc)``, line for line."""
        error_new = torch.mean(qc - self.thres)
        error_diff = F.relu(error_new - self.error_old)
        self.error_integral.copy_(torch.mean(F.relu(self.error_integral + error_new)))
        self.error_old.copy_(error_new)
        multiplier = F.relu(
            self.KP * F.relu(error_new) + self.KI * self.error_integral + self.KD * error_diff
        )
        return torch.mean(multiplier)


@dataclass
class Source:
    """Transitions a batch draws ``rows`` rows from (uniform, with replacement)."""

    fields: Sequence[torch.Tensor]
    """The agent's batch layout (``observations, next_observations, actions, rewards, costs,
    done``), at the training scales, on the agent's device."""
    rows: int


class GraphedTraining:
    """Trains ``model`` with our step on batches drawn from ``sources`` (their rows concatenated
    in order: e.g. keep rows, then relabelled forget rows), on CUDA as one replayed graph.

    Args:
        agent: ``bcql``, ``bearl`` or ``cpq``: the agents whose step draws every random number
            through the step's generator (COptiDICE's does not yet). BEAR-Lag's step counter
            is kept up to date on the host; its policy update must have started
            (``start_update_policy_step`` 0, OSRL's default), since a graph fixes the branch.
        model: the OSRL agent, on the device it trains on.
        sources: where each batch's rows come from.
        seed: seeds the run's own generator (batches and the step's draws).
        **learning_rates: as :class:`~osrl_unlearn.fast.FastTrainer` takes them.
    """

    WARMUP = 3
    """Eager steps on the run's stream before capture (CUDA's rule for capturing autograd)."""

    def __init__(self, agent: str, model: torch.nn.Module, sources: Sequence[Source],
                 seed: int, **learning_rates: float) -> None:  # fmt: skip
        if agent not in CAPTURABLE:
            raise ValueError(f"{agent}'s step draws on the CPU; it cannot be captured yet "
                             f"({', '.join(CAPTURABLE)} can)")  # fmt: skip
        start = getattr(model, "start_update_policy_step", 0)
        if start > getattr(model, "n_train_steps", 0) + self.WARMUP:
            raise ValueError(f"BEAR-Lag's policy update starts at step {start}: a captured step "
                             "would never start it; use start_update_policy_step=0")  # fmt: skip
        self.model = model
        if hasattr(model, "controller"):
            device = next(model.parameters()).device
            model.controller = InPlacePID.like(model.controller, device)
        self.step = FastTrainer(agent, model, **learning_rates)._step
        self.generator = torch.Generator(device=self.step.device).manual_seed(seed)
        self.step.generator = self.generator
        self.sources = list(sources)
        self.steps_done = 0
        self.metrics: Metrics = {}
        self.graph = None
        self.capture_error: str | None = None
        """Why capture failed, where it did (the run then goes on eagerly)."""
        on_gpu = self.step.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.step.device) if on_gpu else None

    def batch(self) -> tuple[torch.Tensor, ...]:
        parts = []
        for source in self.sources:
            count = source.fields[0].shape[0]
            index = torch.randint(count, (source.rows,), device=self.step.device,
                                  generator=self.generator)  # fmt: skip
            parts.append([field.index_select(0, index) for field in source.fields])
        if len(parts) == 1:
            return tuple(parts[0])
        return tuple(torch.cat(column) for column in zip(*parts, strict=True))

    def _eager_step(self) -> None:
        self.metrics = self.step(*self.batch())
        self.steps_done += 1

    def _capture(self) -> None:
        stream = self.stream
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(self.WARMUP):
                self._eager_step()
        stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        counted = getattr(self.model, "n_train_steps", None)  # BEAR-Lag's counter: not a step
        try:
            graph.register_generator_state(self.generator)
            with torch.cuda.graph(graph, stream=stream):
                self.metrics = self.step(*self.batch())  # recorded, not run
        except RuntimeError as error:  # the run goes on eagerly, and says why
            self.capture_error = f"{type(error).__name__}: {error}"
            self.stream = None
            return
        finally:
            if counted is not None:
                self.model.n_train_steps = counted
        self.graph = graph

    def advance(self, steps: int) -> None:
        """``steps`` more training steps (on CUDA: queued on the run's stream, not waited for;
        the first call also captures the graph, its warm-up steps counted)."""
        if self.stream is None:
            for _ in range(steps):
                self._eager_step()
            return
        if self.graph is None:
            warmup = min(steps, self.WARMUP)
            if warmup < self.WARMUP:  # too few to capture: eager
                with torch.cuda.stream(self.stream):
                    for _ in range(steps):
                        self._eager_step()
                return
            self._capture()
            steps -= warmup
            if self.graph is None:
                self.advance(steps)
                return
        with torch.cuda.stream(self.stream):
            for _ in range(steps):
                self.graph.replay()
        self.steps_done += steps
        if hasattr(self.model, "n_train_steps"):
            self.model.n_train_steps += steps

    def synchronize(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()

    def values(self) -> dict[str, float]:
        """The last step's logged values (a host sync)."""
        self.synchronize()
        return {key: float(value) for key, value in self.metrics.items()}


__all__ = ["CAPTURABLE", "GraphedTraining", "InPlacePID", "Source"]
