"""Safety-Gymnasium envs reset without their skybox and run the same episodes."""

import numpy as np
import pytest

from osrl_unlearn.light_skybox import LIGHT_SKYBOX, LightSkybox, without_skybox
from osrl_unlearn.tasks import make_env, reset_env

TASK = "OfflinePointCircle1Gymnasium-v0"


def test_without_skybox_replaces_the_skybox_texture_only():
    xml = ('<asset><texture type="skybox" fileright="a.png" fileup="b.png"></texture>'
           '<texture name="matplane" builtin="checker" type="2d"></texture></asset>')  # fmt: skip
    assert without_skybox(xml) == (
        f'<asset>{LIGHT_SKYBOX}<texture name="matplane" builtin="checker" type="2d"></texture>'
        "</asset>"
    )


def episode(env, seed: int, steps: int):
    obs, _ = reset_env(env, seed)
    actions = np.random.default_rng(seed).uniform(-1, 1, (steps, *env.action_space.shape))
    rows = [obs]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action.astype(np.float32))
        rows.append(np.r_[obs, reward, info["cost"], terminated, truncated])
    return np.concatenate(rows), env.unwrapped


@pytest.mark.parametrize("seed", [0, 7])
def test_the_light_env_runs_the_same_episodes_as_safety_gymnasiums_own(seed):
    import gymnasium as gym

    light = make_env(TASK)
    assert isinstance(light, LightSkybox)
    own = gym.make(TASK)
    assert not isinstance(own, LightSkybox)
    assert not isinstance(make_env("OfflineCarCircle-v0"), LightSkybox)  # Bullet-Safety-Gym
    for _ in range(2):  # the first reset builds the world, later ones rebuild it
        light_run, light_env = episode(light, seed, 60)
        own_run, own_env = episode(own, seed, 60)
        assert np.array_equal(light_run, own_run)
    # the models differ in the skybox alone
    light_model, own_model = light_env.task.model, own_env.task.model
    assert light_model.ntex == own_model.ntex and light_model.nbody == own_model.nbody
    for name in ("body_pos", "body_mass", "geom_size", "geom_pos", "qpos0", "actuator_gear"):
        assert np.array_equal(getattr(light_model, name), getattr(own_model, name)), name
    assert light_model.tex_width[0] == 8 and own_model.tex_width[0] > 8
