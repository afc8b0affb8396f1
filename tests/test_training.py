"""`osrl-unlearn train`, training profiles and the trained-agent cache."""

import dataclasses

import pytest
import torch
from osrl.common.exp_util import load_config_and_model

from osrl_unlearn import load_agent
from osrl_unlearn.cli import main
from osrl_unlearn.errors import ConfigError
from osrl_unlearn.training import PROFILES, cached_run, profile_settings, training_seconds


@pytest.mark.slow
def test_train_writes_an_osrl_run_folder_and_retrains_on_keep_rows(poisoned_file, tmp_path, capsys):
    args = ["train", "--dataset", str(poisoned_file), "--agent", "cpq", "--profile", "quick",
            "--steps", "5", "--out", str(tmp_path), "--eval_episodes", "0",
            "--show_progress", "false"]  # fmt: skip
    assert main(args) == 0
    assert main([*args, "--keep_only", "true"]) == 0
    out = capsys.readouterr().out
    assert "on 2400 transitions" in out and "on 2100 transitions" in out
    run = tmp_path / "cpq-quick-seed0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cpq-quick-keep-seed0", "cpq-quick-seed0"]
    cfg, model = load_config_and_model(str(run), best=False)  # OSRL's own loader
    assert cfg["update_steps"] == 5 and cfg["a_hidden_sizes"] == PROFILES["quick"]["hidden"]
    ours = load_agent(run)
    for key, value in model["model_state"].items():
        assert torch.equal(value, ours.state_dict()[key])


@pytest.mark.slow
def test_train_refuses_to_overwrite_a_run_without_force(poisoned_file, tmp_path, capsys):
    args = ["train", "--dataset", str(poisoned_file), "--agent", "coptidice", "--profile",
            "quick", "--steps", "3", "--out", str(tmp_path), "--name", "mine",
            "--eval_episodes", "0", "--show_progress", "false"]  # fmt: skip
    assert main(args) == 0
    before = (tmp_path / "mine" / "checkpoint" / "model.pt").read_bytes()
    assert main(args) == 2
    assert "mine exists; pass --force" in capsys.readouterr().err
    assert (tmp_path / "mine" / "checkpoint" / "model.pt").read_bytes() == before
    assert main([*args, "--force", "true", "--seed", "1"]) == 0
    assert (tmp_path / "mine" / "checkpoint" / "model.pt").read_bytes() != before
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no staging folder left behind


def test_train_without_dataset_is_a_one_line_error(capsys):
    assert main(["train", "--agent", "bcql"]) == 2
    assert capsys.readouterr().err.strip() == "error: no dataset: pass --dataset path/to/file.hdf5"


def test_profiles_and_overrides():
    settings = profile_settings("cpu", agent="cpq", steps=None, hidden=[64])
    assert settings.agent == "cpq" and settings.hidden == [64]
    assert settings.steps == PROFILES["cpu"]["steps"]
    assert profile_settings("osrl").hidden == [256, 256]
    with pytest.raises(ConfigError, match="unknown profile 'gpu'"):
        profile_settings("gpu")


@pytest.mark.slow
def test_cached_run_trains_once_and_is_keyed_by_settings(quick_car_circle, tmp_path):
    from osrl_unlearn.data import read_hdf5

    data = read_hdf5(quick_car_circle[1].path)
    settings = profile_settings("quick", agent="cpq", steps=3)
    run = cached_run(data, settings, tmp_path, show_progress=False)
    stamp = (run / "checkpoint" / "model.pt").stat().st_mtime_ns
    assert cached_run(data, settings, tmp_path, show_progress=False) == run
    assert (run / "checkpoint" / "model.pt").stat().st_mtime_ns == stamp
    assert training_seconds(run) > 0
    other = cached_run(data, dataclasses.replace(settings, seed=1), tmp_path, show_progress=False)
    assert other != run
