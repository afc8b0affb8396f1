"""``trajdeleter`` as its authors run it: the schedule, the relabelled forget batches and the
anchored convergence phase."""

import copy

import pytest
import torch

from osrl_unlearn.data import OfflineDataset
from osrl_unlearn.errors import ConfigError
from osrl_unlearn.fast.updates import run_updates
from osrl_unlearn.unlearn.config import SafeRuleConfig, TrajDeleterConfig
from osrl_unlearn.unlearn.methods import method_config
from osrl_unlearn.unlearn.trajdeleter import AnchoredStep, negated, schedule
from tests.agents.conftest import make_agent, poisoned_arrays, samplers

QUICK = TrajDeleterConfig(steps=10, blocks=4, convergence_fraction=0.2)


def split():
    return OfflineDataset.from_arrays(poisoned_arrays()).split()


def test_schedule_alternates_keep_and_forget_blocks_then_converges():
    phases = schedule(QUICK, 10)  # 8 forgetting steps in 4 blocks of 2, then 2 converging
    assert (
        phases == ["keep"] * 2 + ["forget"] * 2 + ["keep"] * 2 + ["forget"] * 2 + ["converge"] * 2
    )
    official = schedule(TrajDeleterConfig(), 10_000)
    assert official[999] == "keep" and official[1000] == "forget" and official[7999] == "forget"
    assert official.count("converge") == 2000 and official[8000] == "converge"


def test_negated_flips_rewards_and_optionally_sets_costs():
    batch = (torch.ones(3, 8), torch.ones(3, 8), torch.ones(3, 2), torch.tensor([1.0, -2.0, 0.5]),
             torch.zeros(3), torch.zeros(3))  # fmt: skip
    plain = negated(batch)
    assert plain[3].tolist() == [-1.0, 2.0, -0.5] and plain[4] is batch[4]
    assert negated(batch, cost=1.0)[4].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("bad", [{"steps": 0}, {"blocks": 0}, {"convergence_fraction": 1.0},
                                 {"anchor_weight": -0.1}])  # fmt: skip
def test_bad_trajdeleter_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        TrajDeleterConfig(**bad)


def test_the_method_name_decides_cost_awareness():
    assert method_config("trajdeleter").cost_aware is False
    assert method_config("trajdeleter-cost", TrajDeleterConfig(steps=7)).cost_aware is True
    assert method_config("trajdeleter-cost", TrajDeleterConfig(steps=7)).steps == 7
    with pytest.raises(ConfigError, match="takes a TrajDeleterConfig"):
        method_config("trajdeleter", SafeRuleConfig())


@pytest.mark.parametrize("method", ["trajdeleter", "trajdeleter-cost"])
def test_forget_blocks_train_on_negated_forget_rows(agent_name, method, trained_batches):
    keep, forget = samplers(agent_name, split())
    agent = make_agent(agent_name)
    seen = trained_batches
    history = agent.unlearn(keep, forget, method=method, config=QUICK, show_progress=False)
    assert history.steps == 10 and len(seen) == 10
    assert keep.batches_drawn == 6 and forget.batches_drawn == 4
    for index in (2, 3, 6, 7):  # the forget blocks: the attack's reward 2.0 negated
        assert torch.all(seen[index][3] == -2.0)
        expected = 1.0 if method == "trajdeleter-cost" else 0.0
        assert torch.all(seen[index][4] == expected)
    assert all(torch.all(seen[i][3] >= 0) for i in (0, 1, 4, 5, 8, 9))  # keep rows as they are


@pytest.mark.parametrize("name", ["bcql", "bearl", "cpq"])
def test_convergence_regresses_on_targets_blended_with_the_original_agent(name):
    keep, _ = samplers(name, split())
    agent = make_agent(name)
    original = copy.deepcopy(agent)
    anchored = AnchoredStep(agent, QUICK, ["keep", "converge"], logger=None)
    for _ in range(20):  # the student (and its target networks) moves away from the original
        anchored.trainer.train_one_step(*keep.sample())
    batch = keep.sample()
    inputs = (batch[1], batch[3], batch[4], batch[5])
    torch.manual_seed(0)
    own = anchored.own(*inputs)
    torch.manual_seed(0)
    reference = AnchoredStep(original, TrajDeleterConfig(anchor_weight=0), ["keep"], None)
    anchor = reference.own(*inputs)
    assert not torch.allclose(own, anchor)
    torch.manual_seed(0)  # the anchor is the agent as it was before the repair, frozen
    assert torch.equal(anchored.anchor(*inputs), anchor)
    torch.manual_seed(0)
    blended = anchored.blended(*inputs)
    torch.manual_seed(0)
    expected_own = anchored.own(*inputs)
    expected_anchor = anchored.anchor(*inputs)
    assert torch.allclose(blended, (expected_own + 0.1 * expected_anchor) / 1.1, atol=1e-6)
    run_updates(anchored.updates(*batch))  # a keep step: the agent's own targets
    assert "bellman_backups" not in vars(anchored.step)
    run_updates(anchored.updates(*batch))  # converging: blended from here on
    assert vars(anchored.step)["bellman_backups"] == anchored.blended


def test_same_seed_same_trajdeleter_repair():
    states = []
    for _ in range(2):
        keep, forget = samplers("bcql", split())
        agent = make_agent("bcql")
        torch.manual_seed(1)
        agent.unlearn(keep, forget, method="trajdeleter-cost", config=QUICK, show_progress=False)
        states.append(agent.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
