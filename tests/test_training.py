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


def test_cached_run_removes_the_staging_folder_a_killed_training_left(quick_car_circle, tmp_path):
    import os
    import subprocess

    from osrl_unlearn.data import read_hdf5
    from osrl_unlearn.io import staging_prefix

    data = read_hdf5(quick_car_circle[1].path)
    settings = profile_settings("quick", agent="cpq", steps=2)
    run = cached_run(data, settings, tmp_path, show_progress=False)
    dead_pid = subprocess.Popen(["true"])  # a process id that no longer runs
    dead_pid.wait()
    mine = staging_prefix(run)
    leftover = run.parent / mine.replace(f"-{os.getpid()}-", f"-{dead_pid.pid}-") / "checkpoint"
    leftover.mkdir(parents=True)
    (run / "checkpoint" / "model.pt").unlink()  # the run is missing: it trains again
    assert cached_run(data, settings, tmp_path, show_progress=False) == run
    assert not leftover.parent.exists() and (run / "checkpoint" / "model.pt").is_file()


# What OSRL's examples/eval/eval_<algo>.py passes its agent's constructor, read from config.yaml.
OSRL_EVAL_KEYS = {
    "bcql": ("a_hidden_sizes", "c_hidden_sizes", "vae_hidden_sizes", "sample_action_num", "PID",
             "gamma", "tau", "lmbda", "beta", "phi", "num_q", "num_qc", "cost_limit",
             "episode_len"),
    "bearl": ("a_hidden_sizes", "c_hidden_sizes", "vae_hidden_sizes", "sample_action_num", "PID",
              "gamma", "tau", "lmbda", "beta", "num_q", "num_qc", "cost_limit", "episode_len",
              "mmd_sigma", "target_mmd_thresh", "start_update_policy_step"),
    "cpq": ("a_hidden_sizes", "c_hidden_sizes", "vae_hidden_sizes", "sample_action_num", "gamma",
            "tau", "beta", "num_q", "num_qc", "qc_scalar", "cost_limit", "episode_len"),
    "coptidice": ("a_hidden_sizes", "c_hidden_sizes", "alpha", "gamma", "cost_ub_epsilon",
                  "num_nu", "num_chi", "cost_limit", "episode_len", "f_type"),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["bcql", "bearl", "cpq", "coptidice"])
def test_run_folder_holds_osrl_complete_config_and_osrl_builds_the_agent(agent, arrays, tmp_path):
    """Every field of OSRL's training config for the agent is in config.yaml, and OSRL's own
    class, built from nothing but that file as OSRL's eval script builds it, loads the checkpoint
    and acts as our agent does."""
    import numpy as np
    import yaml

    from osrl_unlearn.data import OfflineDataset
    from osrl_unlearn.osrl_configs import OSRL_TRAIN_DEFAULTS
    from osrl_unlearn.stack import import_osrl_algorithms
    from osrl_unlearn.tasks import get_task
    from osrl_unlearn.training import train_agent

    data = OfflineDataset.from_arrays(arrays, attrs={"task": "OfflineCarCircle-v0"})
    settings = profile_settings("quick", agent=agent, steps=3)
    ours, run = train_agent(data, settings, tmp_path, "run", show_progress=False)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert set(OSRL_TRAIN_DEFAULTS[agent]) <= set(config)
    assert config["reward_scale"] == 0.1 and config["update_steps"] == 3
    task = get_task(config["task"])
    osrl_class = getattr(import_osrl_algorithms(), OSRL_TRAIN_DEFAULTS[agent]["prefix"])
    kwargs = {key: config[key] for key in OSRL_EVAL_KEYS[agent]}
    if agent == "coptidice":  # as OSRL's eval_coptidice.py: no dataset statistics at evaluation
        kwargs.update(init_state_propotion=1, observations_std=np.array([0]),
                      actions_std=np.array([0]))  # fmt: skip
    model = osrl_class(state_dim=task.obs_dim, action_dim=task.act_dim,
                       max_action=task.max_action, device="cpu", **kwargs)  # fmt: skip
    state = torch.load(run / "checkpoint" / "model.pt", weights_only=True)["model_state"]
    model.load_state_dict(state)
    model.eval()
    obs = arrays["observations"][5]
    args = () if agent == "bcql" else (True, True)  # BCQ-Lag's act samples its VAE: seed it
    torch.manual_seed(0)
    expected = ours.act(obs, *args)[0]
    torch.manual_seed(0)
    np.testing.assert_array_equal(model.act(obs, *args)[0], expected)


@pytest.mark.parametrize("agent", ["bcql", "coptidice"])
def test_standardised_training_is_training_on_standardised_data_then_folding(agent, arrays):
    """``standardise`` trains exactly as on (x - mean) / std, then folds the standardisation into
    the agent: the same policy, acting on raw observations, and the config records it."""

    import numpy as np

    from osrl_unlearn.data import OfflineDataset
    from osrl_unlearn.evaluation import batched_policy
    from osrl_unlearn.standardise import Standardisation, acting_on_raw_observations, fold
    from osrl_unlearn.training import train_agent, training_config

    arrays = dict(arrays, observations=arrays["observations"] * 5 + 3,
                  next_observations=arrays["next_observations"] * 5 + 3)  # fmt: skip
    data = OfflineDataset.from_arrays(arrays, attrs={"task": "OfflineCarCircle-v0"})
    settings = profile_settings("quick", agent=agent, steps=20)
    standardisation = Standardisation.of(data.observations)
    seen = []

    def at_step(step, model):
        if step == 10:  # mid-training the model reads standardised observations...
            np.testing.assert_array_equal(model.observation_standardisation.std,
                                          standardisation.std)  # fmt: skip
            seen.append(acting_on_raw_observations(model))  # ...and acts on raw ones folded

    ours, _ = train_agent(data, dataclasses.replace(settings, standardise=True),
                          show_progress=False, callback=at_step)  # fmt: skip
    by_hand, _ = train_agent(standardisation.applied_to(data), settings, show_progress=False)
    fold(by_hand, standardisation)
    obs = torch.as_tensor(data.observations[:32])
    torch.manual_seed(0)
    expected = batched_policy(by_hand)(obs)
    torch.manual_seed(0)
    torch.testing.assert_close(batched_policy(ours)(obs), expected, rtol=1e-4, atol=1e-5)
    assert not hasattr(ours, "observation_standardisation") and len(seen) == 1
    config = training_config(data, dataclasses.replace(settings, standardise=True))
    np.testing.assert_allclose(config["observation_std"], data.observations.std(0), rtol=1e-4)
    assert "observation_mean" not in training_config(data, settings)
