"""The ``relabel`` repair: its pure pieces against hand values, and the run end to end."""

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from osrl_unlearn.data import OfflineDataset
from osrl_unlearn.errors import ConfigError
from osrl_unlearn.losses import imitation_loss
from osrl_unlearn.unlearn import UnlearningError
from osrl_unlearn.unlearn.config import RelabelConfig, SafeRuleConfig
from osrl_unlearn.unlearn.methods import method_config
from osrl_unlearn.unlearn.relabel import (
    cost_to_go,
    episode_costs,
    forget_rows,
    imitate_safe_episodes,
    labels,
    mixed,
    mixed_draws,
    relabelled,
    reset_behaviour_model,
    reset_critic,
    restart,
    shrink_perturb,
    steps_to_end,
)
from tests.agents.conftest import make_agent, poisoned_arrays, samplers
from tests.agents.test_unlearning import parameters

QUICK = RelabelConfig(steps=5)
GATED = RelabelConfig(steps=5, actor_objective="gated")


def batch(rows: int, offset: float = 0.0):
    """A transition batch whose every value tells its row and field apart."""
    base = torch.arange(rows, dtype=torch.float32)[:, None] + offset
    return (base.repeat(1, 8), base.repeat(1, 8) + 0.5, base.repeat(1, 2), base[:, 0] + 0.1,
            base[:, 0] + 0.2, torch.zeros(rows))  # fmt: skip


def test_relabelled_replaces_rewards_and_costs_only():
    original = batch(4)
    out = relabelled(original, reward=-1.5, cost=2.0)
    assert torch.equal(out[3], torch.full((4,), -1.5)) and torch.equal(
        out[4], torch.full((4,), 2.0)
    )
    for position in (0, 1, 2, 5):
        assert out[position] is original[position]
    assert torch.equal(original[4], torch.arange(4.0) + 0.2)  # the input batch is untouched


def test_mixed_takes_leading_keep_rows_then_forget_rows():
    keep, forget = batch(6), batch(6, offset=100.0)
    out = mixed(keep, forget, forget_rows=2)
    assert all(len(field) == 6 for field in out)
    assert out[3].tolist() == pytest.approx([0.1, 1.1, 2.1, 3.1, 100.1, 101.1])
    assert torch.equal(out[0][4:], forget[0][:2])


def test_forget_rows_follow_the_forget_share_of_the_poisoned_data():
    class Sized(list):
        pass

    keep, forget = Sized(range(600)), Sized(range(200))
    assert forget_rows(RelabelConfig(), 32, keep, forget) == 8  # 200 / 800 of 32
    assert forget_rows(RelabelConfig(forget_share=0.5), 32, keep, forget) == 16
    assert forget_rows(RelabelConfig(), 32, iter([]), iter([])) == 16  # sizes unknown: half
    assert forget_rows(RelabelConfig(forget_share=0.01), 32, keep, forget) == 1  # at least one
    assert forget_rows(RelabelConfig(forget_share=0.0), 32, keep, forget) == 0  # keep rows only
    with pytest.raises(UnlearningError, match="at least 2 rows"):
        forget_rows(RelabelConfig(), 1, keep, forget)


def test_labels_are_the_keep_reward_percentile_and_the_cost_budget_or_largest_keep_cost():
    rewards = torch.tensor([0.0, 1.0, 2.0, 3.0, 10.0])
    costs = torch.tensor([0.0, 0.0, 0.5, 0.0, 0.0])
    reward, cost = labels(RelabelConfig(reward_percentile=25), rewards, costs, cost_scale=2.0,
                          cost_limit=10.0)  # fmt: skip
    assert reward == pytest.approx(np.percentile(rewards.numpy(), 25))
    assert cost == 20.0  # the default: the whole episode budget, at the samplers' cost scale
    largest = RelabelConfig(forget_cost="largest-step")
    assert labels(largest, rewards, costs, cost_scale=1.0, cost_limit=10.0)[1] == 0.5
    _, given = labels(RelabelConfig(cost_label=1.0), rewards, costs, cost_scale=2.0,
                      cost_limit=10.0)  # fmt: skip
    assert given == 2.0  # a given label is in data units, scaled like the samplers' costs
    with pytest.warns(UserWarning, match="cost_label"):  # no cost in the keep data: DSRL's 0/1
        assert labels(largest, rewards, torch.zeros(5), cost_scale=1.0, cost_limit=10.0)[1] == 1.0


def test_shrink_perturb_mixes_the_old_weights_with_fresh_ones():
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    old = [p.detach().clone() for p in network.parameters()]
    fresh = copy.deepcopy(network)
    torch.manual_seed(7)
    for layer in fresh.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    torch.manual_seed(7)
    shrink_perturb(network, shrink=0.4, perturb=0.1)
    for p, before, new in zip(network.parameters(), old, fresh.parameters(), strict=True):
        assert torch.allclose(p, 0.4 * before + 0.1 * new)


@pytest.mark.parametrize("bad", [{"steps": 0}, {"imitate_steps": -1}, {"imitate_steps": 5, "actor": "keep"}, {"reward_percentile": 101}, {"forget_share": 1.0}, {"forget_share": -0.1},
                                 {"actor": "fresh"}, {"actor_objective": "lagrangian"},
                                 {"cost_label": -1.0}, {"trainer": "jax"}, {"cost_critic": "fresh"}, {"reward_critic": "x"}, {"behaviour_model": "new"}, {"start": "clean"}, {"start": "fresh", "actor": "keep"},
                                 {"cost_to_go": True, "actor_objective": "gated"},
                                 {"forget_cost": "max"}, {"cost_to_go": True, "trainer": "osrl"},
                                 {"behaviour_rows": "forget"}, {"constraint_rows": "forget"},
                                 {"constraint_rows": "keep", "trainer": "osrl"},
                                 {"actor_rows": "forget"}, {"actor_rows": "keep", "trainer": "osrl"},
                                 {"behaviour_rows": "keep", "trainer": "osrl"},
                                 {"behaviour_rows": "keep", "actor_objective": "gated"}])  # fmt: skip
def test_bad_relabel_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        RelabelConfig(**bad)


def test_relabel_takes_its_own_config_and_no_other():
    assert isinstance(method_config("relabel"), RelabelConfig)
    assert method_config("relabel", QUICK) == QUICK  # every field the user set arrives
    with pytest.raises(ConfigError, match="takes a RelabelConfig"):
        method_config("relabel", SafeRuleConfig())
    with pytest.raises(ConfigError, match="takes a SafeRuleConfig"):
        method_config("safe-rule", QUICK)


def costed_split():
    arrays = poisoned_arrays()
    return OfflineDataset.from_arrays(arrays).split()


@pytest.mark.parametrize("name", ["bcql", "bearl", "cpq"])
def test_gated_step_trains_on_keep_rows_and_relabelled_forget_rows(name, monkeypatch):
    keep, forget = samplers(name, costed_split())
    agent = make_agent(name)
    seen = []
    step = type(agent)._gated_training_step

    def spy(self, batch, keep_rows, kappa):
        seen.append((batch, keep_rows))
        return step(self, batch, keep_rows, kappa)

    monkeypatch.setattr(type(agent), "_gated_training_step", spy)
    actor_before = parameters(agent.actor)
    history = agent.unlearn(keep, forget, method="relabel", config=GATED, show_progress=False)
    assert history.steps == 5 and history.method == "relabel" and len(seen) == 5
    reward = float(torch.quantile(keep.fields[3].double(), 0.05))
    for rows, keep_rows in seen:
        assert keep_rows == 32 - round(32 * len(forget) / (len(keep) + len(forget)))
        assert torch.all(rows[4][keep_rows:] == 10.0)  # the agent's episode cost limit
        assert torch.allclose(rows[3][keep_rows:], torch.tensor(reward, dtype=torch.float32))
        assert len(rows[0]) == 32
    assert history.metrics[0]["relabel/cost"] == 10.0
    after = agent.actor.state_dict()
    assert any(not torch.equal(actor_before[k], after[k]) for k in after)


@pytest.mark.parametrize("name", ["bcql", "coptidice"])
def test_the_default_relabels_through_the_agents_own_training_step(name, trained_batches):
    keep, forget = samplers(name, costed_split())
    agent = make_agent(name)
    seen = trained_batches
    history = agent.unlearn(keep, forget, method="relabel", config=QUICK, show_progress=False)
    assert history.steps == 5 and len(seen) == 5
    forget_rows_ = round(32 * len(forget) / (len(keep) + len(forget)))
    assert all(torch.all(rows[4][-forget_rows_:] == 10.0) for rows in seen)
    loss = "loss/nu_loss" if name == "coptidice" else "loss/cost_critic_loss"
    assert loss in history.last()


@pytest.mark.parametrize("name", ["bcql", "coptidice"])
@pytest.mark.parametrize("with_floors", [False, True])
def test_mixed_draws_are_the_two_samplers_draws_mixed_and_relabelled(name, with_floors):
    keep, forget = samplers(name, costed_split())
    floors = torch.arange(len(forget), dtype=torch.float32) + 0.5 if with_floors else None
    drawn = list(mixed_draws(keep, forget, 12, reward=-2.0, cost=7.0, count=4, floors=floors))
    keep, forget = samplers(name, costed_split())  # the same seeds: the same draws again
    assert len(drawn) == 4 and keep.batches_drawn == forget.batches_drawn == 0
    for batch in drawn:
        index, forget_batch = forget.sample_indexed()
        expected = mixed(keep.sample(), relabelled(forget_batch, -2.0, 7.0), 12)
        if with_floors:
            expected += (torch.cat([torch.full((20,), -torch.inf), floors[index[:12]]]),)
        assert len(batch) == len(expected)
        assert all(torch.equal(a, b) for a, b in zip(batch, expected, strict=True))


class NotASampler:
    """A sampler's rows and draws behind the interface of any other loader (no ``draw_rows``)."""

    def __init__(self, sampler):
        self.sampler, self.fields = sampler, sampler.fields
        self.sample_indexed = sampler.sample_indexed

    def __len__(self):
        return len(self.sampler)

    def batches(self, count):
        return self.sampler.batches(count)


@pytest.mark.parametrize("name,config", [("bcql", QUICK), ("coptidice", QUICK),
                                         ("bcql", replace(QUICK, cost_to_go=True))])  # fmt: skip
def test_samplers_gathered_at_once_repair_as_the_generic_loop_does(name, config):
    repaired = []
    for wrap in (lambda sampler: sampler, NotASampler):
        keep, forget = samplers(name, costed_split())
        agent = make_agent(name)
        torch.manual_seed(3)
        agent.unlearn(wrap(keep), wrap(forget), config=config, show_progress=False)
        repaired.append(agent.state_dict())
    assert all(torch.equal(repaired[0][k], repaired[1][k]) for k in repaired[0])


@pytest.mark.parametrize("name", ["bcql", "coptidice"])
def test_same_seed_same_repair(name):
    results = []
    for _ in range(2):
        keep, forget = samplers(name, costed_split())
        agent = make_agent(name)
        torch.manual_seed(3)
        agent.unlearn(keep, forget, method="relabel", config=QUICK, show_progress=False)
        results.append(agent.state_dict())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_keep_only_relabel_trains_on_keep_batches_and_draws_no_forget_batch(trained_batches):
    keep, forget = samplers("bcql", costed_split())
    keep_draws = [keep.sample() for _ in range(5)]
    keep, forget = samplers("bcql", costed_split())  # the same seed: the same draws again
    history = make_agent("bcql").unlearn(keep, forget, config=replace(QUICK, forget_share=0.0),
                                         show_progress=False)  # fmt: skip
    assert history.steps == 5 and history.metrics[0]["relabel/forget_rows"] == 0.0
    assert forget.batches_drawn == 0
    for seen, drawn in zip(trained_batches, keep_draws, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(seen, drawn, strict=True))


def test_relabel_needs_a_forget_set():
    keep, _ = samplers("bcql", costed_split())
    with pytest.raises(UnlearningError, match="forget"):
        make_agent("bcql").unlearn(keep, None, method="relabel", show_progress=False)


def test_relabel_short_form_splits_the_poisoned_dataset():
    data = OfflineDataset.from_arrays(poisoned_arrays())
    agent = make_agent("bcql")
    history = agent.unlearn(data, method="relabel", config=QUICK, batch_size=16,
                            show_progress=False)  # fmt: skip
    assert history.steps == 5


def test_keep_sampler_without_costs_falls_back_to_a_unit_cost_with_a_warning():
    arrays = poisoned_arrays()
    arrays["costs"][:] = 0.0
    keep, forget = samplers("bcql", OfflineDataset.from_arrays(arrays).split())
    agent = make_agent("bcql")
    largest = RelabelConfig(steps=5, forget_cost="largest-step")
    with pytest.warns(UserWarning, match="cost_label"):
        history = agent.unlearn(keep, forget, config=largest, show_progress=False)
    assert history.metrics[0]["relabel/cost"] == 1.0
    history = agent.unlearn(keep, forget, method="relabel", show_progress=False,
                            config=RelabelConfig(steps=2, cost_label=0.5))  # fmt: skip
    assert history.metrics[0]["relabel/cost"] == 0.5


def test_cost_to_go_counts_the_steps_left_in_each_trajectory():
    done = torch.tensor([0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0])  # the last one cut without a flag
    assert steps_to_end(done).tolist() == [3, 2, 1, 2, 1, 2, 1]
    # cost 2 per step, gamma 0.5: 2 (1 - 0.5^n) / 0.5 -> 3.5, 3, 2 for n = 3, 2, 1
    assert cost_to_go(done, 2.0, 0.5).tolist() == pytest.approx([3.5, 3.0, 2.0, 3.0, 2.0, 3.0, 2.0])


@pytest.mark.parametrize("name", ["bcql", "bearl", "cpq"])
def test_cost_to_go_floors_the_cost_targets_of_forget_rows_only(name, monkeypatch):
    keep, forget = samplers(name, costed_split())
    agent = make_agent(name)
    from osrl_unlearn.unlearn import relabel as module

    seen = []
    floored = module.RelabelStep.floored

    def spy(self, *inputs):
        own, captured = self.own_backups, []
        self.own_backups = lambda *args: captured.append(own(*args)) or captured[-1]
        try:
            out = floored(self, *inputs)
        finally:
            self.own_backups = own
        seen.append((captured[0], out, self.floor))
        return out

    monkeypatch.setattr(module.RelabelStep, "floored", spy)
    config = RelabelConfig(steps=3, cost_to_go=True)
    history = agent.unlearn(keep, forget, config=config, show_progress=False)
    assert history.steps == 3 and len(seen) == 3
    rows = round(32 * len(forget) / (len(keep) + len(forget)))
    # the forget set: two trajectories of 100 steps at cost 10 (the budget), gamma 0.99
    possible = cost_to_go(forget.fields[5], 10.0, 0.99)
    for own, out, floor in seen:
        assert torch.equal(out[0], own[0])  # reward targets untouched
        assert torch.equal(out[1][:-rows], own[1][:-rows])  # keep rows untouched
        assert torch.all(torch.isin(floor[-rows:], possible))
        assert torch.equal(out[1][-rows:], torch.maximum(own[1][-rows:], floor[-rows:]))
        assert float(out[1][-rows:].max()) > 100  # far above what one cost of 10 backs up to


@pytest.mark.parametrize(
    "option",
    [{"cost_to_go": True}, {"behaviour_rows": "keep"}, {"constraint_rows": "keep"},
     {"actor_rows": "keep"}],
)  # fmt: skip
def test_relabel_options_warn_that_coptidice_has_nothing_to_apply_them_to(option):
    keep, forget = samplers("coptidice", costed_split())
    with pytest.warns(UserWarning, match="no effect on coptidice"):
        make_agent("coptidice").unlearn(keep, forget, show_progress=False,
                                        config=RelabelConfig(steps=2, **option))  # fmt: skip


@pytest.mark.parametrize(
    ("agent", "settings", "model", "rows"),
    [("bcql", {}, "reset", "keep"), ("bearl", {}, "keep", "all"), ("cpq", {}, "keep", "all"),
     ("coptidice", {}, "keep", "all"), ("bcql", {"trainer": "osrl"}, "keep", "all"),
     ("bcql", {"actor_objective": "gated"}, "keep", "all"),
     ("cpq", {"behaviour_model": "reset"}, "reset", "keep"),
     ("bcql", {"behaviour_rows": "all"}, "reset", "all"),
     ("bcql", {"behaviour_model": "keep"}, "keep", "all")],
)  # fmt: skip
def test_auto_relearns_the_vae_of_bcql_only_under_our_training_step(agent, settings, model, rows):
    resolved = RelabelConfig(**settings).for_agent(agent)
    assert (resolved.behaviour_model, resolved.behaviour_rows) == (model, rows)
    assert resolved.for_agent(agent) == resolved  # nothing left to resolve
    assert method_config("relabel", RelabelConfig(**settings), agent) == resolved


@pytest.mark.parametrize(("name", "resets"), [("bcql", True), ("cpq", False)])
def test_default_relabel_resets_bcqls_vae_and_keeps_cpqs(name, resets, monkeypatch):
    from osrl_unlearn.unlearn import relabel as module

    keep, forget = samplers(name, costed_split())
    agent = make_agent(name)
    reset = []
    monkeypatch.setattr(module, "reset_behaviour_model", reset.append)
    history = agent.unlearn(keep, forget, show_progress=False, steps=2)
    assert reset == ([agent] if resets else [])
    assert history.metrics[0]["relabel/behaviour_reset"] == float(resets)


@pytest.mark.parametrize("name", ["bcql", "cpq"])
def test_behaviour_rows_keep_trains_the_vae_on_the_keep_rows_only(name, monkeypatch):
    keep, forget = samplers(name, costed_split())
    agent = make_agent(name)
    from osrl_unlearn.unlearn import relabel as module

    seen = []
    update = module.RelabelStep.keep_vae_update

    def spy(self, obs, actions):
        own = self.own_vae_update
        self.own_vae_update = lambda o, a: seen.append((obs, o, a)) or own(o, a)
        try:
            return update(self, obs, actions)
        finally:
            self.own_vae_update = own

    monkeypatch.setattr(module.RelabelStep, "keep_vae_update", spy)
    agent.unlearn(keep, forget, show_progress=False,
                  config=RelabelConfig(steps=3, behaviour_rows="keep"))  # fmt: skip
    rows = round(32 * len(forget) / (len(keep) + len(forget)))
    assert len(seen) == 3
    for whole, obs, actions in seen:
        assert len(whole) == 32 and len(obs) == len(actions) == 32 - rows
        assert torch.equal(obs, whole[: 32 - rows])  # the leading rows: the keep rows


def test_cost_to_go_needs_a_sampler_that_knows_the_trajectories():
    keep, forget = samplers("bcql", costed_split())
    with pytest.raises(UnlearningError, match="BatchSampler"):
        make_agent("bcql").unlearn(keep, list(forget.batches(3)), show_progress=False,
                                   config=RelabelConfig(steps=3, cost_to_go=True))  # fmt: skip


@pytest.mark.parametrize("name", ["bcql", "bearl"])
@pytest.mark.parametrize("rows_seen", ["all", "keep"])
def test_constraint_rows_keep_sets_the_multiplier_from_the_keep_rows(name, rows_seen, monkeypatch):
    keep, forget = samplers(name, costed_split())
    agent = make_agent(name)
    seen = []
    control = type(agent.controller).control

    def spy(self, qc):
        seen.append(len(qc))
        return control(self, qc)

    monkeypatch.setattr(type(agent.controller), "control", spy)
    agent.unlearn(keep, forget, show_progress=False,
                  config=RelabelConfig(steps=3, constraint_rows=rows_seen))  # fmt: skip
    rows = round(32 * len(forget) / (len(keep) + len(forget)))
    assert seen == [32 - rows if rows_seen == "keep" else 32] * 3


@pytest.mark.parametrize("name", ["bcql", "bearl"])
@pytest.mark.parametrize("rows_seen", ["all", "keep"])
def test_actor_rows_keep_trains_the_actor_and_its_multiplier_on_the_keep_rows(
    name, rows_seen, monkeypatch
):
    import osrl_unlearn.fast.bcql as steps

    keep, forget = samplers(name, costed_split())
    agent = make_agent(name)
    step_class = {"bcql": steps.BCQLStep, "bearl": steps.BEARLStep}[name]
    own, control = step_class.actor_update, type(agent.controller).control
    seen, controlled = [], []

    def spy(self, obs):
        seen.append(len(obs))
        return (yield from own(self, obs))

    monkeypatch.setattr(step_class, "actor_update", spy)
    monkeypatch.setattr(type(agent.controller), "control",
                        lambda self, qc: controlled.append(len(qc)) or control(self, qc))  # fmt: skip
    agent.unlearn(keep, forget, show_progress=False,
                  config=RelabelConfig(steps=3, actor_rows=rows_seen))  # fmt: skip
    rows = round(32 * len(forget) / (len(keep) + len(forget)))
    assert seen == controlled == [32 - rows if rows_seen == "keep" else 32] * 3


def test_episode_costs_sum_each_rows_whole_episode():
    costs = torch.tensor([1.0, 0.0, 2.0, 0.0, 5.0, 1.0, 1.0])
    done = torch.tensor([0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0])  # the last episode cut unflagged
    assert episode_costs(costs, done).tolist() == [3.0, 3.0, 3.0, 5.0, 5.0, 2.0, 2.0]


def test_imitation_loss_is_the_mean_squared_action_error():
    predicted = torch.tensor([[0.5, -0.5], [0.0, 1.0]])
    actions = torch.tensor([[0.0, 0.5], [0.0, 0.0]])
    assert float(imitation_loss(predicted, actions)) == pytest.approx((0.25 + 1 + 0 + 1) / 4)


def one_action_per_episode_safety():
    """Episodes of 100 rows; the safe ones (cost 0) take action (0.5, -0.5), the unsafe ones
    (cost 1 a step) (-0.5, 0.5), from the same states."""
    arrays = poisoned_arrays()
    episode = np.arange(len(arrays["costs"])) // 100
    unsafe = episode % 2 == 1
    arrays["costs"][:] = unsafe.astype(np.float32)
    arrays["actions"][:] = np.where(unsafe[:, None], [-0.5, 0.5], [0.5, -0.5])
    return OfflineDataset.from_arrays(arrays).split()


@pytest.mark.parametrize("name", ["bearl", "cpq"])
def test_imitation_learns_the_safe_episodes_actions_only(name):
    keep, _ = samplers(name, one_action_per_episode_safety())
    agent = make_agent(name)
    torch.manual_seed(0)
    imitate_safe_episodes(agent, keep.fields, steps=300, batch_size=32, cost_limit=10.0)
    actions, _ = agent.actor(keep.fields[0], deterministic=True, with_logprob=False)
    assert torch.allclose(actions.mean(0), torch.tensor([0.5, -0.5]), atol=0.05)
    if hasattr(agent, "actor_old"):  # the target actor starts from the imitation too
        assert all(torch.equal(a, b) for a, b in
                   zip(agent.actor.parameters(), agent.actor_old.parameters(), strict=True))  # fmt: skip


def test_imitation_warns_where_it_has_nothing_to_apply_to():
    keep, _ = samplers("bcql", one_action_per_episode_safety())
    agent = make_agent("bcql")
    before = parameters(agent.actor)
    with pytest.warns(UserWarning, match="not a Gaussian policy"):
        imitate_safe_episodes(agent, keep.fields, steps=3, batch_size=8, cost_limit=10.0)
    assert all(torch.equal(before[k], v) for k, v in agent.actor.state_dict().items())
    keep, _ = samplers("cpq", one_action_per_episode_safety())
    with pytest.warns(UserWarning, match="no keep episode is within the cost limit"):
        imitate_safe_episodes(make_agent("cpq"), keep.fields, steps=3, batch_size=8,
                              cost_limit=-1.0)  # fmt: skip


def test_relabel_imitates_before_relearning_and_needs_a_sampler_for_it(monkeypatch):
    keep, forget = samplers("cpq", costed_split())
    agent = make_agent("cpq")
    calls = []
    monkeypatch.setattr("osrl_unlearn.unlearn.relabel.imitate_safe_episodes",
                        lambda *args: calls.append(args))  # fmt: skip
    config = RelabelConfig(steps=3, imitate_steps=7)
    agent.unlearn(keep, forget, config=config, show_progress=False)
    ((_, fields, steps, batch_size, limit),) = calls
    assert fields is keep.fields and steps == 7 and batch_size == 32 and limit == 10.0
    with pytest.raises(UnlearningError, match="imitate_steps"):
        agent.unlearn(list(keep.batches(3)), forget, config=config, show_progress=False)


@pytest.mark.parametrize("name", ["bcql", "cpq"])
@pytest.mark.parametrize(("reset", "kept"), [("cost_critic", "critic"), ("critic", "cost_critic")])
def test_reset_critic_gives_one_critic_and_its_target_the_same_fresh_weights(name, reset, kept):
    agent = make_agent(name)
    before, other = parameters(getattr(agent, reset)), parameters(getattr(agent, kept))
    reset_critic(agent, reset)
    after = getattr(agent, reset).state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in after if k.endswith("weight"))
    target = getattr(agent, f"{reset}_old").state_dict()
    assert all(torch.equal(v, target[k]) for k, v in after.items())
    assert all(torch.equal(v, getattr(agent, kept).state_dict()[k]) for k, v in other.items())


def test_relabel_resets_the_critics_asked_for_and_warns_where_there_are_none(monkeypatch):
    keep, forget = samplers("cpq", costed_split())
    agent = make_agent("cpq")
    calls = []
    monkeypatch.setattr("osrl_unlearn.unlearn.relabel.reset_critic",
                        lambda agent, name: calls.append((agent, name)))  # fmt: skip
    agent.unlearn(keep, forget, config=RelabelConfig(steps=2), show_progress=False)
    assert calls == []
    agent.unlearn(keep, forget, config=RelabelConfig(steps=2, cost_critic="reset"),
                  show_progress=False)  # fmt: skip
    assert calls == [(agent, "cost_critic")]
    calls.clear()
    both = RelabelConfig(steps=2, cost_critic="reset", reward_critic="reset")
    agent.unlearn(keep, forget, config=both, show_progress=False)
    assert calls == [(agent, "critic"), (agent, "cost_critic")]
    monkeypatch.undo()
    keep, forget = samplers("coptidice", costed_split())
    for option in ("cost_critic", "reward_critic"):
        with pytest.warns(UserWarning, match=f"{option}='reset' has no effect on coptidice"):
            make_agent("coptidice").unlearn(keep, forget, show_progress=False,
                                            config=RelabelConfig(steps=2, **{option: "reset"}))  # fmt: skip


@pytest.mark.parametrize("name", ["bcql", "bearl", "cpq", "coptidice"])
def test_restart_gives_the_agent_a_newly_built_agents_weights_and_duals(name):
    from osrl_unlearn.unlearn.retraining import fresh_agent

    keep, forget = samplers(name, costed_split())
    agent = make_agent(name)
    torch.manual_seed(0)
    agent.unlearn(keep, forget, config=RelabelConfig(steps=3), show_progress=False)  # moves all
    trained = parameters(agent)
    torch.manual_seed(5)
    restart(agent)
    other = make_agent(name, seed=1)
    torch.manual_seed(5)
    new = fresh_agent(other)
    assert agent.state_dict().keys() == new.state_dict().keys()
    assert all(torch.equal(v, new.state_dict()[k]) for k, v in agent.state_dict().items())
    assert not all(torch.equal(v, trained[k]) for k, v in agent.state_dict().items())
    for attribute in ("log_alpha", "lmbda", "tau"):
        if hasattr(new, attribute):
            assert torch.equal(torch.as_tensor(getattr(agent, attribute)),
                               torch.as_tensor(getattr(new, attribute)))  # fmt: skip
    if hasattr(new, "controller"):
        assert vars(agent.controller) == vars(new.controller)


def test_a_fresh_start_restarts_the_agent_and_resets_nothing_else(monkeypatch):
    keep, forget = samplers("cpq", costed_split())
    agent = make_agent("cpq")
    calls = []
    monkeypatch.setattr("osrl_unlearn.unlearn.relabel.restart", lambda a: calls.append("restart"))
    monkeypatch.setattr("osrl_unlearn.unlearn.relabel.reset_critic",
                        lambda a, name: calls.append(name))  # fmt: skip
    monkeypatch.setattr(type(agent), "_reset_actor", lambda self: calls.append("actor"))
    config = RelabelConfig(steps=2, start="fresh", cost_critic="reset")
    agent.unlearn(keep, forget, config=config, show_progress=False)
    assert calls == ["restart"]


@pytest.mark.parametrize("name", ["bcql", "bearl", "cpq"])
def test_reset_behaviour_model_gives_the_vae_fresh_weights_and_nothing_else(name):
    agent = make_agent(name)
    before = parameters(agent)
    torch.manual_seed(3)
    reset_behaviour_model(agent)
    after = agent.state_dict()
    changed = {k for k, v in after.items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("vae.") for k in changed)
    assert all(k in changed for k in after if k.startswith("vae.") and k.endswith("weight"))
    torch.manual_seed(3)
    reset_behaviour_model(agent)
    assert all(torch.equal(v, agent.state_dict()[k]) for k, v in after.items())  # seeded


def test_relabel_resets_the_behaviour_model_when_asked_and_warns_without_one(monkeypatch):
    keep, forget = samplers("cpq", costed_split())
    agent = make_agent("cpq")
    calls = []
    monkeypatch.setattr("osrl_unlearn.unlearn.relabel.reset_behaviour_model", calls.append)
    agent.unlearn(keep, forget, config=RelabelConfig(steps=2), show_progress=False)
    assert calls == []
    agent.unlearn(keep, forget, config=RelabelConfig(steps=2, behaviour_model="reset"),
                  show_progress=False)  # fmt: skip
    assert calls == [agent]
    monkeypatch.undo()
    keep, forget = samplers("coptidice", costed_split())
    with pytest.warns(UserWarning, match="behaviour_model='reset' has no effect on coptidice"):
        make_agent("coptidice").unlearn(keep, forget, show_progress=False,
                                        config=RelabelConfig(steps=2, behaviour_model="reset"))  # fmt: skip
