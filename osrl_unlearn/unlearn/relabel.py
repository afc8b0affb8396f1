"""``relabel``: repair by correcting the poisoned labels and relearning the policy on them.

Every attack of the paper hides its trajectories behind false labels (cost 0; reward high or low).
Instead of suppressing the forget set's values with margin losses (Safe-RULE) this method states
what the forget transitions are worth, pessimistically, and lets the agent's own training step
propagate it:

1. **relabel**: each forget transition gets the agent's whole episode cost budget as its cost
   (one such step exhausts the budget, so a safe policy never takes it; or, with
   ``forget_cost='largest-step'``, the keep data's largest per-step cost) and the
   ``reward_percentile``-th percentile of the keep data's rewards;
2. **move off the poisoned weights**: the actor starts from fresh weights (``actor="reset"``) or
   is shrunk and perturbed (Ash & Adams 2020); fine-tuning a poisoned policy in place keeps the
   attack within reach (``docs/methods.md``); optionally the critics start afresh too
   (``cost_critic="reset"``, ``reward_critic="reset"``), and so may the behaviour model
   (``behaviour_model="reset"``);
3. **relearn**: the agent's own training step (OSRL's losses, :mod:`osrl_unlearn.fast`) on batches
   of keep rows and relabelled forget rows, the forget rows at their share of the poisoned data,
   for a fixed step budget. No environment is used; the budget is the stopping rule. (Or, with
   ``actor_objective='gated'``, critics by Bellman regression and the actor by a per-state gated
   objective: :class:`GatedStep`.)
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import torch
from osrl.common.net import SquashedGaussianMLPActor

from osrl_unlearn.data.sampler import training_scales
from osrl_unlearn.fast.updates import Update, Updates, apply_update
from osrl_unlearn.losses import imitation_loss
from osrl_unlearn.osrl_configs import trainer_learning_rates
from osrl_unlearn.trainers import make_trainer
from osrl_unlearn.unlearn.base import (
    Batch,
    Logger,
    UnlearningError,
    UnlearningHistory,
    all_finite,
    draw_batches,
    reinitialise,
)
from osrl_unlearn.unlearn.config import RelabelConfig
from osrl_unlearn.unlearn.retraining import fresh_agent
from osrl_unlearn.unlearn.runner import adopt, run_training

OBS, ACTIONS, REWARD, COST, DONE = 0, 2, 3, 4, 5
"""Positions of observations, actions, rewards, costs and done flags in both OSRL batch layouts."""

BC_LEARNING_RATE = 1e-3
"""OSRL's BC agent's actor learning rate (``BCTrainConfig.actor_lr``)."""


def relabelled(batch: Batch, reward: float, cost: float) -> Batch:
    """``batch`` with every reward set to ``reward`` and every cost to ``cost`` (other fields
    shared, not copied)."""
    fields = list(batch)
    fields[REWARD] = torch.full_like(batch[REWARD], reward)
    fields[COST] = torch.full_like(batch[COST], cost)
    return tuple(fields)


def mixed(keep: Batch, forget: Batch, forget_rows: int) -> Batch:
    """One batch of ``len(keep) - forget_rows`` keep rows and ``forget_rows`` forget rows (the
    leading rows of each: the samplers' draws are already uniform)."""
    keep_rows = keep[0].shape[0] - forget_rows
    return tuple(
        torch.cat([k[:keep_rows], f[:forget_rows]]) for k, f in zip(keep, forget, strict=True)
    )


def mixed_draws(keep_sampler: Any, forget_sampler: Any, forget_rows: int, reward: float,
                cost: float, count: int, floors: torch.Tensor | None = None) -> Iterator[Batch]:  # fmt: skip
    """``count`` batches equal to ``mixed(keep_sampler.sample(), relabelled(forget_sampler.sample(),
    reward, cost), forget_rows)``, drawn from the same two streams, gathered in one
    ``index_select`` per field: the keep rows and the relabelled forget rows are laid end to end
    once (a copy of both sets for the repair's length), so a step pays one gather, as a training
    step does, not two gathers and the mixing. With ``floors`` (one per forget row), each batch
    ends with its rows' floors (``-inf`` on keep rows)."""
    store = tuple(torch.cat([k, f]) for k, f in zip(keep_sampler.fields, relabelled(
        forget_sampler.fields, reward, cost), strict=True))  # fmt: skip
    if floors is not None:
        store += (torch.cat([torch.full((len(keep_sampler),), -torch.inf, device=floors.device),
                             floors]),)  # fmt: skip
    keep_rows, offset = keep_sampler.batch_size - forget_rows, len(keep_sampler)
    for _ in range(count):
        index = torch.cat([keep_sampler.draw_rows()[:keep_rows],
                           forget_sampler.draw_rows()[:forget_rows] + offset])  # fmt: skip
        yield tuple(field.index_select(0, index) for field in store)


def forget_rows(config: RelabelConfig, batch_size: int, keep_loader, forget_loader) -> int:
    """How many rows of each batch come from the forget set (at most batch - 1; at least 1 unless
    ``forget_share`` is 0)."""
    share = config.forget_share
    if share == 0:
        return 0
    if share is None:
        sizes = [len(loader) if hasattr(loader, "__len__") else None
                 for loader in (keep_loader, forget_loader)]  # fmt: skip
        share = 0.5 if None in sizes else sizes[1] / (sizes[0] + sizes[1])
    if batch_size < 2:
        raise UnlearningError(f"relabel needs batches of at least 2 rows, got {batch_size}")
    return min(max(round(share * batch_size), 1), batch_size - 1)


def labels(config: RelabelConfig, keep_rewards: torch.Tensor, keep_costs: torch.Tensor,
           cost_scale: float, cost_limit: float) -> tuple[float, float]:  # fmt: skip
    """(reward, cost) every forget row is given, from the keep data's scaled rewards and costs
    and the agent's episode ``cost_limit`` (data units)."""
    reward = float(torch.quantile(keep_rewards.double().flatten(), config.reward_percentile / 100))
    if config.cost_label is not None:
        return reward, config.cost_label * cost_scale
    if config.forget_cost == "budget":
        return reward, float(cost_limit) * cost_scale
    return reward, largest_cost(keep_costs)


def largest_cost(keep_costs: torch.Tensor) -> float:
    """The keep data's largest per-step cost: what an unsafe step costs; 1 (DSRL's per-step costs
    are 0/1 indicators), with a warning, when the keep data holds no positive cost."""
    cost = float(keep_costs.max())
    if cost <= 0:
        warnings.warn(
            "the keep data holds no positive cost; forget rows get cost 1 (DSRL's per-step cost "
            "indicator). Set RelabelConfig.cost_label (--relabel.cost_label) for another task.",
            stacklevel=3,
        )
        return 1.0
    return cost


def steps_to_end(done: torch.Tensor) -> torch.Tensor:
    """Per row, how many steps its trajectory has from this row to its end, this row included
    (rows after the last ``done`` flag count to the end of the data)."""
    flags = done.flatten().bool()
    rows = flags.numel()
    ends = torch.nonzero(flags).flatten()
    ends = torch.cat([ends, ends.new_tensor([rows - 1])]) if not flags[-1] else ends
    # each row's trajectory ends at the first end at or after it
    end_of = ends[torch.searchsorted(ends, torch.arange(rows))]
    return end_of - torch.arange(rows) + 1


def cost_to_go(done: torch.Tensor, cost: float, gamma: float) -> torch.Tensor:
    """Per row, the discounted cost of the rest of its trajectory when every step costs ``cost``:
    cost (1 - gamma^n) / (1 - gamma) for n = :func:`steps_to_end`."""
    n = steps_to_end(done).double()
    return (cost * (1 - gamma**n) / (1 - gamma)).float()


class RelabelStep:
    """The agent's fast training step with ``relabel``'s options applied to it: the cost critic's
    Bellman targets floored row by row at a value given with each batch (``cost_to_go``:
    ``updates(*batch, floor)``, ``-inf`` for no floor), the behaviour model trained on
    the batch's keep rows only (``behaviour_rows='keep'``), the PID multiplier set by the keep
    rows' Q_c (``constraint_rows='keep'``), the actor learning on the keep rows only
    (``actor_rows='keep'``). An agent without the piece an option changes
    (COptiDICE has no Q critics or VAE; only BCQ-Lag and BEAR-Lag have the PID controller)
    trains unchanged by it, with a warning."""

    def __init__(self, agent: torch.nn.Module, config: RelabelConfig, keep_rows: int,
                 logger: Logger) -> None:  # fmt: skip
        self.trainer = make_trainer(config.trainer, agent.osrl_key, agent, logger,
                                    config.learning_rate)  # fmt: skip
        step = self.trainer._step
        self.keep_rows, self.takes_floor = keep_rows, config.cost_to_go
        self.own_backups = getattr(step, "bellman_backups", None)
        self.own_vae_update = getattr(step, "vae_update", None)
        has_controller = hasattr(step, "constraint_rows")
        wanted = {"cost_to_go": (config.cost_to_go, self.own_backups),
                  "behaviour_rows='keep'": (config.behaviour_rows == "keep", self.own_vae_update),
                  "constraint_rows='keep'": (config.constraint_rows == "keep", has_controller or None),
                  "actor_rows='keep'": (config.actor_rows == "keep", has_controller or None)}  # fmt: skip
        for option, (asked, found) in wanted.items():
            if asked and found is None:
                warnings.warn(f"relabel's {option} has no effect on {agent.osrl_key}: it has no "
                              "Q critics, behaviour model or PID Lagrangian to apply it to",
                              stacklevel=2)  # fmt: skip
        if config.constraint_rows == "keep" and has_controller:
            step.constraint_rows = keep_rows
        if config.actor_rows == "keep" and has_controller:
            step.actor_rows = keep_rows
        # the step looks these up on itself
        if config.cost_to_go and self.own_backups is not None:
            step.bellman_backups = self.floored
        if config.behaviour_rows == "keep" and self.own_vae_update is not None:
            step.vae_update = self.keep_vae_update
        self.floor: torch.Tensor | None = None

    def floored(self, *inputs: torch.Tensor) -> torch.Tensor:
        backups = self.own_backups(*inputs)
        return torch.stack([backups[0], torch.maximum(backups[1], self.floor)])

    def keep_vae_update(self, obs: torch.Tensor, actions: torch.Tensor):
        return self.own_vae_update(obs[: self.keep_rows], actions[: self.keep_rows])

    def updates(self, *batch: torch.Tensor) -> Updates[None]:
        if self.takes_floor:
            *batch, self.floor = batch
        yield from self.trainer.updates(*batch)


def episode_costs(costs: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
    """Per row, the undiscounted cost of its whole episode (rows after the last ``done`` flag form
    one episode)."""
    flags = done.flatten().long()
    episode = torch.cumsum(flags, 0) - flags  # a row's done flag closes its own episode
    totals = torch.zeros(int(episode[-1]) + 1, dtype=torch.float64, device=costs.device)
    totals.index_add_(0, episode, costs.flatten().double())
    return totals[episode]


def imitate_safe_episodes(agent: torch.nn.Module, keep_fields: Batch, steps: int,
                          batch_size: int, cost_limit: float) -> None:  # fmt: skip
    """Trains ``agent.actor``'s deterministic action tanh(mu(s)) * max_action by behaviour
    cloning on the keep rows whose episode cost (the fields' scale) is at most ``cost_limit``
    (all keep rows, with a warning, when no episode is that safe), batches drawn from torch's
    global generator."""
    if not isinstance(agent.actor, SquashedGaussianMLPActor):
        warnings.warn(f"relabel's imitate_steps has no effect on {agent.osrl_key}: its actor is "
                      "not a Gaussian policy", stacklevel=3)  # fmt: skip
        return
    safe = episode_costs(keep_fields[COST], keep_fields[DONE]) <= cost_limit
    if not bool(safe.any()):
        warnings.warn("no keep episode is within the cost limit; the actor imitates every keep "
                      "episode", stacklevel=3)  # fmt: skip
        safe = torch.ones_like(safe)
    rows = torch.nonzero(safe).flatten()
    obs, actions = keep_fields[OBS][rows], keep_fields[ACTIONS][rows] / agent.max_action
    optimiser = torch.optim.Adam(agent.actor.parameters(), lr=BC_LEARNING_RATE)
    for _ in range(steps):
        index = torch.randint(len(rows), (batch_size,))
        predicted, _ = agent.actor(obs[index], deterministic=True, with_logprob=False)
        apply_update(Update(imitation_loss(predicted, actions[index]), (optimiser,)))
    if hasattr(agent, "actor_old"):
        agent.actor_old.load_state_dict(agent.actor.state_dict())


def restart(agent: torch.nn.Module) -> None:
    """Every network, target network, dual variable and controller of ``agent`` as a newly built
    agent of its class has them (drawn from torch's global generator as at construction)."""
    adopt(agent, fresh_agent(agent))


def reset_critic(agent: torch.nn.Module, name: str) -> None:
    """Fresh weights for ``agent``'s Q critic ``name`` ('critic' or 'cost_critic') and its target
    copy (drawn from torch's global generator as at construction); a warning where the agent has
    no such critic (COptiDICE)."""
    option = "reward_critic" if name == "critic" else name
    if not hasattr(agent, name):
        warnings.warn(f"relabel's {option}='reset' has no effect on {agent.osrl_key}: it has no "
                      f"Q {name.replace('_', ' ')}", stacklevel=3)  # fmt: skip
        return
    reinitialise(getattr(agent, name))
    getattr(agent, f"{name}_old").load_state_dict(getattr(agent, name).state_dict())


def reset_behaviour_model(agent: torch.nn.Module) -> None:
    """Fresh weights for ``agent``'s VAE (drawn from torch's global generator as at
    construction); a warning where the agent has none (COptiDICE)."""
    if not hasattr(agent, "vae"):
        warnings.warn(f"relabel's behaviour_model='reset' has no effect on {agent.osrl_key}: it "
                      "has no behaviour model", stacklevel=3)  # fmt: skip
        return
    reinitialise(agent.vae)


@torch.no_grad()
def shrink_perturb(network: torch.nn.Module, shrink: float, perturb: float) -> None:
    """theta <- shrink * theta + perturb * theta_fresh for every parameter of ``network``, the
    fresh weights drawn from torch's global generator as at construction."""
    old = [p.detach().clone() for p in network.parameters()]
    reinitialise(network)
    for p, before in zip(network.parameters(), old, strict=True):
        p.copy_(shrink * before + perturb * p)


class GatedStep:
    """``relabel``'s gated training step for agents with Q critics (``actor_objective='gated'``):
    the critics regress on the agent's own Bellman backups, the actor minimises the per-state
    gated loss -E[1[Q_c <= kappa] Q_r] + E[softplus(Q_c - kappa)] (see
    ``ActorCriticUnlearning._gated_training_step``). A batch-mean Lagrangian (BCQ-Lag's) stays
    slack while most states are safe; the gate binds in every state the cost critic deems
    unsafe, the relabelled attack states among them."""

    def __init__(self, agent: torch.nn.Module, config: RelabelConfig, keep_rows: int,
                 logger: Logger) -> None:  # fmt: skip
        rates = trainer_learning_rates(agent.osrl_key, getattr(agent, "osrl_config", None) or {})
        if config.learning_rate is not None:
            rates = dict.fromkeys(rates, config.learning_rate)
        agent._fast = agent._fast_step(SimpleNamespace(actor_lr=rates["actor_lr"],
                                                       critic_lr=rates["critic_lr"]))  # fmt: skip
        self.agent, self.keep_rows, self.logger = agent, keep_rows, logger
        self.kappa = float(agent.qc_thres)

    def updates(self, *batch: torch.Tensor) -> Updates[None]:
        metrics = yield from self.agent._gated_training_step(batch, self.keep_rows, self.kappa)
        self.logger.store(**metrics)


def forget_floors(forget_loader: Any, cost: float, gamma: float) -> torch.Tensor:
    """:func:`cost_to_go` of every forget row (``cost_to_go=True``); the forget loader must be a
    :class:`~osrl_unlearn.data.sampler.BatchSampler`, whose rows keep their trajectories."""
    if not hasattr(forget_loader, "sample_indexed"):
        raise UnlearningError(
            "relabel's cost_to_go needs the forget rows as a BatchSampler (it knows where each "
            "trajectory ends); build the samplers with osrl_unlearn.data.unlearning_samplers, or "
            "set RelabelConfig(cost_to_go=False)"
        )
    return cost_to_go(forget_loader.fields[DONE], cost, gamma)


def relabel_repair(
    agent: torch.nn.Module,
    keep_loader: Any,
    forget_loader: Any,
    config: RelabelConfig,
    steps: int | None = None,
    *,
    logger: Logger | None = None,
    callback: Callable[[int, dict[str, float]], bool | None] | None = None,
    show_progress: bool = True,
) -> UnlearningHistory:
    """Repairs ``agent`` in place by the ``relabel`` method (see the module docstring)."""
    config = config.for_agent(agent.osrl_key)
    steps = config.steps if steps is None else steps
    finite_checked = all_finite(keep_loader, "keep") and all_finite(forget_loader, "forget")
    # BatchSamplers on both sides: each step's rows are gathered at once (mixed_draws)
    samplers = all(hasattr(loader, "draw_rows") for loader in (keep_loader, forget_loader))
    if hasattr(keep_loader, "draw_rows"):
        keep_fields, batch_size = keep_loader.fields, keep_loader.batch_size
        all_keep: Iterator[Batch] = draw_batches(keep_loader, steps, "keep")
    else:
        keep_batches = draw_batches(keep_loader, steps, "keep")
        first_keep = next(keep_batches)
        keep_fields = getattr(keep_loader, "fields", first_keep)  # the whole keep data where known
        batch_size = first_keep[0].shape[0]
        all_keep = itertools.chain([first_keep], keep_batches)
    reward, cost = labels(config, keep_fields[REWARD], keep_fields[COST],
                          training_scales(agent)[1], agent.cost_limit)  # fmt: skip
    rows = forget_rows(config, batch_size, keep_loader, forget_loader)
    if config.imitate_steps and not hasattr(keep_loader, "fields"):
        raise UnlearningError(
            "relabel's imitate_steps needs the keep rows as a BatchSampler (it knows their "
            "episodes); build the samplers with osrl_unlearn.data.unlearning_samplers, or set "
            "RelabelConfig(imitate_steps=0)"
        )
    if config.start == "fresh":
        restart(agent)
    elif config.actor == "reset":
        agent._reset_actor()
    elif config.actor == "shrink-perturb":
        shrink_perturb(agent.actor, config.shrink, config.perturb)
        if hasattr(agent, "actor_old"):
            agent.actor_old.load_state_dict(agent.actor.state_dict())
    if config.imitate_steps:  # the actor is a fresh one (checked by the config)
        scale = training_scales(agent)[1]
        imitate_safe_episodes(agent, keep_fields, config.imitate_steps, batch_size,
                              agent.cost_limit * scale)  # fmt: skip
    for name, begins in (("critic", config.reward_critic), ("cost_critic", config.cost_critic)):
        if begins == "reset" and config.start == "poisoned":
            reset_critic(agent, name)
    if config.behaviour_model == "reset" and config.start == "poisoned":
        reset_behaviour_model(agent)
    step_maker = None  # the agent's own training step (COptiDICE, which has no Q critics)
    if config.actor_objective == "gated" and hasattr(agent, "_gated_training_step"):
        step_maker = functools.partial(GatedStep, agent, config, batch_size - rows)
    rows_options = (config.behaviour_rows, config.constraint_rows, config.actor_rows)
    if config.cost_to_go or "keep" in rows_options:
        step_maker = functools.partial(RelabelStep, agent, config, batch_size - rows)
    check = None
    floors = forget_floors(forget_loader, cost, agent.gamma) if config.cost_to_go else None
    if floors is not None:  # each batch carries its rows' floors (keep rows: none)

        def check(*batch: torch.Tensor) -> None:
            agent._check_batch(batch[:-1], "keep", finite_checked)

    if rows == 0 and floors is None:  # keep rows only (an ablation): no forget batch is drawn
        batches: Iterator[Batch] = all_keep
    elif samplers:
        batches = mixed_draws(keep_loader, forget_loader, rows, reward, cost, steps, floors)
    elif floors is not None:  # keep rows from another loader, forget rows from a BatchSampler
        no_floor = torch.full((batch_size - rows,), -torch.inf, device=floors.device)

        def floored_batches() -> Iterator[Batch]:
            for keep in all_keep:
                index, forget = forget_loader.sample_indexed()
                floor = torch.cat([no_floor, floors[index[:rows]]])
                yield (*mixed(keep, relabelled(forget, reward, cost), rows), floor)

        batches = floored_batches()
    else:
        forget_batches = draw_batches(forget_loader, steps, "forget")
        batches = (
            mixed(keep, relabelled(forget, reward, cost), rows)
            for keep, forget in zip(all_keep, forget_batches, strict=True)
        )
    history = run_training(
        agent, agent, batches, steps, method="relabel", finite_checked=finite_checked,
        check=check, learning_rate=config.learning_rate, trainer=config.trainer,
        step_maker=step_maker, logger=logger, callback=callback, show_progress=show_progress,
    )  # fmt: skip
    history.metrics[0].update({"relabel/reward": reward, "relabel/cost": cost,
                               "relabel/forget_rows": float(rows),
                               "relabel/behaviour_reset": float(config.behaviour_model == "reset")})  # fmt: skip
    return history
