"""The removal check: continuations of a copy, the repaired agent itself untouched."""

import pytest
import torch

from osrl_unlearn.benchmark.removal import removal_check
from osrl_unlearn.data import OfflineDataset
from tests.agents.conftest import make_agent, poisoned_arrays


@pytest.mark.parametrize("name", ["bcql", "coptidice"])
def test_removal_check_trains_copies_and_leaves_the_agent_alone(name):
    data = OfflineDataset.from_arrays(poisoned_arrays())
    agent = make_agent(name)
    agent.unlearn(data, method="finetune", steps=2, batch_size=16, show_progress=False)
    # (COptiDICE now holds tensors computed by its step, which a plain deepcopy refuses)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    seen = []

    def measure(trained):
        seen.append({k: v.clone() for k, v in trained.state_dict().items()})
        return {"eval/normalized_cost": float(len(seen))}

    result = removal_check(agent, data, keep_steps=3, poison_steps=2, measure=measure,
                           batch_size=16, seed=0)  # fmt: skip
    assert result == {"keep_only": {"steps": 3, "eval/normalized_cost": 1.0},
                      "poisoned": {"steps": 2, "eval/normalized_cost": 2.0}}  # fmt: skip
    assert all(torch.equal(before[k], v) for k, v in agent.state_dict().items())
    for trained in seen:  # each continuation moved its own copy
        assert any(not torch.equal(before[k], trained[k]) for k in before if k.startswith("actor"))
    assert removal_check(agent, data, 0, 0, measure, batch_size=16) == {}
