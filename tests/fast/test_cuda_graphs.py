"""The pieces a CUDA-graph run changes, checked on the CPU (the graph itself needs a GPU:
``benchmarks/device_cell.py`` runs it): the in-place PID controller does OSRL's arithmetic, the
in-step batch draw takes its rows from each source as asked, and a run is reproducible."""

import copy

import pytest
import torch
from osrl.common.net import LagrangianPIDController

from osrl_unlearn.agents.checkpoint import build_agent
from osrl_unlearn.data import BatchSampler, OfflineDataset, layout_for
from osrl_unlearn.fast.cuda_graphs import GraphedTraining, InPlacePID, Source
from tests.agents.conftest import TINY_CONFIG, poisoned_arrays


def test_in_place_pid_matches_osrls_controller_step_by_step():
    theirs = LagrangianPIDController(0.1, 0.003, 0.001, 2.5)
    ours = InPlacePID(0.1, 0.003, 0.001, 2.5)
    state = (ours.error_old, ours.error_integral)
    generator = torch.Generator().manual_seed(0)
    # errors above and below the setpoint, so every relu both passes and cuts
    for shift in (4.0, 3.0, -1.0, 6.0, -5.0, 0.5, 2.5, 9.0):
        qc = 2.5 + shift + torch.randn(64, generator=generator)
        assert ours.control(qc).item() == pytest.approx(theirs.control(qc).item(), abs=1e-7)
        assert ours.error_integral.item() == pytest.approx(float(theirs.error_integral), abs=1e-7)
        assert ours.error_old.item() == pytest.approx(float(theirs.error_old), abs=1e-7)
    # the state tensors are the same objects throughout: a replayed graph keeps writing them
    assert state == (ours.error_old, ours.error_integral)


def test_in_place_pid_carries_over_a_running_controller():
    theirs = LagrangianPIDController(0.1, 0.003, 0.001, 2.5)
    for value in (7.0, 1.0, 9.0):
        theirs.control(torch.full((8,), value))
    ours = InPlacePID.like(theirs, "cpu")
    qc = torch.full((8,), 5.0)
    assert ours.control(qc).item() == pytest.approx(theirs.control(qc).item(), abs=1e-7)


def agent_and_fields(agent="bcql"):
    data = OfflineDataset.from_arrays(poisoned_arrays())
    torch.manual_seed(0)
    # BEAR-Lag: OSRL's training config starts its policy update at once (its class: at 20,000)
    model = build_agent(agent, {**TINY_CONFIG, "start_update_policy_step": 0})
    fields = BatchSampler(data, 32, layout=layout_for(agent)).fields
    return model, fields


def test_batches_take_their_rows_from_each_source_in_order():
    model, fields = agent_and_fields()
    relabelled = list(fields)
    relabelled[3] = torch.full_like(fields[3], -7.0)  # rewards
    relabelled[4] = torch.full_like(fields[4], 10.0)  # costs
    run = GraphedTraining("bcql", model, [Source(fields, 28), Source(relabelled, 4)], seed=1)
    batch = run.batch()
    assert [len(f) for f in batch] == [32] * 6
    assert torch.all(batch[3][28:] == -7.0) and torch.all(batch[4][28:] == 10.0)
    # the leading rows are keep rows: each one is a row of the source
    rows = torch.cat([fields[0], fields[1]], 1)
    drawn = torch.cat([batch[0][:28], batch[1][:28]], 1)
    assert all(torch.any(torch.all(rows == row, 1)) for row in drawn)


@pytest.mark.parametrize("agent", ["bcql", "bearl", "cpq"])
def test_a_run_trains_and_the_same_seed_gives_the_same_weights(agent):
    model, fields = agent_and_fields(agent)
    twin = copy.deepcopy(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = GraphedTraining(agent, model, [Source(fields, 32)], seed=5)
    second = GraphedTraining(agent, twin, [Source(fields, 32)], seed=5)
    first.advance(6)
    second.advance(6)
    assert first.steps_done == 6
    after, again = model.state_dict(), twin.state_dict()
    actor = next(k for k in after if k.startswith("actor.") and k.endswith("weight"))
    assert not torch.equal(after[actor], before[actor])
    for key in after:
        assert torch.equal(after[key], again[key]), key
    assert set(first.values()) >= {"loss/critic_loss", "loss/actor_loss"}
    if agent == "bearl":  # its step counter, which OSRL keeps outside the state dict
        assert model.n_train_steps == 6


def test_a_step_drawing_from_its_generator_leaves_the_global_stream_alone():
    model, fields = agent_and_fields("cpq")
    run = GraphedTraining("cpq", model, [Source(fields, 32)], seed=5)
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    run.advance(2)
    assert torch.equal(torch.rand(3), expected)


def test_coptidice_is_refused():
    with pytest.raises(ValueError, match="cannot be captured"):
        GraphedTraining("coptidice", torch.nn.Linear(1, 1), [], seed=0)


def test_a_bear_run_whose_policy_update_starts_later_is_refused():
    model, fields = agent_and_fields("bearl")
    model.start_update_policy_step = 100
    with pytest.raises(ValueError, match="start_update_policy_step=0"):
        GraphedTraining("bearl", model, [Source(fields, 32)], seed=0)
