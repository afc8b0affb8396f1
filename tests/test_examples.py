"""The examples run end to end on a real (tiny) dataset, so they never rot."""

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

from osrl_unlearn import load_agent

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["bcql", "bearl", "cpq", "coptidice"])
def test_unlearn_osrl_run_example(agent, quick_car_circle, tmp_path, monkeypatch, capsys):
    _, dataset = quick_car_circle
    work = tmp_path / "work"
    argv = [
        "unlearn_osrl_run.py", "--dataset", str(dataset.path), "--agent", agent,
        "--work_dir", str(work), "--train_steps", "20", "--unlearn_steps", "10",
        "--hidden", "[16, 16]", "--batch_size", "32", "--eval_episodes", "1",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as finished:
        runpy.run_path(str(EXAMPLES / "unlearn_osrl_run.py"), run_name="__main__")
    assert finished.value.code == 0
    printed = capsys.readouterr().out
    assert "before unlearning: " in printed and "after unlearning: " in printed
    assert "cost" in printed.split("after unlearning: ")[1]
    source, repaired = work / "osrl_run", work / "repaired"
    assert (source / "config.yaml").is_file() and (source / "checkpoint" / "model.pt").is_file()
    metadata = json.loads((repaired / "unlearning.json").read_text())
    assert metadata["steps"] == 10 and metadata["forget_transitions"] == 300
    assert len(metadata["forget_sha256"]) == 64
    before, after = load_agent(source), load_agent(repaired)
    assert type(after).__name__.lower() == agent
    changed = [not torch.equal(v, after.state_dict()[k]) for k, v in before.state_dict().items()]
    assert any(changed)
