"""`osrl-unlearn unlearn` / `evaluate` and the repair_run library path, on a real tiny file."""

import csv
import json

import pytest
import torch

from osrl_unlearn import load_agent
from osrl_unlearn.cli import main, user_settings
from osrl_unlearn.unlearn import SafeRuleConfig
from osrl_unlearn.unlearn.methods import METHODS


@pytest.fixture(scope="module")
def trained_run(poisoned_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    args = ["train", "--dataset", str(poisoned_file), "--agent", "bcql", "--profile", "quick",
            "--steps", "5", "--out", str(out), "--name", "poisoned", "--eval_episodes", "0",
            "--show_progress", "false"]  # fmt: skip
    assert main(args) == 0
    return out / "poisoned"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["safe-rule", "trajdeleter-adv-cost", "finetune", "relabel"])
def test_unlearn_writes_a_new_run_with_history_and_leaves_the_input(
    method,
    trained_run,
    poisoned_file,
    tmp_path,
    capsys,  # noqa: F811
):
    before = (trained_run / "checkpoint" / "model.pt").read_bytes()
    out = tmp_path / "repaired"
    args = ["unlearn", "--run", str(trained_run), "--dataset", str(poisoned_file),
            "--method", method, "--steps", "4", "--batch_size", "32", "--out", str(out),
            "--eval_episodes", "0", "--show_progress", "false"]  # fmt: skip
    assert main(args) == 0
    assert f"{method}: 4 steps" in capsys.readouterr().out
    assert (trained_run / "checkpoint" / "model.pt").read_bytes() == before
    metadata = json.loads((out / "unlearning.json").read_text())
    assert metadata["method"] == method and metadata["steps"] == 4
    assert metadata["forget_transitions"] == 300 and metadata["wall_seconds"] > 0
    assert 0 < metadata["cpu_seconds"]
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3]
    repaired = load_agent(out)
    original = load_agent(trained_run)
    assert any(
        not torch.equal(v, repaired.state_dict()[k]) for k, v in original.state_dict().items()
    )
    assert main(args) == 2  # exists: refused without --force
    assert "exists; pass --force" in capsys.readouterr().err
    assert main([*args, "--force", "true"]) == 0


@pytest.mark.slow
def test_relabel_settings_given_on_the_command_line_arrive(trained_run, poisoned_file, tmp_path):
    out = tmp_path / "relabelled"
    assert main(["unlearn", "--run", str(trained_run), "--dataset", str(poisoned_file),
                 "--method", "relabel", "--relabel.reward_percentile", "20",
                 "--relabel.actor", "shrink-perturb", "--relabel.steps", "3",
                 "--batch_size", "32", "--out", str(out), "--eval_episodes", "0",
                 "--show_progress", "false"]) == 0  # fmt: skip
    metadata = json.loads((out / "unlearning.json").read_text())
    assert metadata["steps"] == 3
    assert metadata["config"]["reward_percentile"] == 20.0
    assert metadata["config"]["actor"] == "shrink-perturb"
    # the record names what ran: 'auto' resolved for the run's BCQ-Lag
    assert metadata["config"]["behaviour_model"] == "reset"
    assert metadata["config"]["behaviour_rows"] == "keep"


@pytest.mark.slow
def test_trajdeleter_settings_given_on_the_command_line_arrive(
    trained_run, poisoned_file, tmp_path
):
    out = tmp_path / "deleted"
    assert main(["unlearn", "--run", str(trained_run), "--dataset", str(poisoned_file),
                 "--method", "trajdeleter-cost", "--trajdeleter.blocks", "2",
                 "--trajdeleter.anchor_weight", "0.5", "--steps", "4", "--batch_size", "32",
                 "--out", str(out), "--eval_episodes", "0", "--show_progress", "false"]) == 0  # fmt: skip
    metadata = json.loads((out / "unlearning.json").read_text())
    assert metadata["steps"] == 4 and metadata["method"] == "trajdeleter-cost"
    assert metadata["config"]["blocks"] == 2 and metadata["config"]["anchor_weight"] == 0.5
    assert metadata["config"]["cost_aware"] is True


@pytest.mark.slow
def test_evaluate_prints_normalised_scores_and_writes_json(trained_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    args = ["evaluate", "--run", str(trained_run), "--episodes", "2", "--num_envs", "2",
            "--out", str(out), "--show_progress", "false"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "2 episodes" in printed and "cost limit 10" in printed
    payload = json.loads(out.read_text())
    assert len(payload["rewards"]) == 2 and payload["num_envs"] == 2
    assert main(args) == 2  # an existing result file is not overwritten


def test_unlearn_needs_run_and_dataset(capsys):
    assert main(["unlearn", "--run", "somewhere"]) == 2
    assert "--run DIR --dataset FILE" in capsys.readouterr().err


def test_user_settings_keep_method_defaults_unless_changed():
    traj = user_settings("trajdeleter-adv", SafeRuleConfig())
    assert traj.critic_unlearning is False and traj.convergence_fraction == 0.5
    mine = user_settings("trajdeleter-adv", SafeRuleConfig(actor_lr=5e-4, convergence_fraction=0.2))
    assert mine.actor_lr == 5e-4 and mine.convergence_fraction == 0.2
    assert mine.forget_objective == "trajdeleter"


@pytest.mark.slow
def test_report_compares_runs_with_plots(trained_run, poisoned_file, tmp_path, capsys):
    repaired = tmp_path / "repaired"
    assert main(["unlearn", "--run", str(trained_run), "--dataset", str(poisoned_file),
                 "--steps", "3", "--batch_size", "32", "--out", str(repaired),
                 "--eval_episodes", "0", "--show_progress", "false"]) == 0  # fmt: skip
    out = tmp_path / "report"
    args = ["report", "--runs", f"[{trained_run},{repaired}]", "--labels", "[poisoned,safe-rule]",
            "--episodes", "2", "--out", str(out), "--show_progress", "false"]  # fmt: skip
    assert main(args) == 0
    report = (out / "report.md").read_text()
    assert "| poisoned |" in report and "| safe-rule |" in report and "| 3 |" in report
    assert (out / "policies.png").is_file() and (out / "unlearning.png").is_file()
    assert main(args) == 2 and "exists; pass --force" in capsys.readouterr().err
    assert main(["report", "--runs", f"[{trained_run}]", "--labels", "[a,b]"]) == 2
    assert "2 labels for 1 runs" in capsys.readouterr().err


CHOICES = {"actor": "keep", "actor_objective": "gated", "trainer": "osrl",
           "keep_objective": "lagrangian", "actor_forget_variant": "safe",
           "forget_cost": "largest-step", "behaviour_rows": "keep", "constraint_rows": "keep",
           "actor_rows": "keep", "start": "fresh", "cost_critic": "reset", "reward_critic": "reset",
           "behaviour_model": "reset"}  # fmt: skip
"""Another valid value for each closed-choice setting."""


def other_value(name, default):
    """A valid value different from ``default``, as a command-line word."""
    if name in CHOICES:
        return CHOICES[name]
    if isinstance(default, bool):
        return str(not default).lower()
    if isinstance(default, int):
        return str(default + 1)
    return str(default * 0.5 if default else 0.5)


@pytest.mark.parametrize("method", METHODS)
def test_every_setting_a_user_gives_arrives_for_every_method(method):
    from dataclasses import fields

    from osrl_unlearn.cli import UnlearnConfig, method_settings, parse_options, settings_section
    from osrl_unlearn.unlearn.methods import DEFINING, OWN_CONFIGS

    section = settings_section(method)
    config_class = type(getattr(UnlearnConfig(), section))
    defining = {**DEFINING.get(method, {}), **OWN_CONFIGS.get(method, (None, {}))[1]}
    checked = 0
    for f in fields(config_class):
        if f.name in defining:
            continue  # what makes the method what it is (e.g. trajdeleter-cost's cost_aware)
        value = other_value(f.name, getattr(config_class(), f.name))
        args = ["--method", method, f"--{section}.{f.name}", value]
        cfg, given = parse_options("unlearn", UnlearnConfig, args)
        settings = method_settings(cfg, given)
        assert str(getattr(settings, f.name)).lower() == value.lower() or getattr(
            settings, f.name
        ) == pytest.approx(float(value)), (method, f.name)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize(("method", "stray"), [("relabel", "--unlearning.beta_init"),
                                               ("safe-rule", "--relabel.steps"),
                                               ("finetune", "--trajdeleter.blocks")])  # fmt: skip
def test_settings_of_another_method_are_refused(method, stray, capsys):
    assert main(["unlearn", "--run", "r", "--dataset", "d", "--method", method, stray, "3"]) == 2
    err = capsys.readouterr().err
    assert f"{stray} does not apply to --method {method}" in err
