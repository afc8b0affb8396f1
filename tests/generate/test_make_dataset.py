"""Small real generation runs: FSRL behaviour training and rollouts in the real environments."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pyrallis
import pytest

from osrl_unlearn.data import FORMAT_VERSION, read_hdf5
from osrl_unlearn.data.hdf5 import check_with_dsrl
from osrl_unlearn.demo import apply_quick_profile
from osrl_unlearn.generate.make_dataset import MakeDatasetConfig, make_dataset

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def quick_config(task="OfflineCarCircle-v0", **overrides) -> MakeDatasetConfig:
    cfg = MakeDatasetConfig(task=task, workers=1, show_progress=False)
    apply_quick_profile(cfg)
    return dataclasses.replace(cfg, **overrides)


@pytest.fixture
def car_circle(quick_car_circle):
    return quick_car_circle


def test_car_circle_file_is_a_dsrl_dataset(car_circle):
    cfg, result = car_circle
    assert check_with_dsrl(result.path, "OfflineCarCircle-v0") == 8 * 300
    data = read_hdf5(result.path, "OfflineCarCircle-v0")
    assert len(data) == 2400 and data.obs_dim == 8 and data.act_dim == 2
    np.testing.assert_array_equal(
        data.episode_bounds()[:, 1] - data.episode_bounds()[:, 0], [300] * 8
    )
    assert data.timeouts.sum() == 8 and not data.terminals.any()
    assert data.poison_mask is None
    assert (data.actions >= -1).all() and (data.actions <= 1).all()
    assert set(np.unique(data.costs)) <= {0.0, 1.0}
    # the next observation of a step is the observation of the following step within an episode
    inside = ~data.timeouts[:-1]
    np.testing.assert_array_equal(
        data.next_observations[:-1][inside], data.observations[1:][inside]
    )
    assert data.attrs["task"] == "OfflineCarCircle-v0" and data.attrs["seed"] == 0
    assert data.attrs["format_version"] == FORMAT_VERSION
    assert data.attrs["generator_config"]["behaviour"]["steps"] == 2000


def test_summary_matches_the_file(car_circle):
    _, result = car_circle
    rewards, costs = read_hdf5(result.path).episode_returns()
    summary = result.summary
    assert summary["episodes"] == 8 and summary["transitions"] == 2400
    assert summary["episode_cost"]["max"] == pytest.approx(costs.max(), abs=0.01)
    assert summary["episode_reward"]["median"] == pytest.approx(np.median(rewards), abs=0.01)
    assert summary["episodes_within_cost_limit"] == int((costs <= 10).sum())
    assert (result.path.parent / "spread.png").stat().st_size > 1000
    assert (result.path.parent / "config.yaml").is_file()


def test_cache_is_reused_and_same_seed_gives_the_same_file(car_circle, tmp_path):
    cfg, result = car_circle
    mtime = result.path.stat().st_mtime_ns
    again = make_dataset(cfg)
    assert again.summary["reused_from_cache"] and again.path.stat().st_mtime_ns == mtime
    fresh = make_dataset(quick_config(cache=str(tmp_path / "other")))
    first, second = read_hdf5(result.path), read_hdf5(fresh.path)
    for key, value in first.arrays().items():
        np.testing.assert_array_equal(getattr(second, key), value)


def test_out_copy_is_never_overwritten_without_force(car_circle, tmp_path):
    cfg, result = car_circle
    out = tmp_path / "clean.hdf5"
    cfg = dataclasses.replace(cfg, out=str(out))
    make_dataset(cfg)
    assert out.read_bytes() == result.path.read_bytes()
    with pytest.raises(FileExistsError):
        make_dataset(cfg)


def test_safety_gymnasium_task(tmp_path):
    # MuJoCo worlds are rebuilt on every reset (about a second each): one small run only
    cfg = quick_config("OfflinePointCircle1Gymnasium-v0", cache=str(tmp_path), episodes=2)
    cfg.behaviour = dataclasses.replace(
        cfg.behaviour, cost_limits=[10.0], steps=1000, training_envs=1, episode_per_collect=1
    )
    result = make_dataset(cfg)
    assert check_with_dsrl(result.path, "OfflinePointCircle1Gymnasium-v0") == 2 * 500
    data = read_hdf5(result.path)
    assert data.obs_dim == 28 and data.timeouts.sum() == 2


def test_controller_radius_sets_the_safety_of_an_episode():
    from osrl_unlearn.generate.collect import CollectJob, EpisodePlan, collect_episodes
    from osrl_unlearn.generate.controller import CircleController

    plans = tuple(
        EpisodePlan(i, "", 0.0, seed=7, controller=CircleController(radius, 1.0))
        for i, radius in enumerate((5.5, 7.5))
    )
    inside, outside = collect_episodes(CollectJob("OfflineCarCircle-v0", 8, 2, (), plans), print)
    # radius 5.5 stays within |x| <= 6 (cost only beyond it); radius 7.5 crosses it every lap
    assert inside["costs"].sum() == 0 and inside["rewards"].sum() > 100
    assert outside["costs"].sum() > 10 and outside["rewards"].sum() > inside["rewards"].sum()
    # the controller reads only the observation it is given: the same action for the same obs
    obs = inside["observations"][50]
    np.testing.assert_array_equal(plans[0].controller(obs), plans[0].controller(obs.copy()))


def test_controller_dataset_spans_both_sides_of_the_cost_limit(tmp_path):
    cfg = MakeDatasetConfig(behaviour_source="controller", episodes=6, workers=1,
                            show_progress=False, cache=str(tmp_path))  # fmt: skip
    cfg.controller.radii, cfg.controller.speeds = [5.0, 7.5], [0.5, 1.0]
    result = make_dataset(cfg)
    assert check_with_dsrl(result.path, "OfflineCarCircle-v0") == 6 * 300
    assert result.summary["episodes_within_cost_limit"] >= 2
    assert result.summary["episodes_above_cost_limit"] >= 2
    assert result.summary["behaviour_seconds"] == 0
    config = read_hdf5(result.path).attrs["generator_config"]
    assert config["behaviour_source"] == "controller" and "behaviour" not in config
    assert "controller" in read_hdf5(result.path).attrs["generator"]


def test_ppo_datasets_keep_their_cache_key():
    from osrl_unlearn.cache import settings_key

    settings = MakeDatasetConfig().cache_settings()
    assert "behaviour_source" not in settings and "controller" not in settings
    # the key of the default PPO dataset made before controllers existed (cached files stay valid)
    assert settings_key(settings) == "853e4648b792"


def test_controller_refuses_other_tasks_and_misplaced_settings():
    from osrl_unlearn.errors import ConfigError

    cfg = MakeDatasetConfig(task="OfflineCarRun-v0", behaviour_source="controller")
    with pytest.raises(ConfigError, match="OfflinePointGoal1Gymnasium-v0, not OfflineCarRun-v0"):
        make_dataset(cfg)
    cfg = MakeDatasetConfig(behaviour_source="controller")
    cfg.controller.x_limits = [1.0]
    with pytest.raises(ConfigError, match="x_limits is for OfflinePointCircle1Gymnasium-v0"):
        make_dataset(cfg)
    cfg = MakeDatasetConfig(behaviour_source="controller")
    cfg.controller.clearances = [0.1]
    with pytest.raises(ConfigError, match="clearances is for OfflinePointGoal1Gymnasium-v0"):
        make_dataset(cfg)
    cfg = MakeDatasetConfig(task="OfflinePointGoal1Gymnasium-v0", behaviour_source="controller")
    cfg.controller.radii = [1.0]
    with pytest.raises(ConfigError, match="radii is for OfflineCarCircle-v0 and"):
        make_dataset(cfg)
    cfg = MakeDatasetConfig(task="OfflinePointGoal1Gymnasium-v0", behaviour_source="controller")
    cfg.controller.clearances = []
    with pytest.raises(ConfigError, match="need one value or more"):
        make_dataset(cfg)
    cfg = MakeDatasetConfig(task="OfflinePointCircle1Gymnasium-v0", behaviour_source="controller")
    cfg.controller.x_limits = []
    with pytest.raises(ConfigError, match="need one value or more"):
        make_dataset(cfg)
    with pytest.raises(ConfigError, match="behaviour_source must be ppo, controller or clone"):
        make_dataset(MakeDatasetConfig(behaviour_source="scripted"))


def test_carcircle_controller_datasets_keep_their_cache_key():
    from osrl_unlearn.cache import settings_key

    cfg = pyrallis.parse(config_class=MakeDatasetConfig, args=[],
                         config_path=str(REPO / "configs/make_dataset/car_circle_controller.yaml"))  # fmt: skip
    assert "x_limits" not in cfg.cache_settings()["controller"]
    # the key of the grid's CarCircle data, made before PointCircle1 had controllers
    assert settings_key(cfg.cache_settings()) == "332fe0882c1d"


def test_point_circle_controller_x_limit_sets_the_safety_of_an_episode():
    from osrl_unlearn.generate.collect import CollectJob, EpisodePlan, collect_episodes
    from osrl_unlearn.generate.controller import PointCircleController

    controllers = (PointCircleController(1.5, 0.8, 1.5), PointCircleController(1.5, math.inf, 1.5))
    plans = tuple(EpisodePlan(i, "", 0.0, seed=7, controller=c) for i, c in enumerate(controllers))
    job = CollectJob("OfflinePointCircle1Gymnasium-v0", 28, 2, (), plans)
    inside, whole = collect_episodes(job, print)
    # aiming within |x| <= 0.8 never crosses the walls at |x| = 1.125; the whole circle does
    assert inside["costs"].sum() == 0 and inside["rewards"].sum() > 40
    assert whole["costs"].sum() > 100 and whole["rewards"].sum() > inside["rewards"].sum()
    assert len(inside["rewards"]) == 500 and inside["timeouts"][-1]


@pytest.mark.parametrize("sensing", ["state", "lidar"])
def test_point_goal_controller_clearance_sets_the_safety_of_an_episode(sensing):
    from osrl_unlearn.generate.collect import CollectJob, EpisodePlan, collect_episodes
    from osrl_unlearn.generate.controller import PointGoalController

    controllers = (PointGoalController(0.15, 1.0, sensing), PointGoalController(-1.0, 1.0, sensing))
    plans = tuple(EpisodePlan(i, "", 0.0, seed=3, controller=c) for i, c in enumerate(controllers))
    careful, straight = collect_episodes(CollectJob("OfflinePointGoal1Gymnasium-v0", 60, 2, (), plans),
                                         print)  # fmt: skip
    # the same layout (same seed): keeping 0.15 from the hazards' edges never enters one; driving
    # straight at each goal crosses hazards, for more reward per step
    assert careful["costs"].sum() == 0 and careful["rewards"].sum() > 10
    assert straight["costs"].sum() > 10 and straight["rewards"].sum() > careful["rewards"].sum()
    assert len(careful["rewards"]) == 1000 and careful["timeouts"][-1]


def test_point_goal_lidar_reading_gives_the_goal_bearing_and_hazard_distances():
    # the lidar controller steers from what the lidars encode: the goal's bearing in the robot's
    # frame, and per lit bin the distance to the nearest hazard centre in it
    from osrl_unlearn.generate.controller import LidarLayout
    from osrl_unlearn.tasks import make_env

    env = make_env("OfflinePointGoal1Gymnasium-v0")
    obs, _ = env.reset(seed=3)
    task = env.unwrapped.task
    layout = LidarLayout.of(task)
    assert (layout.bins, layout.max_dist) == (16, 3.0) and len(obs) == 60
    position = np.asarray(task.agent.pos[:2])
    yaw = math.atan2(task.agent.mat[1, 0], task.agent.mat[0, 0])
    to_goal = np.asarray(task.goal.pos[:2]) - position
    assert np.linalg.norm(to_goal) < layout.max_dist  # in the lidar's range at this seed
    true_bearing = math.atan2(to_goal[1], to_goal[0]) - yaw
    error = (layout.goal_bearing(obs) - true_bearing + math.pi) % (2 * math.pi) - math.pi
    assert abs(error) < 1e-3
    distances = [np.linalg.norm(position - np.asarray(h[:2])) for h in task.hazards.pos]
    decoded = [np.linalg.norm(offset) for offset in layout.from_hazards(obs)]
    assert min(decoded) == pytest.approx(min(distances), abs=1e-3)


def test_point_goal_sensing_is_checked():
    from osrl_unlearn.errors import ConfigError
    from osrl_unlearn.generate.controller import PointGoalController

    with pytest.raises(ConfigError, match="sensing must be one of state, lidar, got 'camera'"):
        PointGoalController(0.15, 1.0, "camera")
    cfg = MakeDatasetConfig(task="OfflinePointCircle1Gymnasium-v0", behaviour_source="controller")
    cfg.controller.sensing = "lidar"
    with pytest.raises(ConfigError, match="sensing is for OfflinePointGoal1Gymnasium-v0"):
        make_dataset(cfg)


def test_controller_settings_default_per_task():
    # an unset controller setting takes the task's default: PointCircle1's YAML only writes them out
    cfg = MakeDatasetConfig(task="OfflinePointCircle1Gymnasium-v0", behaviour_source="controller",
                            episodes=200)  # fmt: skip
    written = pyrallis.parse(config_class=MakeDatasetConfig, args=[],
                             config_path=str(REPO / "configs/make_dataset/point_circle1_controller.yaml"))  # fmt: skip
    assert cfg.cache_settings() == written.cache_settings()
    assert len(cfg.controller.controllers(cfg.task)) == 15
    assert len(MakeDatasetConfig().controller.controllers("OfflineCarCircle-v0")) == 18
    goal = MakeDatasetConfig(task="OfflinePointGoal1Gymnasium-v0", behaviour_source="controller",
                             episodes=200)  # fmt: skip
    written = pyrallis.parse(config_class=MakeDatasetConfig, args=[],
                             config_path=str(REPO / "configs/make_dataset/point_goal1_controller.yaml"))  # fmt: skip
    assert goal.cache_settings() == written.cache_settings()
    assert set(goal.cache_settings()["controller"]) == {"clearances", "speeds"}
    assert len(goal.controller.controllers(goal.task)) == 9
    assert {c.sensing for c in goal.controller.controllers(goal.task)} == {"state"}
    goal.controller.sensing = "lidar"  # a setting of its own: another file
    assert goal.cache_settings()["controller"]["sensing"] == "lidar"
    assert {c.sensing for c in goal.controller.controllers(goal.task)} == {"lidar"}
    goal.controller.steering_gain, goal.controller.speed_gain = 2.0, 3.0  # smoother rules
    assert goal.cache_settings()["controller"]["steering_gain"] == 2.0
    assert {(c.gain, c.speed_gain) for c in goal.controller.controllers(goal.task)} == {(2.0, 3.0)}
    from osrl_unlearn.errors import ConfigError

    circle = MakeDatasetConfig(behaviour_source="controller")
    circle.controller.steering_gain = 2.0
    with pytest.raises(ConfigError, match="steering_gain is for OfflinePointGoal1Gymnasium-v0"):
        circle.controller.controllers(circle.task)


def test_correlated_action_noise_holds_a_push_with_the_same_spread():
    from osrl_unlearn.errors import ConfigError
    from osrl_unlearn.generate.collect import EpisodePlan, _record
    from osrl_unlearn.tasks import make_env

    env = make_env("OfflineCarCircle-v0")
    still = lambda obs: np.zeros(2, dtype=np.float32)  # noqa: E731 - the actions are the noise
    noise = {rho: _record(env, still, EpisodePlan(0, "", 0.2, seed=5, noise_correlation=rho))["actions"]
             for rho in (0.0, 0.95)}  # fmt: skip
    env.close()
    for rho, actions in noise.items():
        lag_one = np.mean([np.corrcoef(actions[:-1, j], actions[1:, j])[0, 1] for j in range(2)])
        assert abs(lag_one - rho) < 0.1  # ~300 steps: the estimate is within ~0.06
    # the same draws either way (same seed): the first step's noise is the same, the std alike
    np.testing.assert_array_equal(noise[0.0][0], noise[0.95][0])
    assert 0.1 < noise[0.95].std() < 0.3 and abs(noise[0.0].std() - 0.2) < 0.02
    assert "action_noise_correlation" not in MakeDatasetConfig().cache_settings()  # old keys stay
    correlated = MakeDatasetConfig(action_noise_correlation=0.9)
    assert correlated.cache_settings()["action_noise_correlation"] == 0.9
    with pytest.raises(ConfigError, match=r"action_noise_correlation must be in \[0, 1\), got 1.0"):
        make_dataset(MakeDatasetConfig(action_noise_correlation=1.0))
